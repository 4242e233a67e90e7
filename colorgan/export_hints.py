"""The hint-taking TFLite models of a user-guided model (issue 18), beside its automatic ones.

A hint model's automatic exports stay exactly as for any model (l in, ab out); these add
`colorgan_<fp32|fp16|int8>_hints.tflite` with three inputs at the model's view size: `l`
(1, H, W, 1), `hint_ab` (1, H, W, 2, model-space a*b*) and `hint_mask` (1, H, W, 1)
(colorgan/hints.py). int8 is calibrated with simulated hints too, and every variant is
checked against the Keras model on held-aside images with simulated hints.
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from colorgan import hints, inference, models, quiet, tflite_runtime

PARITY_HINTS = 5  # simulated hints per parity image


PARITY_COLOUR = 0.6  # simulated hints reveal random model-space colours up to this (mostly a*b*'s)


def hint_maps(l_images: np.ndarray, seed: int, count: int | None = None) -> np.ndarray:
    """Simulated hint maps (N, h, w, 3) for `l_images` (N, h, w, 1), the same for a seed:
    random colours revealed at Zhang et al.'s points; `count` points each (parity checks), or
    the training draw with half the images hint-free (int8 calibration)."""
    colours = tf.random.stateless_uniform([*l_images.shape[:3], 2], [seed, 1], -PARITY_COLOUR,
                                          PARITY_COLOUR)
    return hints.simulate(colours, tf.constant([seed, 2]), free_fraction=0.5,
                          count=count).numpy()


def _keras_fn(colorizer: inference.Colorizer):
    generator, cfg = colorizer.generator, colorizer.config.model
    return lambda l, hint_ab, hint_mask: {"ab": models.predict_ab(
        generator, l, cfg, hint_map=tf.concat([hint_ab, hint_mask], -1))}


def convert(colorizer: inference.Colorizer, variant: str, calibration: np.ndarray,
            configure) -> bytes:
    """The hint-taking flatbuffer of `variant`; `configure`: export's converter settings
    (export._configure_converter), given calibration L whose hints are simulated here."""
    archive = keras.export.ExportArchive()
    spec = lambda c, name: tf.TensorSpec([1, None, None, c], tf.float32, name=name)  # noqa: E731
    archive.add_endpoint("serving_default", _keras_fn(colorizer),
                         input_signature=[spec(1, "l"), spec(2, "hint_ab"), spec(1, "hint_mask")])
    maps = hint_maps(calibration, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter = configure(converter, variant, calibration)
        if variant == "tflite_int8":
            converter.representative_dataset = lambda: (
                [l[None], m[None, ..., :2], m[None, ..., 2:]] for l, m in zip(calibration, maps))
        with quiet.filtered_stderr():
            return converter.convert()


def run(content: bytes, l: np.ndarray, hint_map: np.ndarray) -> np.ndarray:
    """One image through a hint-taking TFLite model: l (1, h, w, 1), hint map (1, h, w, 3)."""
    runner = tflite_runtime.make_interpreter(content).get_signature_runner("serving_default")
    return runner(l=l, hint_ab=np.ascontiguousarray(hint_map[..., :2]),
                  hint_mask=np.ascontiguousarray(hint_map[..., 2:]))["ab"]


def parity(colorizer: inference.Colorizer, content: bytes, l_images: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """(TFLite ab, Keras ab) (N, h, w, 2) on `l_images` with PARITY_HINTS simulated hints."""
    maps = hint_maps(l_images, seed=4, count=PARITY_HINTS)
    keras_fn = tf.function(_keras_fn(colorizer))
    lite = [run(content, l[None], m[None]) for l, m in zip(l_images, maps)]
    ref = [keras_fn(l[None], m[None, ..., :2], m[None, ..., 2:])["ab"].numpy()
           for l, m in zip(l_images, maps)]
    return np.concatenate(lite), np.concatenate(ref)


def tflite_path(automatic_path: str) -> str:
    """colorgan_fp16.tflite -> colorgan_fp16_hints.tflite, in the same folder."""
    stem, ext = os.path.splitext(automatic_path)
    return f"{stem}_hints{ext}"
