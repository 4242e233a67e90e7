"""Every colorgan flag, and the frozen `Config` dataclasses that the library takes instead of flags.

absl flags are process-global, so all of them, the verbs' I/O flags included, are defined here
once. Flag names equal dataclass field names, which makes `from_flags`, `to_flagfile` and
`from_dict` generic. Verb `main()`s call `from_flags(FLAGS)` exactly once; nothing below
`main()` reads flags. Recipes live in `colorgan/configs/*.flags`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from absl import flags

CONFIGS_DIR = os.path.join(os.path.dirname(__file__), "configs")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where images come from and how they become training examples."""
    data: str = "samples"
    split: str = "train"
    val_split: str = "val"
    val_fraction: float = 0.1
    image_size: int = 32
    batch_size: int = 16
    crop_min: float = 0.8
    flip: bool = True
    min_chroma: float = 0.5
    max_pixels: int = 120_000_000
    cache_dir: str = ""
    tfds_data_dir: str = ""


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator architecture (see models.py)."""
    image_size: int = 32
    base_filters: int = 64
    max_filters: int = 512
    depth: int = 0
    output_space: str = "lab"
    upsample: str = "transpose"
    dropout_blocks: int = 0
    dropout_rate: float = 0.5
    discriminator: str = "dcgan"
    disc_filters: int = 64

    def __post_init__(self):
        if self.num_down < 1:
            raise ValueError(f"depth must give at least one encoder block, got {self.num_down}")
        if self.image_size % (2 ** self.num_down):
            raise ValueError(f"image_size={self.image_size} is not a multiple of "
                             f"2**depth={2 ** self.num_down}")
        if self.dropout_blocks > self.num_down - 1:
            raise ValueError(f"dropout_blocks={self.dropout_blocks} exceeds the "
                             f"{self.num_down - 1} skip-connected decoder blocks")

    def generator_config(self) -> "ModelConfig":
        """This config with the discriminator fields at their defaults: what G's weights depend on."""
        defaults = ModelConfig()
        return dataclasses.replace(self, discriminator=defaults.discriminator,
                                   disc_filters=defaults.disc_filters)

    @property
    def num_down(self) -> int:
        """Encoder blocks: `depth`, or down to a 1x1 bottleneck when depth is 0."""
        if self.depth:
            return self.depth
        size_log2 = math.log2(self.image_size)
        if not size_log2.is_integer():
            raise ValueError(f"depth=0 (down to 1x1) needs a power-of-two image_size, got "
                             f"{self.image_size}; set --depth")
        return int(size_log2)

    @property
    def output_channels(self) -> int:
        return 3 if self.output_space == "lab" else 2


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Losses, optimisers, precision and the loop's cadence."""
    mode: str = "unet"
    steps: int = 1000
    learning_rate: float = 2e-4
    d_learning_rate: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    g_steps_per_d_step: int = 1
    pixel_loss: str = "l2"
    pixel_weight: float = 100.0
    label_smoothing: float = 0.0
    mixed_precision: str = "float32"
    nonfinite: str = "stop"
    seed: int = 0
    deterministic: bool = False
    log_every_steps: int = 50
    ckpt_every_steps: int = 500
    sample_every_steps: int = 500
    val_every_steps: int = 500
    val_batches: int = 4
    keep_checkpoints: int = 3
    init_from: str = ""
    strategy: str = "default"
    tpu: str = ""


# Every flag's default is its dataclass field's default: one place for each value.
_DEFAULTS = {f.name: f.default for cls in (DataConfig, ModelConfig, TrainConfig)
             for f in dataclasses.fields(cls)}

# ---------------------------------------------------------------- data flags
flags.DEFINE_string(
    "data", _DEFAULTS["data"],
    "Image source: 'samples' (the bundled photos), a folder of JPEG/PNG images (searched "
    "recursively), a .tar/.tar.gz/.tgz archive of images (extracted once to --cache_dir), or "
    "'tfds:NAME' (a TFDS dataset already prepared in --tfds_data_dir; nothing is downloaded).")
flags.DEFINE_enum(
    "split", _DEFAULTS["split"], ["train", "val", "test", "all"],
    "Split to train on (evaluate: to score; default test there). A source's own train/val/test "
    "folders are used when present; otherwise files are assigned by a stable hash of their path "
    "using --val_fraction. 'all': every image of the source (e.g. a flat evaluation set).")
flags.DEFINE_enum(
    "val_split", _DEFAULTS["val_split"], ["val", "test"],
    "Split for the validation scalars and sample grids during training (CIFAR-10 has no 'val': "
    "its recipes use 'test', as the paper reports on it).")
flags.DEFINE_float(
    "val_fraction", _DEFAULTS["val_fraction"],
    "For sources without split folders: fraction of files (by path hash) held out as both 'val' "
    "and 'test'. 0 keeps everything in 'train'. Range [0, 1).", lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_integer("image_size", _DEFAULTS["image_size"],
                     "Training crop size in pixels (square); a multiple of "
                     "2**depth.", lower_bound=8)
flags.DEFINE_integer("batch_size", _DEFAULTS["batch_size"],
                     "Images per training step.", lower_bound=1)
flags.DEFINE_float(
    "crop_min", _DEFAULTS["crop_min"],
    "Training augmentation: random square crops cover this fraction of the short side up to "
    "all of it, then are resized to --image_size. 1.0 = no crop jitter. Range (0, 1].",
    lower_bound=0.05, upper_bound=1.0)
flags.DEFINE_bool("flip", _DEFAULTS["flip"], "Training augmentation: random horizontal flips.")
flags.DEFINE_float(
    "min_chroma", _DEFAULTS["min_chroma"],
    "Training drops images whose mean chroma sqrt(a*^2 + b*^2) is below this (Lab units): "
    "grayscale photos teach nothing about colour (gray JPEGs score < 0.25; colour photos rarely "
    "< 1). 0 keeps every image.", lower_bound=0.0)
flags.DEFINE_integer(
    "max_pixels", _DEFAULTS["max_pixels"],
    "Refuse images whose header claims more pixels than this (decompression bombs), before "
    "decoding. 120 MP is a 1200-dpi scan of an 8x10-inch print.", lower_bound=1)
flags.DEFINE_string(
    "cache_dir", _DEFAULTS["cache_dir"],
    "Where archives are extracted and TFDS datasets exported to (default: $COLORGAN_CACHE or "
    "~/.cache/colorgan). Never inside the repository.")
flags.DEFINE_string("tfds_data_dir", _DEFAULTS["tfds_data_dir"],
                    "TFDS data_dir for 'tfds:NAME' sources (default: TFDS's).")

# --------------------------------------------------------------- model flags
flags.DEFINE_integer("base_filters", _DEFAULTS["base_filters"],
                     "Channels of the first U-Net encoder block; doubled "
                     "per block up to --max_filters (the seed: 64).", lower_bound=1)
flags.DEFINE_integer("max_filters", _DEFAULTS["max_filters"],
                     "Cap on U-Net and discriminator channels (pix2pix: 512).",
                     lower_bound=1)
flags.DEFINE_integer(
    "depth", _DEFAULTS["depth"],
    "Number of stride-2 encoder blocks. 0 = down to a 1x1 bottleneck, log2(--image_size), as in "
    "the paper (5 at 32 px, 8 at 256 px).", lower_bound=0)
flags.DEFINE_enum(
    "output_space", _DEFAULTS["output_space"], ["lab", "ab"],
    "Generator output: 'lab' (3 channels, the seed's choice; inference still keeps the input's "
    "own L) or 'ab' (2 channels: capacity only where it is needed).")
flags.DEFINE_enum(
    "upsample", _DEFAULTS["upsample"], ["transpose", "resize_conv"],
    "Decoder upsampling: 'transpose' (4x4 stride-2 transposed conv, the seed) or 'resize_conv' "
    "(bilinear x2 then 3x3 conv: no checkerboard artefacts).")
flags.DEFINE_integer("dropout_blocks", _DEFAULTS["dropout_blocks"],
                     "Dropout after the first N decoder blocks (pix2pix: 3).",
                     lower_bound=0)
flags.DEFINE_float("dropout_rate", _DEFAULTS["dropout_rate"],
                   "Dropout rate for --dropout_blocks.", lower_bound=0.0,
                   upper_bound=0.95)
flags.DEFINE_enum(
    "discriminator", _DEFAULTS["discriminator"], ["dcgan", "patch"],
    "'dcgan': stride-2 convs down to 4x4 then one logit per image (the seed); 'patch': "
    "pix2pix's PatchGAN, one logit per overlapping patch.")
flags.DEFINE_integer("disc_filters", _DEFAULTS["disc_filters"],
                     "Channels of the discriminator's first conv.", lower_bound=1)

# ------------------------------------------------------------ training flags
flags.DEFINE_enum("mode", _DEFAULTS["mode"], ["unet", "gan"],
                  "'unet': the baseline, pixel loss only; 'gan': conditional GAN, adversarial "
                  "loss plus --pixel_weight x pixel loss.")
flags.DEFINE_integer("steps", _DEFAULTS["steps"],
                     "Total training steps (a re-run with more steps continues).",
                     lower_bound=0)
flags.DEFINE_float("learning_rate", _DEFAULTS["learning_rate"],
                   "Adam learning rate of the generator.", lower_bound=0.0)
flags.DEFINE_float("d_learning_rate", _DEFAULTS["d_learning_rate"],
                   "Adam learning rate of the discriminator (the "
                   "paper's code: G's / 10).", lower_bound=0.0)
flags.DEFINE_float("beta1", _DEFAULTS["beta1"],
                   "Adam beta_1 for both networks (DCGAN: 0.5; paper's code: 0).",
                   lower_bound=0.0, upper_bound=0.999)
flags.DEFINE_float("beta2", _DEFAULTS["beta2"], "Adam beta_2 for both networks.", lower_bound=0.0,
                   upper_bound=0.9999)
flags.DEFINE_integer("g_steps_per_d_step", _DEFAULTS["g_steps_per_d_step"],
                     "GAN: generator updates per discriminator update "
                     "(the paper's code: 2).", lower_bound=1)
flags.DEFINE_enum("pixel_loss", _DEFAULTS["pixel_loss"], ["l1", "l2"],
                  "Pixel loss to the ground truth: 'l2' (mean squared error, the seed's baseline) "
                  "or 'l1' (pix2pix and the paper's GAN).")
flags.DEFINE_float("pixel_weight", _DEFAULTS["pixel_weight"],
                   "GAN: weight of the pixel loss against the adversarial "
                   "loss (lambda = 100 in pix2pix and Nazeri et al. 2018).", lower_bound=0.0)
flags.DEFINE_float("label_smoothing", _DEFAULTS["label_smoothing"],
                   "GAN: one-sided label smoothing; real targets become "
                   "1 - this (the paper's code: 0.1).", lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_enum("mixed_precision", _DEFAULTS["mixed_precision"], ["float32", "bfloat16"],
                  "Compute dtype. 'bfloat16' (Keras mixed_bfloat16) is 1.15-1.6x faster on this "
                  "CPU; variables and losses stay float32.")
flags.DEFINE_enum("nonfinite", _DEFAULTS["nonfinite"], ["stop", "skip"],
                  "On a NaN/inf loss: 'stop' with a clear error (nothing of that step is applied or "
                  "saved), or 'skip' the batch and go on (counted in the log).")
flags.DEFINE_integer("seed", _DEFAULTS["seed"], "Seed for weights, data order and augmentation.")
flags.DEFINE_bool("deterministic", _DEFAULTS["deterministic"],
                  "Enable TF op determinism (slower; used by the tests "
                  "that compare resumed and uninterrupted runs).")
flags.DEFINE_integer("log_every_steps", _DEFAULTS["log_every_steps"],
                     "Steps between scalar summaries and log lines.",
                     lower_bound=1)
flags.DEFINE_integer("ckpt_every_steps", _DEFAULTS["ckpt_every_steps"],
                     "Steps between checkpoints (also saved at the end "
                     "and on SIGINT/SIGTERM).", lower_bound=1)
flags.DEFINE_integer("sample_every_steps", _DEFAULTS["sample_every_steps"],
                     "Steps between PNG sample grids.", lower_bound=1)
flags.DEFINE_integer("val_every_steps", _DEFAULTS["val_every_steps"],
                     "Steps between validation passes (0 = never).",
                     lower_bound=0)
flags.DEFINE_integer("val_batches", _DEFAULTS["val_batches"],
                     "Batches per validation pass.", lower_bound=1)
flags.DEFINE_integer("keep_checkpoints", _DEFAULTS["keep_checkpoints"],
                     "Checkpoints kept in workdir/ckpt.", lower_bound=1)
flags.DEFINE_string("init_from", _DEFAULTS["init_from"],
                    "Start a new workdir from another's generator weights: a "
                    "training workdir, or 'default' (the shipped model).")
STRATEGIES = ("default", "mirrored", "multiworker", "tpu")  # colorgan/distribute.py
flags.DEFINE_enum(
    "strategy", _DEFAULTS["strategy"], list(STRATEGIES),
    "tf.distribute strategy (see colorgan/distribute.py and BUILD.md): 'default' (one device), "
    "'mirrored' (this machine's GPUs, or its logical CPUs), 'multiworker' (the cluster in "
    "TF_CONFIG; run the same command on every worker), 'tpu' (--tpu). --batch_size is the global "
    "batch. Checkpoints restore under any strategy, so it may change when resuming.")
flags.DEFINE_string("tpu", _DEFAULTS["tpu"], "--strategy=tpu: the TPU's name or grpc:// address "
                    "(empty on a Cloud TPU VM).")

# ------------------------------------------------------------ verb I/O flags
flags.DEFINE_string("workdir", None, "train/quickstart: run directory (config, checkpoints, "
                    "TensorBoard, samples). Re-running with the same workdir resumes.")
flags.DEFINE_string("model", "default", "colorize/export/evaluate: the model: a training workdir "
                    "(latest checkpoint, or --checkpoint_step), an exported SavedModel (version "
                    "dir or TF Serving base dir), a .tflite file, a packaged fp16 model dir, or "
                    "'default' (the shipped reference model).")
flags.DEFINE_integer("checkpoint_step", 0, "With a workdir --model: the checkpoint step to load "
                     "(0 = latest).", lower_bound=0)
flags.DEFINE_string("output", None, "Output directory.")
flags.DEFINE_integer("render_size", 0, "colorize/export/evaluate: the short side (px) the model "
                     "sees; colour is upsampled to full size. 0 = the model's training size.",
                     lower_bound=0)
flags.DEFINE_enum("format", "png", ["png", "jpg"], "Colourise: output format (PNG is lossless; "
                  "JPEG drops alpha).")
flags.DEFINE_bool("compare", False, "Colourise: also write <stem>_compare.png, input | result.")
flags.DEFINE_integer("version", 1, "Export: the SavedModel version directory under --output "
                     "(TF Serving serves the highest).", lower_bound=1)
flags.DEFINE_list("formats", ["saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8"],
                  "Export: comma-separated formats: saved_model, tflite_fp32, tflite_fp16, "
                  "tflite_int8, and fp16_weights (the generator packaged as colorgan/pretrained "
                  "ships it).")
flags.DEFINE_integer("calibration_images", 100, "Export: training images used to calibrate the "
                     "int8 TFLite model.", lower_bound=1)
flags.DEFINE_bool("full_res", False, "Evaluate: colourise each image at its own full size (L at "
                  "full resolution, colour rendered at --render_size); default: centre-crop to "
                  "the model's training size.")
flags.DEFINE_float("accuracy_threshold", 2.0, "Evaluate: t of the paper's accuracy (a pixel counts "
                   "when |dL| <= t and |da|, |db| <= 2.2 t).", lower_bound=0.0)
flags.DEFINE_bool("table", False, "Evaluate: --model is a comma-separated list; print the paper's "
                  "CIFAR-10 table (MAE, accuracy per model, and the gray baseline).")
flags.DEFINE_integer("limit", 0, "Evaluate: at most this many images (0 = all).", lower_bound=0)
flags.DEFINE_integer("grid_images", 4, "Evaluate: best and worst images shown in grid.png.",
                     lower_bound=1)
flags.DEFINE_bool("overwrite", False, "colorize/export: replace existing output files (evaluate "
                  "always rewrites its report directory).")
flags.DEFINE_bool("verbose", False, "Print the traceback of unexpected errors.")
flags.DEFINE_string("recipe", None, "Name of a recipe in colorgan/configs (e.g. 'quickstart'); "
                    "works from any directory. Flags after it override it.")

# Fields that a resumed run may change: run length, logging and local paths.
RESUMABLE_FIELDS = frozenset({
    "steps", "log_every_steps", "ckpt_every_steps", "sample_every_steps", "val_every_steps",
    "val_batches", "val_split", "keep_checkpoints", "deterministic", "cache_dir", "tfds_data_dir",
    "max_pixels", "nonfinite", "strategy", "tpu",
})


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole training run's configuration."""
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.data.image_size != self.model.image_size:
            raise ValueError(f"data.image_size={self.data.image_size} != "
                             f"model.image_size={self.model.image_size}")


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def _section_values(section_cls, values: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(section_cls)}
    return section_cls(**{k: v for k, v in values.items() if k in names})


def from_flags(flag_values: flags.FlagValues) -> Config:
    """Builds the run's Config from parsed flags (call once, in a verb's main)."""
    values = {name: flag_values[name].value for name in flag_values}
    return Config(**{key: _section_values(cls, values) for key, cls in _SECTIONS.items()})


def from_dict(d: dict[str, dict[str, Any]]) -> Config:
    """Inverse of `to_dict` (reads config.json); unknown keys are an error."""
    sections = {}
    for key, cls in _SECTIONS.items():
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d.get(key, {})) - names
        if unknown:
            raise ValueError(f"unknown {key} config keys: {sorted(unknown)}")
        sections[key] = cls(**d.get(key, {}))
    return Config(**sections)


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    return dataclasses.asdict(cfg)


def to_json(cfg: Config) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n"


def to_flagfile(cfg: Config) -> str:
    """The resolved config as a flagfile that reproduces it (`--flagfile=workdir/config.flags`)."""
    lines = ["# Resolved colorgan config, written by colorgan.train."]
    seen = set()
    for section in to_dict(cfg).values():
        for name, value in section.items():
            if name in seen:
                continue
            seen.add(name)
            if isinstance(value, bool):
                lines.append(f"--{name}" if value else f"--no{name}")
            else:
                lines.append(f"--{name}={value}")
    return "\n".join(lines) + "\n"


def non_defaults(cfg: Config) -> dict[str, Any]:
    """Fields that differ from the dataclass defaults, for the log (as pix2pix's print_options)."""
    out = {}
    for key, cls in _SECTIONS.items():
        default = cls.__dataclass_fields__
        for name, value in dataclasses.asdict(getattr(cfg, key)).items():
            if value != default[name].default:
                out[name] = value
    return out


def config_differences(old: Config, new: Config) -> list[str]:
    """Fields that differ between two configs, except those a resumed run may change."""
    diffs = []
    old_d, new_d = to_dict(old), to_dict(new)
    for key in _SECTIONS:
        for name, value in new_d[key].items():
            if name not in RESUMABLE_FIELDS and old_d[key].get(name) != value:
                diffs.append(f"{name}: {old_d[key].get(name)!r} -> {value!r}")
    return diffs


def recipe_path(name: str) -> str:
    """Path of a bundled recipe, by name ('quickstart') or file name ('quickstart.flags')."""
    filename = name if name.endswith(".flags") else f"{name}.flags"
    path = os.path.join(CONFIGS_DIR, filename)
    if not os.path.isfile(path):
        available = sorted(f[:-6] for f in os.listdir(CONFIGS_DIR) if f.endswith(".flags"))
        raise ValueError(f"unknown recipe {name!r}; available: {', '.join(available)}")
    return path
