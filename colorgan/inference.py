"""Loading a trained model, and the full-resolution colourisation path.

The pixel path, used by the CLI and the Python API alike (and the SavedModel export later):
take L from the input at its original size; resize L so its short side is the render size and
both sides are multiples of 2**depth; predict ab; upsample ab bilinearly back to the original
size; combine with the original L; Lab -> sRGB. A 3-channel (Lab) model's predicted L is never
used: the output keeps every detail of the input.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from colorgan import color, workdir
from colorgan.config import Config


def render_hw(hw: tf.Tensor, render_size: int, multiple: int) -> tf.Tensor:
    """Model-input size for an image of size `hw` ([2] int): short side ~render_size, aspect kept,
    both sides rounded to a multiple of `multiple` (at least one multiple)."""
    hw = tf.cast(hw, tf.float32)
    scaled = hw * (render_size / tf.reduce_min(hw))
    rounded = tf.round(scaled / multiple) * multiple
    return tf.cast(tf.maximum(rounded, multiple), tf.int32)


def colorize_l(predict_ab, l: tf.Tensor, render_size: int, multiple: int) -> tf.Tensor:
    """Model-space `l` (N, H, W, 1) at full size -> `ab` (N, H, W, 2) at full size.

    Args:
      predict_ab: callable, model-space l (N, h, w, 1) -> ab (N, h, w, 2), h and w multiples of
        `multiple`.
      l: float32 (N, H, W, 1) in [-1, 1], any H, W.
      render_size: short side, in pixels, at which the model sees the image.
      multiple: 2**depth of the model.
    """
    full_hw = tf.shape(l)[1:3]
    small = tf.image.resize(l, render_hw(full_hw, render_size, multiple), antialias=True)
    ab = predict_ab(small)
    return tf.image.resize(ab, full_hw, method="bilinear")


def colorize_rgb(predict_ab, rgb: tf.Tensor, render_size: int, multiple: int) -> tf.Tensor:
    """sRGB (N, H, W, 3) in [0, 1] (colour or gray) -> colourised sRGB (N, H, W, 3) in [0, 1]."""
    l = color.rgb_to_gray_l(rgb)
    return color.model_to_rgb(l, colorize_l(predict_ab, l, render_size, multiple))


@dataclasses.dataclass
class Colorizer:
    """A loaded model: the generator, its config and the size it renders at."""
    generator: keras.Model
    config: Config
    source: str
    # One traced pixel path per render size (input shapes vary, so traces relax to None dims).
    _functions: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def multiple(self) -> int:
        return 2 ** self.config.model.num_down

    @property
    def train_size(self) -> int:
        return self.config.model.image_size

    def predict_ab(self, l: tf.Tensor) -> tf.Tensor:
        """Model-space l (N, h, w, 1) -> ab (N, h, w, 2), inference mode."""
        return self.generator(l, training=False)[..., -2:]

    def colorize(self, rgb: tf.Tensor, render_size: int = 0) -> tf.Tensor:
        """sRGB (N, H, W, 3) float in [0, 1] -> colourised sRGB (N, H, W, 3) float32 in [0, 1]."""
        size = render_size or self.train_size
        if size not in self._functions:
            self._functions[size] = tf.function(
                lambda rgb: colorize_rgb(self.predict_ab, rgb, size, self.multiple),
                reduce_retracing=True)
        return self._functions[size](tf.convert_to_tensor(rgb, tf.float32))


def load_model(spec: str | Colorizer = "default", checkpoint_step: int = 0) -> Colorizer:
    """Loads a model for inference.

    Args:
      spec: a training workdir (latest checkpoint, or `checkpoint_step`), 'default' (the shipped
        reference model), or an already loaded Colorizer (returned as is).
      checkpoint_step: with a workdir, the checkpoint to load (0 = latest).
    Raises:
      UserError: nothing loadable at `spec`.
    """
    if isinstance(spec, Colorizer):
        return spec
    generator, cfg = workdir.load_generator(spec, checkpoint_step)
    return Colorizer(generator=generator, config=cfg, source=spec)


def colorize_array(image: np.ndarray, model: str | Colorizer = "default",
                   render_size: int = 0) -> np.ndarray:
    """Colourises one image in memory.

    Args:
      image: uint8 (H, W) or (H, W, 1) gray, or (H, W, 3) RGB (converted to gray first).
      model: anything `load_model` accepts.
      render_size: short side the model sees (0 = its training size).
    Returns:
      uint8 (H, W, 3) sRGB with the input's luminance and predicted colour.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"colorize_array takes uint8 images, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"expected (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}")
    rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image
    out = load_model(model).colorize(rgb[None].astype(np.float32) / 255.0, render_size)[0]
    return tf.image.convert_image_dtype(out, tf.uint8, saturate=True).numpy()
