"""Image files through Pillow: header checks, reading photos upright, and writing outputs that say
what they are (a provenance record, the input's own EXIF carried over).

Outside the tf.data path and the exported graphs (those decode with TF ops): this is the file
I/O of the CLIs and the Python API. Every image colorgan writes carries the same deterministic
provenance record (`provenance`): no timestamps or paths, so one input and one model give the
same bytes on any machine, whichever writer (colourise, batch, video) made them.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from colorgan import __version__, color
from colorgan.errors import UserError

_MAX_16BIT = 65535.0
JPEG_QUALITY = 95
# EXIF tags (TIFF 6.0 / Exif 2.3): what we set, and the orientation we have already applied.
EXIF_ORIENTATION = 0x0112
EXIF_SOFTWARE = 0x0131
EXIF_IMAGE_DESCRIPTION = 0x010E
# The PNG text chunk that holds the provenance record (JSON).
PNG_KEY = "colorgan"
PROVENANCE_NOTE = "colourised by colorgan from a grayscale original: the colour is predicted"


@contextlib.contextmanager
def pillow_unlimited():
    """Turns off Pillow's own decompression-bomb limit (~179 MP), which would otherwise override a
    larger --max_pixels; callers check sizes themselves (check_header) before decoding."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def unreadable_reason(error: Exception) -> str:
    """The one-line reason for a file that cannot be opened as an image."""
    return f"not a readable image ({type(error).__name__}: {error})"


def check_header(path: str | BinaryIO, max_pixels: int) -> str | None:
    """Cheap checks before any decoding: the file opens as an image and is not a decompression bomb.

    Reads only the header (Pillow's lazy open). `path`: a file name, or a seekable binary file
    (colorgan.pipeline reads through Beam's file systems). Returns None if fine, else a one-line
    reason.
    """
    try:
        with pillow_unlimited(), Image.open(path) as img:
            width, height = img.size
    except (OSError, ValueError, SyntaxError) as e:  # Pillow raises all three for bad files
        return unreadable_reason(e)
    if width * height > max_pixels:
        return (f"refused: {width}x{height} = {width * height / 1e6:.0f} MP exceeds "
                f"--max_pixels={max_pixels / 1e6:.0f} MP (a decompression bomb?)")
    return None


@dataclasses.dataclass
class Photo:
    """A photo read upright: float32 RGB (H, W, 3) in [0, 1], uint8 alpha (H, W) or None, and its
    EXIF (orientation removed, since it has been applied; None if it had none)."""
    rgb: np.ndarray
    alpha: np.ndarray | None = None
    exif: Image.Exif | None = None


def read_photo(path: str | BinaryIO, max_pixels: int) -> Photo:
    """Reads any Pillow-readable image upright (EXIF orientation applied), 16-bit precision kept.

    `path`: a file name or a seekable binary file (as check_header).

    Raises:
      UserError: not an image, truncated, or over `max_pixels` (checked before decoding).
    """
    problem = check_header(path, max_pixels)
    if problem:
        raise UserError(problem)
    try:
        with pillow_unlimited(), Image.open(path) as img:
            img.load()  # decode now: truncated and corrupt files fail here
            exif = img.getexif()
            rgb, alpha = _to_rgb_alpha(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, ValueError) as e:  # Pillow's errors for broken image data
        raise UserError(f"cannot decode ({type(e).__name__}: {e})") from e
    exif.pop(EXIF_ORIENTATION, None)
    return Photo(rgb, alpha, exif if len(exif) else None)


def read_image(path: str, max_pixels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """`read_photo` without the EXIF: (rgb float32 (H, W, 3) in [0, 1], alpha uint8 or None)."""
    photo = read_photo(path, max_pixels)
    return photo.rgb, photo.alpha


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


def provenance(model_id: str, model_kind: str, render_size: int, vividness: float,
               color_upsample: str, flip_average: bool = False, hint_reach: float = 0.0) -> dict:
    """The record every colourised image carries: software, model identity (a short hash of its
    weights, `inference.Colorizer.identity`), how it was rendered (a model that spreads hints:
    its hint_reach too), and that the colour is predicted. Deterministic: no time, no paths."""
    return {"software": f"colorgan {__version__}", "model": model_id, "model_kind": model_kind,
            "render_size": render_size, "vividness": vividness, "color_upsample": color_upsample,
            "flip_average": flip_average, **({"hint_reach": hint_reach} if hint_reach else {}),
            "note": PROVENANCE_NOTE}


def provenance_text(record: dict) -> str:
    """The record as the text every writer stores (PNG `colorgan` chunk, JPEG ImageDescription,
    the browser page through its model's sidecar): JSON with sorted keys."""
    return json.dumps(record, sort_keys=True)


def encode_image(rgb_u8: np.ndarray, alpha: np.ndarray | None, fmt: str,
                 record: dict | None = None, exif: Image.Exif | None = None) -> bytes:
    """uint8 RGB (H, W, 3) (+ optional alpha, PNG only) -> PNG or JPEG bytes.

    `record` (see `provenance`): PNG text chunks `Software` and `colorgan` (JSON); JPEG EXIF
    `Software` and `ImageDescription` (JSON). `exif`: the input's EXIF to carry over (camera,
    date), kept in PNG's eXIf chunk or JPEG's APP1.
    """
    img = Image.fromarray(rgb_u8)
    if alpha is not None and fmt == "png":
        img.putalpha(Image.fromarray(alpha))
    exif = Image.Exif() if exif is None else copy.deepcopy(exif)  # the caller's stays as it was
    options = {}
    if record is not None:
        text = provenance_text(record)
        exif[EXIF_SOFTWARE] = record["software"]
        if fmt == "png":
            info = PngImagePlugin.PngInfo()
            info.add_text("Software", record["software"])
            info.add_text(PNG_KEY, text)
            options["pnginfo"] = info
        else:
            exif[EXIF_IMAGE_DESCRIPTION] = text
    if len(exif):
        options["exif"] = exif.tobytes()
    buf = io.BytesIO()
    if fmt == "png":
        img.save(buf, format="PNG", **options)
    elif fmt in ("jpg", "jpeg"):
        img.save(buf, format="JPEG", quality=JPEG_QUALITY, **options)
    else:
        raise ValueError(f"unknown image format {fmt!r}; valid: png, jpg")
    return buf.getvalue()


def read_provenance(path: str | BinaryIO) -> dict | None:
    """The provenance record of an image colorgan wrote (PNG text chunk or JPEG EXIF), or None.
    `path`: a file name or a seekable binary file."""
    with Image.open(path) as img:
        text = img.info.get(PNG_KEY) if img.format == "PNG" else img.getexif().get(
            EXIF_IMAGE_DESCRIPTION)
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
