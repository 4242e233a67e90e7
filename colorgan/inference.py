"""Loading a model for inference (Keras checkpoint, SavedModel or TFLite), and the
full-resolution colourisation path.

The pixel path, shared by the colourise CLI, the Python API and the exported SavedModel:
take L from the input at its original size; resize L so its short side is the render size and
both sides are multiples of 2**depth; predict ab; upsample ab bilinearly back to the original
size; combine with the original L; Lab -> sRGB. A 3-channel (Lab) model's predicted L is never
used: the output keeps every detail of the input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from colorgan import color, data, images, models, tflite_runtime, upsampling, user_hints, workdir
from colorgan import config as config_lib
from colorgan.config import Config
from colorgan.errors import UserError

# Exported models carry their config: SavedModels in assets.extra/ (TF Serving ignores it),
# TFLite files in a JSON sidecar `<file>.tflite.json` (with the parity report).
SAVED_MODEL_CONFIG = os.path.join("assets.extra", "colorgan_config.json")
L_SIGNATURE = "colorize_l"
L_HINTS_SIGNATURE = "colorize_l_hints"  # hint models only (export: hint_ab, hint_mask beside l)
BYTES_SIGNATURE = "serving_default"


# The model never sees a side longer than this many render sizes: a 1x10000 strip would otherwise
# become 32x320000 pixels. Only the model's view is squeezed; the output keeps the input's shape.
MAX_RENDER_ASPECT = data.MAX_ASPECT


def render_hw(hw: tf.Tensor, render_size: int, multiple: int) -> tf.Tensor:
    """Model-input size for an image of size `hw` ([2] int): short side ~render_size, aspect kept
    up to MAX_RENDER_ASPECT, both sides rounded to a multiple of `multiple` (at least one)."""
    hw = tf.cast(hw, tf.float32)
    scaled = tf.minimum(hw * (render_size / tf.reduce_min(hw)), float(MAX_RENDER_ASPECT * render_size))
    rounded = tf.round(scaled / multiple) * multiple
    return tf.cast(tf.maximum(rounded, multiple), tf.int32)


def colorize_l(predict_ab, l: tf.Tensor, render_size: int, multiple: int,
               color_upsample: str = "bilinear") -> tf.Tensor:
    """Model-space `l` (N, H, W, 1) at full size -> `ab` (N, H, W, 2) at full size.

    Args:
      predict_ab: callable, model-space l (N, h, w, 1) -> ab (N, h, w, 2), h and w multiples of
        `multiple`.
      l: float32 (N, H, W, 1) in [-1, 1], any H, W.
      render_size: short side, in pixels, at which the model sees the image.
      multiple: 2**depth of the model.
      color_upsample: 'bilinear' or 'guided' by the full-size L (upsampling.upsample_ab).
    """
    small = render_l(l, render_size, multiple)
    return upsampling.upsample_ab(predict_ab(small), small, l, color_upsample)


def render_l(l: tf.Tensor, render_size: int, multiple: int) -> tf.Tensor:
    """Full-size model-space `l` (N, H, W, 1) -> the model's view of it (N, h, w, 1): resized
    (antialiased) to render_hw."""
    return tf.image.resize(l, render_hw(tf.shape(l)[1:3], render_size, multiple), antialias=True)


def _rgb_to_l_views(rgb: tf.Tensor, render_size: int, multiple: int) -> tuple[tf.Tensor, tf.Tensor]:
    """sRGB (1, H, W, 3) -> (full-size l (1, H, W, 1), the model's view (1, h, w, 1))."""
    l = color.rgb_to_gray_l(rgb)
    return l, render_l(l, render_size, multiple)


def _ab_to_rgb(ab_small: tf.Tensor, small: tf.Tensor, l: tf.Tensor,
               color_upsample: str) -> tf.Tensor:
    """The model's ab (1, h, w, 2) for the view `small` of `l` (1, H, W, 1) -> sRGB (1, H, W, 3)."""
    return color.model_to_rgb(l, upsampling.upsample_ab(ab_small, small, l, color_upsample))


def colorize_rgb(predict_ab, rgb: tf.Tensor, render_size: int, multiple: int,
                 color_upsample: str = "bilinear") -> tf.Tensor:
    """sRGB (N, H, W, 3) in [0, 1] (colour or gray) -> colourised sRGB (N, H, W, 3) in [0, 1]."""
    l = color.rgb_to_gray_l(rgb)
    return color.model_to_rgb(l, colorize_l(predict_ab, l, render_size, multiple, color_upsample))


@dataclasses.dataclass
class View:
    """One image as the model saw it: full-size model-space L (1, H, W, 1), the model's view of
    it (1, h, w, 1) and the model's colour for that view, ab (1, h, w, 2) in [-1, 1]."""
    l: tf.Tensor
    small: tf.Tensor
    ab: tf.Tensor | np.ndarray


@dataclasses.dataclass
class Colorizer:
    """A loaded model of any kind (Keras, SavedModel, TFLite) behind one interface."""
    predict_ab: Callable[[tf.Tensor], tf.Tensor]  # model-space l (N, h, w, 1) -> ab (N, h, w, 2)
    config: Config
    source: str
    kind: str = "keras"  # 'keras', 'saved_model' or 'tflite'
    generator: keras.Model | None = None  # Keras models only
    keepalive: object = None  # a loaded SavedModel: its variables live as long as this object
    render_size: int = 0  # the default render size (exports: the one they were made for)
    variant: str = ""  # TFLite: tflite_fp32, tflite_fp16 or tflite_int8
    model_id: str = ""  # exports: the identity of the weights they were made from
    # One traced pixel path per render size (input shapes vary, so traces relax to None dims).
    _functions: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def multiple(self) -> int:
        return self.config.model.multiple

    @property
    def train_size(self) -> int:
        return self.config.model.image_size

    @property
    def default_render_size(self) -> int:
        """The short side the model sees unless told otherwise: an export's own, else the
        training size."""
        return self.render_size or self.train_size

    @property
    def identity(self) -> str:
        """A short hash of the weights ('g-' + 12 hex digits): the same weights give the same
        identity on any machine; exports carry the identity of the model they were made from."""
        if not self.model_id:
            digest = hashlib.sha256()
            for w in self.generator.weights:
                digest.update(np.ascontiguousarray(w.numpy(), np.float32).tobytes())
            self.model_id = "g-" + digest.hexdigest()[:12]
        return self.model_id

    def provenance(self, render_size: int = 0) -> dict:
        """The record written into every image this model colours (images.provenance)."""
        m = self.config.model
        return images.provenance(self.identity, self.variant or self.kind,
                                 render_size or self.default_render_size, m.vividness,
                                 m.color_upsample, m.flip_average, m.hint_reach)

    def colorize(self, rgb: tf.Tensor, render_size: int = 0) -> tf.Tensor:
        """sRGB (N, H, W, 3) float in [0, 1] -> colourised sRGB (N, H, W, 3) float32 in [0, 1]."""
        size = render_size or self.default_render_size
        rgb = tf.convert_to_tensor(rgb, tf.float32)
        mode = self.config.model.color_upsample
        if self.kind == "tflite":  # The interpreter is Python, not a TF op: run eagerly.
            return colorize_rgb(self.predict_ab, rgb, size, self.multiple, mode)
        if size not in self._functions:
            self._functions[size] = tf.function(
                lambda rgb: colorize_rgb(self.predict_ab, rgb, size, self.multiple, mode),
                reduce_retracing=True)
        return self._functions[size](rgb)

    @property
    def takes_hints(self) -> bool:
        """Whether the model takes colour hints (ModelConfig.takes_hints; Keras models only)."""
        return self.generator is not None and self.config.model.takes_hints

    def colorize_hints(self, rgb: tf.Tensor, points: list, render_size: int = 0) -> tf.Tensor:
        """`colorize` of one photo (1, H, W, 3) guided by user hints (user_hints.Hint); no
        points is exactly `colorize`.

        Raises:
          UserError: hints for a model that takes none.
        """
        if not points:
            return self.colorize(rgb, render_size)
        full_hw = tuple(rgb.shape[1:3])
        view = self.hinted_view(rgb, lambda hw: user_hints.hint_map(points, full_hw, hw),
                                render_size)
        return self.finish(view)[None]

    def hinted_view(self, rgb: tf.Tensor, hint_map_for: Callable, render_size: int = 0) -> "View":
        """One photo (1, H, W, 3) as a hint model sees it and colours it: `hint_map_for((h, w))`
        gives the hint map (1, h, w, 3) for the model's view (evaluate --hint_points simulates
        one from the truth). Finish it with `finish`.

        Raises:
          UserError: the model takes no hints.
        """
        if not self.takes_hints:
            raise UserError(f"{self.source}: this model takes no hints (give it a --hint_reach, "
                            "or train one with --hint_inputs)")
        size = render_size or self.default_render_size
        cfg = self.config.model
        views = self._traced(("views", size), lambda x: _rgb_to_l_views(x, size, self.multiple))
        l, small = views(tf.convert_to_tensor(rgb, tf.float32))
        predict = self._traced(("predict_hints",), lambda l_small, h: models.predict_ab(
            self.generator, l_small, cfg, hint_map=h))
        return View(l, small, predict(small, hint_map_for(tuple(small.shape[1:3]))))

    def render_shape(self, hw: Sequence[int], render_size: int = 0) -> tuple[int, int]:
        """(h, w) at which the model sees a photo of size `hw` (render_hw): photos with the same
        render shape can share one model call (colorize_batch)."""
        size = render_size or self.default_render_size
        h, w = render_hw(tf.constant(hw[:2], tf.int32), size, self.multiple).numpy()
        return int(h), int(w)

    def colorize_batch(self, rgbs: Sequence[np.ndarray], render_size: int = 0) -> list[tf.Tensor]:
        """Photos of any full sizes that share one render shape -> their colourised sRGB.

        The model runs once on the stacked render-size L; the full-resolution steps (L, ab
        upsampling, Lab -> sRGB) run per photo, as `colorize` runs them (outputs agree with it up
        to float rounding of the batched convolutions).

        Args:
          rgbs: float (H_i, W_i, 3) in [0, 1], all with the same render_shape.
          render_size: as in `colorize`.
        Returns:
          float32 (H_i, W_i, 3) in [0, 1], in order.
        """
        return [self.finish(view) for view in self.predict_views(rgbs, render_size)]

    def predict_views(self, rgbs: Sequence[np.ndarray], render_size: int = 0) -> list["View"]:
        """The first half of `colorize_batch`: each photo's L and the model's colour at render
        size, in one model call. A caller may change a view's `ab` (the video CLI's temporal
        smoothing) before `finish`."""
        size = render_size or self.default_render_size
        views = self._traced(("views", size), lambda rgb: _rgb_to_l_views(rgb, size, self.multiple))
        predict = self._traced(("predict",), self.predict_ab)
        ls, smalls = zip(*(views(tf.convert_to_tensor(rgb[None], tf.float32)) for rgb in rgbs))
        ab = predict(tf.concat(smalls, 0))
        return [View(l, small, ab[i:i + 1]) for i, (small, l) in enumerate(zip(smalls, ls))]

    def finish(self, view: "View") -> tf.Tensor:
        """The second half of `colorize_batch`: a view's ab upsampled to full size with its L
        -> sRGB float32 (H, W, 3) in [0, 1]."""
        mode = self.config.model.color_upsample
        finish = self._traced(("finish",), lambda ab, small, l: _ab_to_rgb(ab, small, l, mode))
        return finish(tf.convert_to_tensor(view.ab, tf.float32), view.small, view.l)[0]

    def _traced(self, key: tuple, fn: Callable) -> Callable:
        """`fn` as one cached tf.function per key (eager for TFLite: its interpreter is Python)."""
        if self.kind == "tflite":
            return fn
        if key not in self._functions:
            self._functions[key] = tf.function(fn, reduce_retracing=True)
        return self._functions[key]

    def with_settings(self, **settings) -> "Colorizer":
        """This model with other inference settings (config.INFERENCE_FIELDS: vividness,
        color_upsample, flip_average, hint_reach; None keeps the model's own).

        Raises:
          UserError: a new baked setting (vividness, flip_average, hint_reach) for an exported
            model (fixed in its graph at export).
        """
        model_cfg = self.config.model
        unknown = set(settings) - set(config_lib.INFERENCE_FIELDS)
        if unknown:
            raise TypeError(f"not inference settings: {sorted(unknown)}")
        changes = {k: v for k, v in settings.items()
                   if v is not None and v != getattr(model_cfg, k)}
        if not changes:
            return self
        try:
            cfg = dataclasses.replace(self.config, model=dataclasses.replace(model_cfg, **changes))
        except ValueError as e:
            raise UserError(f"{self.source}: {e}") from e
        if self.generator is not None:
            return keras_colorizer(self.generator, cfg, self.source)
        baked = sorted(set(changes) & set(config_lib.BAKED_INFERENCE))
        if baked:
            raise UserError(f"{self.source}: an exported model's {' and '.join(baked)} are fixed "
                            "at export; re-export with the setting")
        return dataclasses.replace(self, config=cfg, _functions={})


def keras_colorizer(generator: keras.Model, cfg: Config, source: str) -> Colorizer:
    """Wraps a Keras generator (inference mode, decoded at the config's vividness)."""
    return Colorizer(predict_ab=lambda l: models.predict_ab(generator, l, cfg.model), config=cfg,
                     source=source, kind="keras", generator=generator)


def read_sidecar(path: str) -> dict:
    """An export's sidecar JSON (config, render size, identity, parity), written by export."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _exported(predict_ab, sidecar: dict, source: str, kind: str, **extra) -> Colorizer:
    return Colorizer(predict_ab=predict_ab, config=config_lib.from_dict(sidecar["config"]),
                     source=source, kind=kind, render_size=int(sidecar.get("render_size", 0)),
                     model_id=sidecar.get("model_id", ""), **extra)


def saved_model_dir(path: str) -> str | None:
    """The SavedModel directory at `path`: itself, or the newest numeric version below it
    (TF Serving's base-directory layout). None if there is none."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit()
                and os.path.isfile(os.path.join(path, d, "saved_model.pb"))] if os.path.isdir(path) else []
    return os.path.join(path, max(versions, key=int)) if versions else None


def _load_saved_model(path: str) -> Colorizer:
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures[L_SIGNATURE]
    return _exported(lambda l: signature(l=l)["ab"], read_sidecar(os.path.join(
        path, SAVED_MODEL_CONFIG)), path, "saved_model", keepalive=loaded)


def _load_tflite(path: str) -> Colorizer:
    sidecar = path + ".json"
    if not os.path.isfile(sidecar):
        raise UserError(f"{path}: missing {os.path.basename(sidecar)} (written by colorgan.export "
                        "beside the model; it holds the model config)")
    with open(path, "rb") as f:
        content = f.read()
    info = read_sidecar(sidecar)
    return _exported(tflite_runtime.predict_fn(content), info, path, "tflite",
                     variant=info.get("parity", {}).get("variant", ""))


def load_model(spec: str | Colorizer = "default", checkpoint_step: int = 0,
               **settings) -> Colorizer:
    """Loads a model for inference.

    Args:
      spec: a training workdir (latest checkpoint, or `checkpoint_step`); an exported SavedModel
        (a version directory, or a TF Serving base directory: its newest version); a `.tflite`
        file exported by colorgan.export; 'default' (the shipped reference model); or an already
        loaded Colorizer (returned as is).
      checkpoint_step: with a workdir, the checkpoint to load (0 = latest).
      settings: inference settings (vividness, color_upsample, flip_average, hint_reach; None:
        the model's own; see Colorizer.with_settings).
    Raises:
      UserError: nothing loadable at `spec`.
    """
    return _load(spec, checkpoint_step).with_settings(**settings)


def _load(spec: str | Colorizer, checkpoint_step: int) -> Colorizer:
    if isinstance(spec, Colorizer):
        return spec
    if spec.endswith(".tflite") and os.path.isfile(spec):
        return _load_tflite(spec)
    if spec != "default" and os.path.isdir(spec) and not workdir.read_config(spec):
        exported = saved_model_dir(spec)
        if exported:
            return _load_saved_model(exported)
    if spec != "default" and not os.path.exists(spec):
        raise UserError(f"model {spec} does not exist")
    generator, cfg = workdir.load_generator(spec, checkpoint_step)
    return keras_colorizer(generator, cfg, spec)


def colorize_array(image: np.ndarray, model: str | Colorizer = "default",
                   render_size: int = 0, vividness: float | None = None,
                   hints: list[dict] | None = None) -> np.ndarray:
    """Colourises one image in memory.

    Args:
      image: uint8 (H, W) or (H, W, 1) gray, or (H, W, 3) RGB (converted to gray first).
      model: anything `load_model` accepts.
      render_size: short side the model sees (0 = the model's default).
      vividness: how vivid (None = the model's own, chosen on validation data; see --vividness).
      hints: user colour hints for a hint model, as a hints file's points
        ([{"x": 120, "y": 80, "color": "#4a7bd0"}, ...]; colorgan.user_hints).
    Returns:
      uint8 (H, W, 3) sRGB with the input's luminance and predicted colour.
    Raises:
      ValueError: a bad hint; UserError: hints for a model that takes none.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"colorize_array takes uint8 images, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"expected (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}")
    rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image
    colorizer = load_model(model, vividness=vividness)
    rgb = rgb[None].astype(np.float32) / color.UINT8_MAX
    if hints:
        points = user_hints.parse({"points": hints}, image.shape[1], image.shape[0])
        out = colorizer.colorize_hints(rgb, points, render_size)[0]
    else:
        out = colorizer.colorize(rgb, render_size)[0]
    return color.to_uint8(out).numpy()
