"""Colourise photos at their full resolution.

    python -m colorgan.colorize --model=/tmp/colorgan-quickstart --output=/tmp/colorized photo.jpg old_photos/

Each INPUT is a file, a folder (searched recursively) or a glob. Every output is `<stem>.png`
(lossless; `--format=jpg` on request) at the input's size, written atomically: the input's own
luminance with the model's colour. Colour photos are converted to gray first; 8/16-bit gray,
palette and alpha images are accepted (alpha is kept) and EXIF orientation is honoured.
A file that cannot be read is reported in one line and skipped; the exit status is then 2.
"""

from __future__ import annotations

import glob
import io
import os

from absl import app, flags, logging
import numpy as np
from PIL import Image, ImageOps
import tqdm

from colorgan import cli, color, config, data, inference
from colorgan.errors import UserError
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(config)

_MAX_16BIT = 65535.0
_JPEG_QUALITY = 95


def read_image(path: str, max_pixels: int = config.DataConfig.max_pixels
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Reads any PIL-readable image upright (EXIF orientation applied).

    Returns:
      (rgb, alpha): rgb float32 (H, W, 3) in [0, 1] (gray inputs repeated to 3 channels, 16-bit
      precision kept); alpha uint8 (H, W) or None.
    Raises:
      UserError: not an image, truncated, or over `max_pixels` (checked before decoding).
    """
    problem = data.check_header(path, max_pixels)
    if problem:
        raise UserError(problem)
    try:
        with data.pillow_unlimited(), Image.open(path) as img:
            img.load()  # decode now: truncated and corrupt files fail here
            return _to_rgb_alpha(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's errors for broken image data
        raise UserError(f"cannot decode ({type(e).__name__}: {e})") from e


def _to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow mode -> (float32 RGB in [0, 1], uint8 alpha or None); 16-bit precision kept."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    alpha = None
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(img.getchannel("A"))
        img = img.convert("L" if img.mode.startswith("L") else "RGB")
    if img.mode.startswith("I"):  # 16/32-bit integer grayscale
        gray = np.asarray(img, dtype=np.float32) / _MAX_16BIT
        rgb = np.repeat(np.clip(gray, 0, 1)[..., None], 3, -1)
    elif img.mode == "F":
        rgb = np.repeat(np.clip(np.asarray(img, np.float32), 0, 1)[..., None], 3, -1)
    elif img.mode in ("L", "1"):
        rgb = np.repeat(np.asarray(img.convert("L"), np.float32)[..., None] / color.UINT8_MAX, 3, -1)
    else:
        rgb = np.asarray(img.convert("RGB"), np.float32) / color.UINT8_MAX
    return rgb, alpha


def encode_image(rgb_u8: np.ndarray, alpha: np.ndarray | None, fmt: str) -> bytes:
    """uint8 RGB (+ optional alpha) -> PNG or JPEG bytes."""
    img = Image.fromarray(rgb_u8)
    if alpha is not None and fmt == "png":
        img.putalpha(Image.fromarray(alpha))
    buf = io.BytesIO()
    img.save(buf, format="PNG" if fmt == "png" else "JPEG", quality=_JPEG_QUALITY)
    return buf.getvalue()


def expand_inputs(inputs: list[str], output_dir: str, fmt: str) -> list[tuple[str, str]]:
    """(input file, output file) pairs for files, folders (recursive, structure kept) and globs."""
    pairs = []
    for item in inputs:
        if os.path.isdir(item):
            pairs += [(f, os.path.join(output_dir, os.path.relpath(f, item))) for f in data.list_images(item)]
        elif os.path.exists(item):
            pairs.append((item, os.path.join(output_dir, os.path.basename(item))))
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                pairs.append((item, os.path.join(output_dir, os.path.basename(item))))
            pairs += [(f, os.path.join(output_dir, os.path.basename(f))) for f in matches
                      if os.path.isfile(f)]
    return [(src, os.path.splitext(dst)[0] + "." + fmt) for src, dst in pairs]


def _duplicates(pairs: list[tuple[str, str]]) -> set[str]:
    """Inputs whose output path an earlier input already takes (a/x.jpg and b/x.jpg, x.jpg and
    x.png): they are skipped, never silently overwritten."""
    seen, dup = set(), set()
    for src, dst in pairs:
        if dst in seen:
            dup.add(src)
        seen.add(dst)
    return dup


def colorize_file(model: inference.Colorizer, src: str, dst: str, *, render_size: int = 0,
                  fmt: str = "png", compare: bool = False,
                  max_pixels: int = config.DataConfig.max_pixels) -> None:
    """Colourises one file into `dst` (atomically); with `compare`, also `<stem>_compare.png`."""
    rgb, alpha = read_image(src, max_pixels)
    out = model.colorize(rgb[None], render_size)[0].numpy()
    out_u8 = color.to_uint8(out).numpy()
    write_atomic(dst, encode_image(out_u8, alpha, fmt))
    if compare:
        gray_u8 = color.to_uint8(color.gray_rgb(rgb)).numpy()
        side = np.concatenate([gray_u8, out_u8], axis=1)
        write_atomic(os.path.splitext(dst)[0] + "_compare.png", encode_image(side, None, "png"))


def colorize_paths(model: inference.Colorizer, inputs: list[str], output_dir: str, *,
                   render_size: int = 0, fmt: str = "png", compare: bool = False,
                   overwrite: bool = False,
                   max_pixels: int = config.DataConfig.max_pixels) -> tuple[list[str], list[str]]:
    """Colourises every input; returns (written outputs, failed inputs). Never raises per file."""
    pairs = expand_inputs(inputs, output_dir, fmt)
    if not pairs:
        raise UserError(f"no images found in {' '.join(inputs)}")
    written, failed = [], []
    duplicates = _duplicates(pairs)
    for src, dst in tqdm.tqdm(pairs, unit="img", disable=None if len(pairs) > 1 else True):
        if src in duplicates:
            logging.error("%s: its output %s is taken by another input; skipped", src, dst)
            failed.append(src)
            continue
        compare_dst = os.path.splitext(dst)[0] + "_compare.png"
        if not overwrite and (os.path.exists(dst) or (compare and os.path.exists(compare_dst))):
            logging.error("%s: %s exists (use --overwrite); skipped", src, dst)
            failed.append(src)
            continue
        try:
            colorize_file(model, src, dst, render_size=render_size, fmt=fmt, compare=compare,
                          max_pixels=max_pixels)
            written.append(dst)
        except UserError as e:
            logging.error("%s: %s; skipped", src, e)
            failed.append(src)
        except Exception as e:  # pylint: disable=broad-except  (one bad file must not stop a batch)
            logging.error("%s: cannot colourise (%s: %s); skipped", src, type(e).__name__,
                          str(e).splitlines()[0] if str(e) else "")
            failed.append(src)
    return written, failed


@cli.handle_errors
def main(argv: list[str]) -> int:
    cli.check_usage(argv, required=("output",), positional=True)
    inputs = argv[1:]
    if not inputs:
        raise app.UsageError("give at least one INPUT (file, folder or glob)")
    model = inference.load_model(FLAGS.model, FLAGS.checkpoint_step)
    written, failed = colorize_paths(model, inputs, FLAGS.output, render_size=FLAGS.render_size,
                                     fmt=FLAGS.format, compare=FLAGS.compare,
                                     overwrite=FLAGS.overwrite, max_pixels=FLAGS.max_pixels)
    for path in written:
        print(path)
    if failed:
        logging.error("%d of %d inputs failed", len(failed), len(failed) + len(written))
        return cli.EXIT_USER_ERROR
    return cli.EXIT_OK


def run() -> None:
    cli.run(main)


if __name__ == "__main__":
    run()
