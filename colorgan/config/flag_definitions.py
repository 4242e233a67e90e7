"""Every colorgan flag, defined once (absl flags are process-global): the configs' fields, whose
defaults and choices come from the dataclasses in colorgan.config, and the verbs' I/O flags.
"""

from __future__ import annotations

from absl import flags

from colorgan.config import (_DEFAULTS, CHOICES, DEFAULT_BATCH_FRAMES, DEFAULT_CRF,
                             DEFAULT_EXPORT_FORMATS, EXPORT_FORMATS, HINT_MAX_POINTS,
                             INFERENCE_FIELDS, NO_HINT_INFERENCE, STRATEGIES, TEMPORAL_MODES,
                             TFJS_QUANTIZATIONS)

# ---------------------------------------------------------------- data flags
flags.DEFINE_string(
    "data", _DEFAULTS["data"],
    "Image source: 'samples' (the bundled photos), a folder of JPEG/PNG images (searched "
    "recursively), a .tar/.tar.gz/.tgz archive of images (extracted once to --cache_dir), or "
    "'tfds:NAME' (a TFDS dataset already prepared in --tfds_data_dir; nothing is downloaded).")
flags.DEFINE_enum(
    "split", _DEFAULTS["split"], list(CHOICES["split"]),
    "Split to train on (evaluate: to score; default test there). A source's own train/val/test "
    "folders are used when present; otherwise files are assigned by a stable hash of their path "
    "using --val_fraction. 'all': every image of the source (e.g. a flat evaluation set).")
flags.DEFINE_enum(
    "val_split", _DEFAULTS["val_split"], list(CHOICES["val_split"]),
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
    "Refuse images (video: frames) whose header claims more pixels than this (decompression "
    "bombs), before decoding. 120 MP is a 1200-dpi scan of an 8x10-inch print.", lower_bound=1)
flags.DEFINE_string(
    "cache_dir", _DEFAULTS["cache_dir"],
    "Where archives are extracted, TFDS datasets exported and the TF.js converter's environment "
    "created (default: $COLORGAN_CACHE or "
    "~/.cache/colorgan). Never inside the repository.")
flags.DEFINE_string("tfds_data_dir", _DEFAULTS["tfds_data_dir"],
                    "TFDS data_dir for 'tfds:NAME' sources (default: TFDS's).")
flags.DEFINE_string(
    "data_weights", _DEFAULTS["data_weights"],
    "With several comma-separated --data sources: their shares of the training examples, "
    "comma-separated (e.g. 0.5,0.5; normalised). Empty: in proportion to their sizes.")

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
    "output_space", _DEFAULTS["output_space"], list(CHOICES["output_space"]),
    "Generator output: 'lab' (3 channels, the seed's choice; inference still keeps the input's "
    "own L) or 'ab' (2 channels: capacity only where it is needed).")
flags.DEFINE_enum(
    "upsample", _DEFAULTS["upsample"], list(CHOICES["upsample"]),
    "Decoder upsampling: 'transpose' (4x4 stride-2 transposed conv, the seed) or 'resize_conv' "
    "(bilinear x2 then 3x3 conv: no checkerboard artefacts).")
flags.DEFINE_integer("dropout_blocks", _DEFAULTS["dropout_blocks"],
                     "Dropout after the first N decoder blocks (pix2pix: 3).",
                     lower_bound=0)
flags.DEFINE_float("dropout_rate", _DEFAULTS["dropout_rate"],
                   "Dropout rate for --dropout_blocks.", lower_bound=0.0,
                   upper_bound=0.95)
flags.DEFINE_enum(
    "discriminator", _DEFAULTS["discriminator"], list(CHOICES["discriminator"]),
    "'dcgan': stride-2 convs down to 4x4 then one logit per image (the seed); 'patch': "
    "pix2pix's PatchGAN, one logit per overlapping patch.")
flags.DEFINE_integer("disc_filters", _DEFAULTS["disc_filters"],
                     "Channels of the discriminator's first conv.", lower_bound=1)
flags.DEFINE_enum(
    "head", _DEFAULTS["head"], list(CHOICES["head"]),
    "Generator output: 'regression' (tanh colour, the seed) or 'classification' (logits over "
    "the 262 in-gamut a*b* bins of Zhang et al. 2016, decoded in the graph by the annealed "
    "mean; needs --output_space=ab).")
flags.DEFINE_integer(
    "output_stride", _DEFAULTS["output_stride"],
    "G predicts colour at 1/N of its input's resolution (1, 2, 4, ...; the outermost decoder "
    "blocks are dropped) and it is upsampled bilinearly: colour is low-frequency and the photo "
    "keeps its own full-resolution L (Zhang et al. 2016 predict at 1/4).", lower_bound=1)
flags.DEFINE_integer(
    "global_context", _DEFAULTS["global_context"],
    "Channels of an image-level context branch fused into the bottleneck (global average "
    "pool -> dense, added to every position; after Iizuka et al. 2016). 0 = off.", lower_bound=0)
flags.DEFINE_bool(
    "hint_inputs", _DEFAULTS["hint_inputs"],
    "User-guided colour (Zhang et al. 2017): G also takes a hint map (a*b* and a mask at its "
    "input size; zeros = automatic), through a branch whose weights start at zero, so a "
    "fine-tune with --init_from starts from exactly the automatic model. Training simulates "
    "hints (--hint_free_fraction of images get none).")
flags.DEFINE_bool(
    "hint_shortcut", _DEFAULTS["hint_shortcut"],
    "--hint_inputs: the hint map, averaged over each output cell, also feeds G's output layer "
    "through a 1x1 conv added to it: a direct path for 'this cell's colour is the hint's'. "
    "Classification heads start it at the Gaussian over the bins around the hint's colour (a "
    "linear map of (a*b* x coverage, coverage)), regression heads at zero; with no hints it "
    "adds nothing, so the automatic mode starts as the --init_from model exactly.")
flags.DEFINE_float(
    "vividness", _DEFAULTS["vividness"],
    "How vivid colour is, > 0; 1 = the model's plain prediction. Classification heads: the "
    "annealed-mean temperature is 1/vividness (Zhang et al.'s T = 0.38 is 2.6); regression "
    "heads: a*b* are scaled by it. colorize/evaluate/batch/video: overrides the model's own value "
    "(chosen on validation data, in its config); export: baked into the exported graphs.",
    lower_bound=0.01)
flags.DEFINE_float(
    "hint_reach", _DEFAULTS["hint_reach"],
    "Colour hints: how far, in pixels of the model's view, a hint's colour correction spreads "
    "after G (edge-aware, fading beyond this; colorgan/hint_spread.py). > 0 makes any model take "
    "hints (an automatic one through this alone); 0 = off (a --hint_inputs model's G alone). "
    "colorize/evaluate: overrides the model's own value (chosen on validation data); export: "
    "baked into the hint-taking graphs.",
    lower_bound=0.0)

# ------------------------------------------------------------ training flags
flags.DEFINE_enum("mode", _DEFAULTS["mode"], list(CHOICES["mode"]),
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
flags.DEFINE_enum("pixel_loss", _DEFAULTS["pixel_loss"], list(CHOICES["pixel_loss"]),
                  "Pixel loss to the ground truth: 'l2' (mean squared error, the seed's baseline), "
                  "'l1' (pix2pix and the paper's GAN), or 'none' (a classification head's "
                  "cross-entropy alone). With --head=classification it applies to the decoded "
                  "mean colour (temperature 1).")
flags.DEFINE_float("pixel_weight", _DEFAULTS["pixel_weight"],
                   "GAN: weight of the pixel loss against the adversarial "
                   "loss (lambda = 100 in pix2pix and Nazeri et al. 2018).", lower_bound=0.0)
flags.DEFINE_float("label_smoothing", _DEFAULTS["label_smoothing"],
                   "GAN: one-sided label smoothing; real targets become "
                   "1 - this (the paper's code: 0.1).", lower_bound=0.0, upper_bound=0.5)
flags.DEFINE_enum("mixed_precision", _DEFAULTS["mixed_precision"], list(CHOICES["mixed_precision"]),
                  "Compute dtype. 'bfloat16' (Keras mixed_bfloat16) is 1.15-1.6x faster on this "
                  "CPU; variables and losses stay float32.")
flags.DEFINE_enum("nonfinite", _DEFAULTS["nonfinite"], list(CHOICES["nonfinite"]),
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
flags.DEFINE_enum(
    "strategy", _DEFAULTS["strategy"], list(STRATEGIES),
    "tf.distribute strategy (see colorgan/distribute.py and BUILD.md): 'default' (one device), "
    "'mirrored' (this machine's GPUs, or its logical CPUs), 'multiworker' (the cluster in "
    "TF_CONFIG; run the same command on every worker), 'tpu' (--tpu). --batch_size is the global "
    "batch. Checkpoints restore under any strategy, so it may change when resuming.")
flags.DEFINE_string("tpu", _DEFAULTS["tpu"], "--strategy=tpu: the TPU's name or grpc:// address "
                    "(empty on a Cloud TPU VM).")
flags.DEFINE_enum(
    "color_upsample", _DEFAULTS["color_upsample"], list(CHOICES["color_upsample"]),
    "How predicted a*b* reach the photo's full resolution: 'bilinear', or 'guided' (edge-aware, "
    "a fast guided filter on the photo's own L; colorgan/upsampling.py). colorize/evaluate/"
    "batch/video: overrides the model's own setting; export: used by the SavedModel's image-bytes "
    "path.")
flags.DEFINE_float("hint_free_fraction", _DEFAULTS["hint_free_fraction"],
                   "--hint_inputs: the share of training images given no hint (besides the "
                   "geometric draw's zeros), so the automatic mode stays as good.",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_bool("hinted_rebalance", _DEFAULTS["hinted_rebalance"],
                  "--hint_inputs, --head=classification: apply the class rebalancing to images "
                  "given hints too. Off: they weigh every colour bin alike (Zhang et al. 2017 "
                  "fine-tune hints with a plain regression loss): a hint pins the colour, and "
                  "rebalancing then pushes it to rarer, more saturated bins and spreads it.")
flags.DEFINE_float("cpu_minutes", _DEFAULTS["cpu_minutes"],
                   "Stop (with a checkpoint) once the run's training CPU time (all threads, summed "
                   "over every session of the workdir) reaches this many CPU-minutes; 0 = only "
                   "--steps. A busy 2-core machine spends ~2 per minute; a paused or shared run "
                   "spends less. For comparing recipes at equal cost (benchmarks/quality.py).",
                   lower_bound=0.0)
flags.DEFINE_bool(
    "flip_average", _DEFAULTS["flip_average"],
    "Average the colour predicted for the photo and for its mirror image (test-time "
    "augmentation; twice the model's compute). colorize/evaluate/batch/video: overrides the model's "
    "own setting; export: baked into the exported graphs.")
flags.DEFINE_float("class_weight", _DEFAULTS["class_weight"],
                   "--head=classification: weight of the rebalanced cross-entropy against the "
                   "pixel loss (the reconstruction loss is pixel + this x cross-entropy).",
                   lower_bound=0.0)
flags.DEFINE_float("rebalance_lambda", _DEFAULTS["rebalance_lambda"],
                   "--head=classification: class rebalancing against the training data's colour "
                   "prior (Zhang et al. 2016, eq. 4: lambda 0.5); 1 = no rebalancing. Range "
                   "[0, 1].", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("ema_decay", _DEFAULTS["ema_decay"],
                   "Keep an exponential moving average of G's weights with this decay per step "
                   "(e.g. 0.999); validation, export and inference then use it. 0 = off.",
                   lower_bound=0.0, upper_bound=0.99999)
flags.DEFINE_enum("lr_schedule", _DEFAULTS["lr_schedule"], list(CHOICES["lr_schedule"]),
                  "Learning rate over the run: 'constant', or 'cosine' decay from "
                  "--learning_rate to --lr_final_fraction of it over --lr_decay_steps.")
flags.DEFINE_integer("lr_decay_steps", _DEFAULTS["lr_decay_steps"],
                     "--lr_schedule=cosine: steps of the decay (required; then the rate stays at "
                     "its final value, so a resumed run with more --steps keeps its schedule).",
                     lower_bound=0)
flags.DEFINE_float("lr_final_fraction", _DEFAULTS["lr_final_fraction"],
                   "--lr_schedule=cosine: the learning rate at the end, as a fraction of "
                   "--learning_rate.", lower_bound=0.0, upper_bound=1.0)

# ------------------------------------------------------------ verb I/O flags
flags.DEFINE_string("workdir", None, "train/quickstart: run directory (config, checkpoints, "
                    "TensorBoard, samples). Re-running with the same workdir resumes.")
flags.DEFINE_string("model", "default", "colorize/export/evaluate/batch/video: the model: a training "
                    "workdir (latest checkpoint, or --checkpoint_step), an exported SavedModel "
                    "(version dir or TF Serving base dir), a .tflite file, a packaged fp16 model "
                    "dir, or 'default' (the shipped reference model). batch: also a URI "
                    "(gs://...) of any of these, copied to each worker once. web: the folder an "
                    "export wrote (its newest TF.js version), a TF.js version folder, or "
                    "'default' (exported to TF.js into the cache on first use).")
flags.DEFINE_integer("checkpoint_step", 0, "With a workdir --model: the checkpoint step to load "
                     "(0 = latest).", lower_bound=0)
flags.DEFINE_string("output", None, "Output directory (batch: a path or a URI such as "
                    "gs://bucket/dir; the manifest and dead letters are written there too).")
flags.DEFINE_multi_string("input", None, "Batch: an input, repeat for several: a file, a folder "
                          "(searched recursively; its structure is kept under --output) or a "
                          "glob ('**' matches across folders); a local path or a URI (gs://, "
                          "s3://, hdfs:// where Beam's extra for it is installed).")
flags.DEFINE_integer("batch_images", 8, "Batch: at most this many photos per model call (photos "
                     "that share a render shape run as one batch).", lower_bound=1)
flags.DEFINE_float("batch_megapixels", 24.0, "Batch: at most this many full-resolution "
                   "megapixels (decoded, ~12 MB each) buffered per batch; a larger photo runs "
                   "alone.", lower_bound=0.001)
flags.DEFINE_float("progress_every_s", 5.0, "Batch: seconds between progress lines (each "
                   "worker logs its own counts).", lower_bound=0.1)
flags.DEFINE_integer("render_size", 0, "colorize/export/evaluate/batch/video: the short side (px) the "
                     "model sees; colour is upsampled to full size. 0 = the model's own (an "
                     "export's render size, else its training size).",
                     lower_bound=0)
flags.DEFINE_enum("format", "png", ["png", "jpg"], "Colourise/batch: output format (PNG is "
                  "lossless; JPEG drops alpha).")
flags.DEFINE_enum("temporal", TEMPORAL_MODES[0], list(TEMPORAL_MODES), "Video: 'flow' carries "
                  "each frame's colour to the next along optical flow (less flicker; "
                  "colorgan/temporal.py); 'none' colours every frame on its own.")
flags.DEFINE_integer("crf", DEFAULT_CRF, "Video: x264's constant rate factor (0-51; lower is "
                     "better and larger; the default is close to visually lossless).",
                     lower_bound=0, upper_bound=51)
flags.DEFINE_integer("batch_frames", DEFAULT_BATCH_FRAMES, "Video: frames per model call (memory grows with it).",
                     lower_bound=1)
flags.DEFINE_string("hints", "", "Colourise: user colour hints for a hint model (trained with "
                    "--hint_inputs): a hints JSON file ({\"points\": [{\"x\": 120, \"y\": 80, "
                    "\"color\": \"#4a7bd0\"}, ...]}; colorgan/user_hints.py) for every input, or "
                    "'auto': <stem>.hints.json beside each input where there is one. Empty: "
                    "automatic.")
flags.DEFINE_bool("compare", False, "Colourise: also write <stem>_compare.png, input | result.")
flags.DEFINE_integer("version", 1, "Export: the SavedModel version directory under --output "
                     "(TF Serving serves the highest).", lower_bound=1)
flags.DEFINE_list("formats", list(DEFAULT_EXPORT_FORMATS),
                  f"Export: comma-separated formats of {', '.join(EXPORT_FORMATS)} (fp16_weights: "
                  "the generator packaged as colorgan/pretrained ships it).")
flags.DEFINE_enum("tfjs_quantization", TFJS_QUANTIZATIONS[0], list(TFJS_QUANTIZATIONS),
                  "Export's tfjs format (and web's default model): how the TF.js model stores "
                  "its weights: float16 (half the size, colour "
                  "within 0.5 Lab units), float32 (the reference) or uint8 (a quarter, a few Lab "
                  "units off).")
flags.DEFINE_integer("port", 8000, "Web: the port on 127.0.0.1 the page is served on (0: any "
                     "free port).", lower_bound=0, upper_bound=65535)
flags.DEFINE_integer("calibration_images", 100, "Export: training images used to calibrate the "
                     "int8 TFLite model.", lower_bound=1)
flags.DEFINE_bool("full_res", False, "Evaluate: colourise each image at its own full size (L at "
                  "full resolution, colour rendered at --render_size); default: centre-crop to "
                  "the model's training size.")
flags.DEFINE_float("accuracy_threshold", 2.0, "Evaluate: t of the paper's accuracy (a pixel counts "
                   "when |dL| <= t and |da|, |db| <= 2.2 t).", lower_bound=0.0)
flags.DEFINE_bool("table", False, "Evaluate: --model is a comma-separated list; print the paper's "
                  "CIFAR-10 table (MAE, accuracy per model, and the gray baseline).")
flags.DEFINE_integer("limit", 0, "Evaluate: at most this many images (0 = all; with --video: "
                     "frames per video).", lower_bound=0)
flags.DEFINE_list("hint_points", [], "Evaluate: for a hint model (--hint_inputs), PSNR/AuC with "
                  "this many hints per image simulated from the truth (e.g. 0,1,2,5,10,20; 0 is "
                  "the automatic mode), beside gray; writes hint_metrics.json, hint_curve.png.")
flags.register_validator(
    "hint_points", lambda values: all(v.strip().isdigit() and int(v) <= HINT_MAX_POINTS
                                      for v in values),
    message=f"--hint_points takes integers in 0..{HINT_MAX_POINTS}, comma-separated")
flags.DEFINE_multi_string("video", None, "Evaluate: score these videos (repeat the flag) instead "
                          "of --data: flicker (warping error) of --temporal flow and none, and "
                          "PSNR/AuC against the video itself where it has colour.")
flags.DEFINE_integer("grid_images", 4, "Evaluate: best and worst images shown in grid.png.",
                     lower_bound=1)
flags.DEFINE_bool("overwrite", False, "colorize/export/batch/video: replace existing output files "
                  "(evaluate always rewrites its report directory).")
flags.DEFINE_bool("verbose", False, "Print the traceback of unexpected errors, and TensorFlow's "
                  "own start-up and log lines (hidden otherwise).")
flags.DEFINE_string("recipe", None, "Name of a recipe in colorgan/configs (e.g. 'quickstart'); "
                    "works from any directory. Flags after it override it.")

# Fields that a resumed run may change: run length, logging and local paths.

# --------------------------------------------------------- the flags each verb's --help shows
_CONFIG_FIELDS = tuple(_DEFAULTS)
_INFERENCE = INFERENCE_FIELDS
VERB_FLAGS = {
    "train": ("workdir", "recipe", *_CONFIG_FIELDS, "verbose"),
    "quickstart": ("workdir", "steps", "verbose"),
    "colorize": ("model", "checkpoint_step", "output", "render_size", *_INFERENCE, "format",
                 "hints", "compare", "overwrite", "max_pixels", "verbose"),
    "export": ("model", "checkpoint_step", "output", "version", "formats", "render_size",
               *_INFERENCE, "calibration_images", "tfjs_quantization", "cache_dir",
               "overwrite", "verbose"),
    "video": ("model", "checkpoint_step", "output", "temporal", "render_size", *NO_HINT_INFERENCE, "crf",
              "batch_frames", "overwrite", "max_pixels", "verbose"),
    "web": ("model", "port", "tfjs_quantization", "cache_dir", "verbose"),
    "batch": ("model", "checkpoint_step", "input", "output", "render_size", *NO_HINT_INFERENCE, "format",
              "overwrite", "max_pixels", "batch_images", "batch_megapixels", "progress_every_s",
              "verbose"),
    "evaluate": ("model", "checkpoint_step", "data", "video", "hint_points", "split", "output",
                 "full_res", "render_size", *_INFERENCE, "accuracy_threshold", "limit", "grid_images", "table",
                 "val_fraction", "max_pixels", "cache_dir", "tfds_data_dir", "verbose"),
}


def declare_verb_flags(verb: str) -> None:
    """Makes `verb`'s flags (VERB_FLAGS) the key flags of the calling verb module: its --help
    shows them, --helpfull shows every flag."""
    for name in VERB_FLAGS[verb]:
        flags.declare_key_flag(name)


# Key flags declared by the function above belong to the module that calls it, not this one.
flags.disclaim_key_flags()
