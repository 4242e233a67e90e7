"""Video colourisation speed: frames per second of the video CLI's path, --temporal none and flow,
against the model-only floor, at 640x360 and 1280x720, in one run.

    python benchmarks/video_speed.py --model=default

The input per size: a --frames-long gray H.264 clip panning over a BSDS500 test photo (scaled
up to cover the frame). Cases per size:
  floor   Colorizer.colorize_batch on the decoded frames in memory, --batch_frames at a time:
          the model and the full-resolution finish, no decoding, flow or encoding
  none    frames.colorize_video file to file (decode -> colourise -> H.264 encode), what
          `python -m colorgan.video --temporal=none` runs per file
  flow    the same with --temporal=flow (two DIS flows per frame at render size, blending)
Figures: frames/s (median block, common.measure), and x floor.
"""

from __future__ import annotations

import fractions
import os
import sys
import tempfile

from absl import app, flags
import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  benchmarks/common.py

from colorgan import cli, clips, config, frames, images, inference, sources, video_io  # noqa: E402

NAME = "video_speed"
FLAGS = flags.FLAGS
SIZES = ((360, 640), (720, 1280))
flags.DEFINE_integer("frames", 48, "Frames per clip.", lower_bound=8)
flags.adopt_module_key_flags(common)
common.reuse_flag("model")
common.reuse_flag("batch_frames")
common.reuse_flag("output", f"JSON results file (default: benchmarks/results/{NAME}.json).")
PHOTOS = "../shared/datasets/bsds500-jpg.tar.gz"


def make_input(path: str, size: tuple[int, int]) -> np.ndarray:
    """Writes the gray pan clip of `size` to `path`; returns its decoded frames."""
    _, files = sources.list_split(config.DataConfig(data=PHOTOS), "test")
    photo = np.asarray(images.read_photo(files[0], config.DataConfig.max_pixels).rgb * 255 + 0.5,
                       np.uint8)
    scale = 1.5 * max(size[0] / photo.shape[0], size[1] / photo.shape[1])
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    clip = clips.make_clip(photo, "pan", FLAGS.frames, size)
    gray = np.repeat(cv2.cvtColor(np.ascontiguousarray(clip.frames.reshape(-1, size[1], 3)),
                                  cv2.COLOR_RGB2GRAY).reshape(-1, *size, 1), 3, -1)
    info = video_io.VideoInfo(size[1], size[0], fps=fractions.Fraction(24),
                              time_base=fractions.Fraction(1, 24), frames=len(gray), rotation=0,
                              audio_codec=None)
    writer = video_io.Mp4Writer(path, info, None, {"software": "benchmarks/video_speed.py"})
    for t, rgb in enumerate(gray):
        writer.write_frame(rgb, t)
    writer.close()
    return gray


def make_cases(model: inference.Colorizer, scratch: str) -> dict:
    cases = {}
    for size in SIZES:
        label = f"{size[1]}x{size[0]}"
        src = os.path.join(scratch, f"{label}.mp4")
        decoded = make_input(src, size).astype(np.float32) / 255

        def floor(decoded=decoded):
            for start in range(0, len(decoded), FLAGS.batch_frames):
                common.block_until_done(model.colorize_batch(
                    list(decoded[start:start + FLAGS.batch_frames])))
        cases[f"{label}/floor"] = floor
        for mode in config.TEMPORAL_MODES:
            def run(src=src, mode=mode, label=label):
                frames.colorize_video(model, src, os.path.join(scratch, f"{label}_{mode}_out.mp4"),
                                      mode=mode, batch_frames=FLAGS.batch_frames,
                                      max_pixels=config.DataConfig.max_pixels)
            cases[f"{label}/{mode}"] = run
    return cases


COLUMNS = (common.Column("size", "size"), common.Column("case", "case"),
           common.Column("fps", "frames/s", "{:.2f}"), common.Column("ms", "ms/frame", "{:.1f}"),
           common.Column("x_floor", "x floor", "{:.2f}"), common.Column("spread", "spread", "{:.2f}"))


@cli.handle_errors
def main(argv: list[str]) -> int:
    common.check_usage(argv)
    machine = common.machine_info()
    common.warn_if_busy(machine)
    model = inference.load_model(FLAGS.model)
    with tempfile.TemporaryDirectory(prefix="colorgan-bench-video-") as scratch:
        cases = make_cases(model, scratch)
        timings = common.measure(cases, calls=1, repeats=FLAGS.repeats, warmup=FLAGS.warmup,
                                 units={name: FLAGS.frames for name in cases})
    rows = []
    for name, timing in timings.items():
        size, case = name.split("/")
        floor = timings[f"{size}/floor"].units_per_s
        rows.append({"size": size, "case": case, "fps": timing.units_per_s,
                     "ms": 1000 / timing.units_per_s, "x_floor": floor / timing.units_per_s,
                     "spread": timing.spread})
    notes = [f"{FLAGS.frames}-frame gray pan clips; model {FLAGS.model} (render size: its "
             f"default); --batch_frames={FLAGS.batch_frames}; x floor = floor fps / case fps"]
    common.print_report("Video colourisation speed", rows, COLUMNS, notes)
    common.write_results(NAME, machine=machine, rows=rows, notes=notes, method=__doc__,
                         settings=common.flag_settings(["model", "frames", "batch_frames",
                                                        "repeats", "warmup"]),
                         extra={"timings": {n: t.to_dict() for n, t in timings.items()}})
    return 0


if __name__ == "__main__":
    app.run(main)
