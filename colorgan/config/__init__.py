"""The frozen `Config` dataclasses that the library takes instead of flags, and every flag.

The flags are defined once, in `colorgan.config.flag_definitions` (absl flags are process-global,
so the verbs' I/O flags are there too), with their defaults and choices taken from here. Flag
names equal dataclass field names, which makes `from_flags`, `to_flagfile` and `from_dict`
generic. Verb `main()`s call `from_flags(FLAGS)` exactly once; nothing below `main()` reads
flags. Every field is checked where it is defined (`__post_init__`). Recipes live in
`colorgan/configs/*.flags`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

from absl import flags

CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs")

# The allowed values of every choice field: the flags' enums and the dataclasses' checks use these.
CHOICES = {
    "split": ("train", "val", "test", "all"),
    "val_split": ("val", "test"),
    "output_space": ("lab", "ab"),
    "upsample": ("transpose", "resize_conv"),
    "head": ("regression", "classification"),
    "color_upsample": ("bilinear", "guided"),
    "discriminator": ("dcgan", "patch"),
    "mode": ("unet", "gan"),
    "pixel_loss": ("l1", "l2", "none"),
    "lr_schedule": ("constant", "cosine"),
    "mixed_precision": ("float32", "bfloat16"),
    "nonfinite": ("stop", "skip"),
    "strategy": ("default", "mirrored", "multiworker", "tpu"),
}
# colorgan.export's formats, and the ones it writes by default (tfjs is not among them: its first
# use creates the converter's own environment, a large download; BUILD.md).
DEFAULT_EXPORT_FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_int8")
EXPORT_FORMATS = DEFAULT_EXPORT_FORMATS + ("fp16_weights", "tfjs")
# How the TF.js export stores its weights: float16 by default, never uint8 unless asked.
TFJS_QUANTIZATIONS = ("float16", "float32", "uint8")
TEMPORAL_MODES = ("flow", "none")  # the video CLI's --temporal (colorgan/temporal.py)
DEFAULT_CRF = 18  # the video CLI's x264 quality: near "visually lossless", colour is what we add
DEFAULT_BATCH_FRAMES = 8  # the video CLI's frames per model call
# ModelConfig's inference settings (not weights): a verb may override them on the command line;
# an export bakes the BAKED ones into its graphs.
INFERENCE_FIELDS = ("vividness", "color_upsample", "flip_average", "hint_reach")
BAKED_INFERENCE = ("vividness", "flip_average", "hint_reach")
NO_HINT_INFERENCE = tuple(f for f in INFERENCE_FIELDS if f != "hint_reach")  # verbs without hints
HINT_MAX_POINTS = 32  # simulated hints per image at most (colorgan/hints.py, --hint_points)
STRATEGIES = CHOICES["strategy"]  # colorgan/distribute.py
# File layout of exports and of the shipped model, here (free of TensorFlow) so that colorgan.web,
# a plain file server, names them without importing colorgan.export or colorgan.workdir.
TFJS_DIR = "tfjs"  # OUTPUT/tfjs/VERSION: a TF.js export
WEB_SIDECAR = "colorgan_web.json"  # beside model.json; read by the page (static/js/colorize.js)
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "pretrained")
PRETRAINED_WEIGHTS = "generator_fp16.npz"
CONFIG_JSON = "config.json"  # a workdir's or a packaged model's config
# Data sources in one --data string are separated by this (a path containing it cannot be used).
SOURCE_SEPARATOR = ","


def check_choice(name: str, value: str) -> str:
    """`value` if it is one of CHOICES[name], else ValueError naming the field and the allowed
    values. Dispatch sites call it too, so no branch falls back silently."""
    if value not in CHOICES[name]:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(CHOICES[name])}")
    return value


def _check_choices(section) -> None:
    """Raises ValueError naming the field and its allowed values for any unknown choice."""
    for f in dataclasses.fields(section):
        if f.name in CHOICES:
            check_choice(f.name, getattr(section, f.name))


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
    data_weights: str = ""

    def __post_init__(self):
        _check_choices(self)
        if not all(self.sources):
            raise ValueError(f"data={self.data!r} has an empty source between "
                             f"{SOURCE_SEPARATOR!r}s")
        weights = self.source_weights
        if weights is not None and (len(weights) != len(self.sources)
                                    or not all(math.isfinite(w) and w >= 0 for w in weights)
                                    or sum(weights) <= 0):
            raise ValueError(f"data_weights={self.data_weights!r} must be one non-negative number "
                             f"per source ({len(self.sources)}: {', '.join(self.sources)}), "
                             "not all zero")

    @property
    def sources(self) -> tuple[str, ...]:
        """The sources of `data`, in order (one for a plain folder, archive or TFDS name)."""
        return tuple(s.strip() for s in self.data.split(SOURCE_SEPARATOR))

    @property
    def source_weights(self) -> tuple[float, ...] | None:
        """Mixing weights of the sources, or None: in proportion to their sizes."""
        if not self.data_weights.strip():
            return None
        try:
            return tuple(float(w) for w in self.data_weights.split(","))
        except ValueError as e:
            raise ValueError(f"data_weights={self.data_weights!r} is not a comma-separated list "
                             "of numbers") from e


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
    head: str = "regression"
    output_stride: int = 1
    global_context: int = 0
    hint_inputs: bool = False  # user-guided: G also takes a hint map (colorgan/hints.py)
    hint_shortcut: bool = False  # --hint_inputs: the hint map also feeds G's output layer
    # Inference settings, not weights: chosen on validation data and shipped in the config.
    vividness: float = 1.0
    color_upsample: str = "bilinear"
    flip_average: bool = False
    hint_reach: float = 0.0  # > 0: hints are spread after G this far (hint_spread.py); any model

    def __post_init__(self):
        _check_choices(self)
        if self.output_stride < 1 or self.output_stride & (self.output_stride - 1):
            raise ValueError(f"output_stride={self.output_stride} is not a power of two")
        if self.output_stride >= 2 ** self.num_down:
            raise ValueError(f"output_stride={self.output_stride} leaves no decoder block of the "
                             f"{self.num_down} (it must be below 2**depth={2 ** self.num_down})")
        if self.head == "classification" and self.output_space != "ab":
            raise ValueError("head='classification' predicts a*b* bins: it needs output_space='ab', "
                             f"got {self.output_space!r}")
        if self.vividness <= 0:
            raise ValueError(f"vividness={self.vividness} must be positive")
        if self.num_down < 1:
            raise ValueError(f"depth must give at least one encoder block, got {self.num_down}")
        if self.image_size % (2 ** self.num_down):
            raise ValueError(f"image_size={self.image_size} is not a multiple of "
                             f"2**depth={2 ** self.num_down}")
        if self.hint_reach < 0:
            raise ValueError(f"hint_reach={self.hint_reach} must be >= 0")
        if self.hint_shortcut and not self.hint_inputs:
            raise ValueError("hint_shortcut feeds the hint map to the output layer: it needs "
                             "hint_inputs")
        if self.dropout_blocks > self.decoder_blocks - 1:
            raise ValueError(f"dropout_blocks={self.dropout_blocks} exceeds the "
                             f"{self.decoder_blocks - 1} skip-connected decoder blocks")

    def generator_config(self) -> "ModelConfig":
        """This config with the fields G's weights do not depend on at their defaults: the
        discriminator, the training size (G is fully convolutional) and the inference settings."""
        defaults = ModelConfig()
        return dataclasses.replace(self, discriminator=defaults.discriminator,
                                   disc_filters=defaults.disc_filters, vividness=defaults.vividness,
                                   color_upsample=defaults.color_upsample,
                                   flip_average=defaults.flip_average,
                                   hint_reach=defaults.hint_reach, image_size=self.multiple)

    @property
    def takes_hints(self) -> bool:
        """Whether the model takes colour hints: G does (hint_inputs), or they are spread after
        G (hint_reach > 0; an automatic G then takes them through the spreading alone)."""
        return self.hint_inputs or self.hint_reach > 0

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this: 2**num_down."""
        return 2 ** self.num_down

    @property
    def decoder_blocks(self) -> int:
        """Decoder blocks: one per encoder block, less the outermost log2(output_stride)."""
        return self.num_down - int(math.log2(self.output_stride))

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
        """Colour channels G's output decodes to (and D sees): 3 (Lab) or 2 (ab)."""
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
    class_weight: float = 1.0
    rebalance_lambda: float = 0.5
    ema_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_decay_steps: int = 0
    lr_final_fraction: float = 0.0
    cpu_minutes: float = 0.0
    hint_free_fraction: float = 0.5  # --hint_inputs: images trained with no hint at all
    hinted_rebalance: bool = True  # --hint_inputs: rebalance the images given hints too

    def __post_init__(self):
        _check_choices(self)
        for name, low, high in (("lr_final_fraction", 0, 1), ("rebalance_lambda", 0, 1),
                                ("hint_free_fraction", 0, 1),
                                ("class_weight", 0, math.inf), ("label_smoothing", 0, 0.5)):
            if not low <= getattr(self, name) <= high:
                raise ValueError(f"{name}={getattr(self, name)} must be in [{low}, {high}]")
        if self.lr_schedule == "cosine" and self.lr_decay_steps < 1:
            raise ValueError("lr_schedule='cosine' needs lr_decay_steps > 0")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay} must be in [0, 1)")


# Every flag's default is its dataclass field's default: one place for each value.
_DEFAULTS = {f.name: f.default for cls in (DataConfig, ModelConfig, TrainConfig)
             for f in dataclasses.fields(cls)}

RESUMABLE_FIELDS = frozenset({
    "steps", "log_every_steps", "ckpt_every_steps", "sample_every_steps", "val_every_steps",
    "val_batches", "val_split", "keep_checkpoints", "deterministic", "cache_dir", "tfds_data_dir",
    "max_pixels", "nonfinite", "strategy", "tpu", "vividness", "color_upsample", "flip_average", "hint_reach",
    "cpu_minutes",
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
        if self.model.head == "regression" and self.train.pixel_loss == "none":
            raise ValueError("pixel_loss='none' leaves a regression head without a loss; use "
                             "head='classification' or pixel_loss l1/l2")
        if not self.train.hinted_rebalance and not (self.model.hint_inputs
                                                    and self.model.head == "classification"):
            raise ValueError("hinted_rebalance=False weighs a classification hint model's hinted "
                             "images: it needs hint_inputs and head='classification'")
        if self.train.mode == "gan" and (self.model.output_stride != 1
                                         or self.model.head != "regression"):
            raise ValueError("mode='gan' needs a full-resolution regression generator "
                             f"(output_stride=1, head='regression'); got output_stride="
                             f"{self.model.output_stride}, head={self.model.head!r}")


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


# The flags themselves (defined on import, from the defaults and choices above).
from colorgan.config import flag_definitions  # noqa: E402,F401  pylint: disable=wrong-import-position
