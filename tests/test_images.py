"""colorgan.images: header checks, photos read upright, and outputs that carry a provenance
record and the input's own EXIF (no TensorFlow here: Pillow only)."""

import io
import json

import numpy as np
import pytest
from PIL import Image

import colorgan
from colorgan import config, images
from colorgan.errors import UserError
from conftest import smooth_color_image

MAX_PIXELS = config.DataConfig.max_pixels
# EXIF tags (TIFF 6.0) written into the test inputs: camera make and model, date, orientation.
EXIF_MAKE, EXIF_MODEL, EXIF_DATETIME = 0x010F, 0x0110, 0x0132
CAMERA_EXIF = {EXIF_MAKE: "Kodak", EXIF_MODEL: "Brownie 127", EXIF_DATETIME: "1959:07:14 10:00:00"}
# Orientation 6: the stored pixels must be turned 90 degrees clockwise to be upright.
ROTATE_CW = 6
FORMATS = ("png", "jpg")
# 16-bit levels divided by 65535 in float32: ~7 significant digits, so round-off below 1e-6.
FLOAT32_ATOL = 1e-6


def _record() -> dict:
    return images.provenance("g-0123456789ab", "keras", 48, 1.5, "guided")


def _camera_exif(orientation: int = 0) -> Image.Exif:
    exif = Image.Exif()
    for tag, value in CAMERA_EXIF.items():
        exif[tag] = value
    if orientation:
        exif[images.EXIF_ORIENTATION] = orientation
    return exif


def _write(tmp_path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


# ------------------------------------------------------------------------------ provenance
def test_provenance_record_is_plain_and_deterministic():
    record = _record()
    assert record == _record()  # no time, no paths: the same inputs give the same record
    assert record["software"] == f"colorgan {colorgan.__version__}"
    assert (record["model"], record["model_kind"], record["render_size"], record["vividness"],
            record["color_upsample"]) == ("g-0123456789ab", "keras", 48, 1.5, "guided")
    assert record["note"] == images.PROVENANCE_NOTE
    assert json.loads(json.dumps(record)) == record  # JSON-safe values only


@pytest.mark.parametrize("fmt", FORMATS)
def test_provenance_reads_back_from_the_written_file(fmt, tmp_path):
    record = _record()
    rgb_u8 = smooth_color_image(24, 36, seed=1)
    content = images.encode_image(rgb_u8, None, fmt, record)
    path = _write(tmp_path, f"out.{fmt}", content)
    assert images.read_provenance(path) == record
    with Image.open(path) as img:
        assert img.format == {"png": "PNG", "jpg": "JPEG"}[fmt]
        assert img.size == (36, 24)
        if fmt == "png":  # text chunks: 'Software' for any viewer, the JSON record for us
            assert img.info["Software"] == record["software"]
            assert json.loads(img.info[images.PNG_KEY]) == record
        else:  # EXIF: Software and ImageDescription (JSON)
            exif = img.getexif()
            assert exif[images.EXIF_SOFTWARE] == record["software"]
            assert json.loads(exif[images.EXIF_IMAGE_DESCRIPTION]) == record


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_gives_the_same_bytes_twice(fmt):
    rgb_u8 = smooth_color_image(24, 36, seed=2)
    first = images.encode_image(rgb_u8, None, fmt, _record(), _camera_exif())
    assert images.encode_image(rgb_u8, None, fmt, _record(), _camera_exif()) == first


def test_read_provenance_of_other_images_is_none(tmp_path):
    rgb_u8 = smooth_color_image(16, 16, seed=3)
    plain_png = tmp_path / "plain.png"
    Image.fromarray(rgb_u8).save(plain_png)
    camera = tmp_path / "camera.jpg"  # a camera's own ImageDescription is text, not our JSON
    exif = _camera_exif()
    exif[images.EXIF_IMAGE_DESCRIPTION] = "OLYMPUS DIGITAL CAMERA"
    Image.fromarray(rgb_u8).save(camera, exif=exif)
    assert images.read_provenance(str(plain_png)) is None
    assert images.read_provenance(str(camera)) is None
    no_record = _write(tmp_path, "no_record.png", images.encode_image(rgb_u8, None, "png"))
    assert images.read_provenance(no_record) is None


def test_unknown_format_is_a_value_error():
    with pytest.raises(ValueError, match="unknown image format"):
        images.encode_image(smooth_color_image(8, 8, seed=4), None, "webp")


# ------------------------------------------------------------------------------------ EXIF
@pytest.fixture
def rotated_jpeg(tmp_path) -> tuple[str, np.ndarray]:
    """A JPEG stored sideways (orientation 6) with camera EXIF; returns (path, its stored pixels
    as Pillow decodes them, not yet turned upright)."""
    path = tmp_path / "sideways.jpg"
    Image.fromarray(smooth_color_image(30, 44, seed=5)).save(path, exif=_camera_exif(ROTATE_CW),
                                                             quality=95)
    with Image.open(path) as img:
        stored = np.asarray(img.convert("RGB"))
    return str(path), stored


def test_read_photo_turns_the_photo_upright_and_drops_the_orientation(rotated_jpeg):
    path, stored = rotated_jpeg
    photo = images.read_photo(path, MAX_PIXELS)
    upright = np.rot90(stored, k=-1)  # numpy's k=-1: a quarter turn clockwise
    assert photo.rgb.shape == (44, 30, 3) and photo.rgb.dtype == np.float32
    np.testing.assert_array_equal(photo.rgb, upright.astype(np.float32) / 255.0)
    assert not np.array_equal(upright, np.rot90(stored, k=1))  # the direction is tested too
    assert photo.alpha is None
    assert images.EXIF_ORIENTATION not in photo.exif  # applied, so it must not be applied again
    assert {tag: photo.exif.get(tag) for tag in CAMERA_EXIF} == CAMERA_EXIF


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_carries_the_input_exif(fmt, rotated_jpeg, tmp_path):
    photo = images.read_photo(rotated_jpeg[0], MAX_PIXELS)
    rgb_u8 = np.round(photo.rgb * 255).astype(np.uint8)
    path = _write(tmp_path, f"out.{fmt}", images.encode_image(rgb_u8, None, fmt, _record(),
                                                             photo.exif))
    with Image.open(path) as img:
        assert img.size == (30, 44)  # written upright
        exif = img.getexif()
    assert {tag: exif.get(tag) for tag in CAMERA_EXIF} == CAMERA_EXIF
    assert images.EXIF_ORIENTATION not in exif  # a viewer must not turn it a second time
    assert images.read_provenance(path) == _record()  # the record and the EXIF side by side
    # Read back through read_photo: already upright, nothing turns it again.
    assert images.read_photo(path, MAX_PIXELS).rgb.shape == (44, 30, 3)


def test_encode_leaves_the_callers_exif_alone():
    exif = _camera_exif()
    before = dict(exif)
    images.encode_image(smooth_color_image(8, 8, seed=6), None, "jpg", _record(), exif)
    assert dict(exif) == before


def test_photo_without_exif_has_none(tmp_path):
    path = tmp_path / "plain.png"
    Image.fromarray(smooth_color_image(8, 12, seed=7)).save(path)
    assert images.read_photo(str(path), MAX_PIXELS).exif is None


# ------------------------------------------------------------------ headers, alpha, depth
def test_check_header_gives_a_one_line_reason_for_a_non_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image\nat all\n")
    reason = images.check_header(str(path), MAX_PIXELS)
    assert reason.startswith("not a readable image") and "\n" not in reason
    with pytest.raises(UserError, match="not a readable image"):
        images.read_photo(str(path), MAX_PIXELS)


def test_check_header_refuses_more_than_max_pixels(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(smooth_color_image(10, 12, seed=8)).save(path)  # 120 px
    assert images.check_header(str(path), 120) is None  # the limit itself is allowed
    reason = images.check_header(str(path), 119)
    assert reason.startswith("refused") and "12x10" in reason


def test_read_photo_returns_the_alpha_of_an_rgba_png(tmp_path):
    rgb_u8 = smooth_color_image(20, 28, seed=9)
    alpha = np.tile(np.linspace(0, 255, 28).round().astype(np.uint8), (20, 1))
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb_u8, alpha]), "RGBA").save(path)
    photo = images.read_photo(str(path), MAX_PIXELS)
    np.testing.assert_array_equal(photo.alpha, alpha)
    np.testing.assert_array_equal(photo.rgb, rgb_u8.astype(np.float32) / 255.0)  # PNG: lossless
    assert images.read_image(str(path), MAX_PIXELS)[1] is not None
    # Written back as PNG the alpha is kept exactly; JPEG has no alpha channel.
    png = Image.open(io.BytesIO(images.encode_image(rgb_u8, photo.alpha, "png")))
    assert png.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(png)[..., 3], alpha)
    assert Image.open(io.BytesIO(images.encode_image(rgb_u8, photo.alpha, "jpg"))).mode == "RGB"


def test_read_image_16bit_keeps_precision(tmp_path):
    gray16 = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    Image.fromarray(gray16).save(tmp_path / "g.png")
    rgb, alpha = images.read_image(str(tmp_path / "g.png"), MAX_PIXELS)
    assert alpha is None and rgb.shape == (32, 32, 3)
    assert len(np.unique(rgb[..., 0])) == 1024  # more levels than 8 bits could hold
    np.testing.assert_allclose(rgb[..., 0], gray16 / 65535.0, atol=FLOAT32_ATOL)
