"""The SavedModel export: TF Serving's signatures around the generator (colorgan.export writes it).

  serving_default   image_bytes: tf.string [N] -> colorized_png_bytes: tf.string [N], full size
  colorize_l        l: float32 [N, H, W, 1] in [-1, 1] -> ab: float32 [N, H, W, 2] in [-1, 1]
  colorize_l_hints  (hint models only) l, hint_ab [N, H, W, 2], hint_mask [N, H, W, 1] -> ab
"""

from __future__ import annotations

import os
import shutil

import keras
import tensorflow as tf

from colorgan import color, data, export_report, inference, models
from colorgan import workdir as workdir_lib
from colorgan.errors import UserError
from colorgan.fileio import write_atomic


def make_export_archive(colorizer: inference.Colorizer, render_size: int) -> keras.export.ExportArchive:
    """The SavedModel's signatures around the generator (a hint model's third: colorize_l_hints),
    via Keras' ExportArchive.

    ExportArchive collects the variables the endpoints use and saves them explicitly: a Keras 3
    model held as a plain tf.Module attribute exports for tf.saved_model.load, but
    `saved_model_cli run` and TF Serving then cannot find its variables. We do not call
    `archive.track(generator)`: it saves every weight a second time (Keras 3.15), doubling the size.
    """
    archive = keras.export.ExportArchive()
    predict_ab = colorizer.predict_ab

    def colorize_one(encoded):
        rgb = data.decode_image(encoded)[tf.newaxis]
        out = inference.colorize_rgb(predict_ab, rgb, render_size, colorizer.multiple,
                                     colorizer.config.model.color_upsample)[0]
        return tf.io.encode_png(color.to_uint8(out))

    def serve_bytes(image_bytes):
        pngs = tf.map_fn(colorize_one, image_bytes, fn_output_signature=tf.TensorSpec([], tf.string))
        return {"colorized_png_bytes": pngs}

    archive.add_endpoint(inference.BYTES_SIGNATURE, serve_bytes,
                         input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint(inference.L_SIGNATURE, lambda l: {"ab": predict_ab(l)},
                         input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="l")])
    if colorizer.takes_hints:
        _add_hints_endpoint(archive, colorizer)
    return archive


def _add_hints_endpoint(archive: keras.export.ExportArchive,
                        colorizer: inference.Colorizer) -> None:
    """A hint model's extra signature (the automatic ones stay as they are): `colorize_l` with
    `hint_ab` (N, H, W, 2, model-space a*b*) and `hint_mask` (N, H, W, 1, 1 where a hint is)
    at l's size (colorgan/hints.py; zeros: the automatic mode)."""
    generator, cfg = colorizer.generator, colorizer.config.model

    def predict(l, hint_ab, hint_mask):
        hint_map = tf.concat([hint_ab, hint_mask], -1)
        return {"ab": models.predict_ab(generator, l, cfg, hint_map=hint_map)}

    spec = lambda c, name: tf.TensorSpec([None, None, None, c], tf.float32, name=name)  # noqa: E731
    archive.add_endpoint(inference.L_HINTS_SIGNATURE, predict,
                         input_signature=[spec(1, "l"), spec(2, "hint_ab"), spec(1, "hint_mask")])


def write(colorizer: inference.Colorizer, output: str, version: int, render_size: int,
          overwrite: bool = False) -> str:
    """Writes OUTPUT/VERSION (TF Serving layout) atomically; returns that directory."""
    final = os.path.join(output, str(version))
    if os.path.exists(final) and not overwrite:
        raise UserError(f"{final} exists (use --overwrite or another --version)")
    tmp = os.path.join(output, f".{version}.tmp-{os.getpid()}")
    try:
        with workdir_lib.writing(f"writing the SavedModel {final}"):
            shutil.rmtree(tmp, ignore_errors=True)
            make_export_archive(colorizer, render_size).write_out(tmp, verbose=False)
            write_atomic(os.path.join(tmp, inference.SAVED_MODEL_CONFIG),
                         export_report.sidecar_json(colorizer, render_size))
            swap_into_place(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def swap_into_place(tmp: str, final: str) -> None:
    """Renames the folder `tmp` to `final`, replacing an old `final` by renames only: a server
    or a browser never sees a half-written version."""
    old = f"{final}.old-{os.getpid()}"
    try:
        if os.path.exists(final):
            os.replace(final, old)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(old, ignore_errors=True)
