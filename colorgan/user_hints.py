"""A user's colour hints: the hints file, validated, and turned into the model's hint map.

    {"points": [{"x": 120, "y": 80, "color": "#4a7bd0"},
                {"x": 300, "y": 40, "ab": [-5.0, -32.0], "radius": 4}]}

x, y are in the photo's own upright pixels; a colour is sRGB hex (only its a*b* count: the
lightness stays the photo's own) or Lab a*b*; `radius` (photo pixels, default 0) widens the
hint, which always covers at least the model-resolution cell it falls in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re

import numpy as np
import tensorflow as tf

from colorgan import color, hints
from colorgan.errors import UserError

_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")
_KEYS = {"x", "y", "color", "ab", "radius"}


@dataclasses.dataclass(frozen=True)
class Hint:
    """One hint: photo pixel (x, y), a*b* in Lab units, radius in photo pixels."""
    x: float
    y: float
    ab: tuple[float, float]
    radius: float = 0.0


def hex_to_ab(text: str) -> tuple[float, float]:
    """'#rrggbb' sRGB -> its a*b* (Lab units)."""
    match = _HEX.match(text)
    if not match:
        raise ValueError(f"colour {text!r} is not #rrggbb")
    rgb = np.frombuffer(bytes.fromhex(match.group(1)), np.uint8).astype(np.float32) / color.UINT8_MAX
    lab = color.rgb_to_lab(tf.constant(rgb[None, None, None])).numpy()[0, 0, 0]
    return float(lab[1]), float(lab[2])


def parse(data: object, width: int, height: int) -> list[Hint]:
    """A hints document (parsed JSON) -> hints, checked against a width x height photo.

    Raises:
      ValueError: a one-line description of the first problem.
    """
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise ValueError('expected {"points": [...]}')
    return [_point(i, p, width, height) for i, p in enumerate(data["points"])]


def _point(i: int, p: object, width: int, height: int) -> Hint:
    where = f"point {i + 1}"
    if not isinstance(p, dict) or set(p) - _KEYS:
        raise ValueError(f"{where}: expected keys x, y, color or ab, radius")
    if "x" not in p or "y" not in p:
        raise ValueError(f"{where}: needs x and y")
    try:
        x, y, radius = float(p["x"]), float(p["y"]), float(p.get("radius", 0))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: x, y and radius must be numbers ({e})") from e
    if not (0 <= x < width and 0 <= y < height) or not math.isfinite(radius) or radius < 0:
        raise ValueError(f"{where}: ({x:g}, {y:g}) radius {radius:g} is outside the "
                         f"{width}x{height} photo or negative")
    if ("color" in p) == ("ab" in p):
        raise ValueError(f"{where}: give exactly one of color (#rrggbb) or ab ([a, b])")
    if "color" in p:
        ab = hex_to_ab(str(p["color"]))
    else:
        ab = p["ab"]
        if not (isinstance(ab, list) and len(ab) == 2 and all(
                isinstance(v, (int, float)) and abs(v) <= color.AB_SCALE for v in ab)):
            raise ValueError(f"{where}: ab must be [a, b] within +-{color.AB_SCALE:g}")
        ab = (float(ab[0]), float(ab[1]))
    return Hint(x, y, ab, radius)


def fingerprint(points: list[Hint]) -> dict:
    """What an output's provenance record says about its hints: how many, and a hash of them
    (an edited hints file gives another record)."""
    text = json.dumps([dataclasses.astuple(p) for p in points])
    return {"points": len(points), "sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}


def read(path: str, width: int, height: int) -> list[Hint]:
    """A hints file -> hints. Raises UserError naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            return parse(json.load(f), width, height)
    except (OSError, json.JSONDecodeError, ValueError) as e:
        raise UserError(f"hints {path}: {e}") from e


def hint_map(points: list[Hint], full_hw: tuple[int, int], render_hw: tuple[int, int]) -> tf.Tensor:
    """The model's hint map (1, h, w, 3) at its render size for hints on a full_hw photo."""
    if not points:
        return tf.zeros([1, *render_hw, hints.HINT_CHANNELS])
    scale = np.array(render_hw, np.float64) / np.array(full_hw, np.float64)
    # Photo pixel (x, y) covers [x, x + 1): the render cell holding its centre (clipped: a
    # click on the last half-pixel stays in the last cell).
    where = np.array([[p.y + 0.5, p.x + 0.5] for p in points]) * scale
    centre = np.clip(np.floor(where), 0, np.array(render_hw) - 1).astype(np.float32)
    half = np.array([np.floor(p.radius * scale.min() + 0.5) for p in points])
    side = (2 * half + 1).astype(np.float32)
    colours = np.array([p.ab for p in points], np.float32) / color.AB_SCALE
    return hints.paint_colours(tf.constant(render_hw), tf.constant(centre), tf.constant(side),
                               tf.constant(colours))
