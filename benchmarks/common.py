"""What every benchmark script shares: the timing protocol, machine facts, tables, JSON results.

Timing protocol (`measure`): each case is called `warmup` times untimed (the first call traces or
compiles), then `repeats` timed blocks of `calls` calls each; cases are interleaved block by block
(round robin), so a slow drift of the machine touches every case alike. A figure is the median
block; `spread` = (slowest - fastest) / median says how noisy it was.

Benchmarks reuse colorgan's flags where the meaning is the same (`--batch_size`, `--data`,
`--model`, `--output`, ...): absl flags are process-global and colorgan defines each once.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Sequence

from absl import app, flags, logging
import keras
import numpy as np
import tensorflow as tf

from colorgan import color, config
from colorgan.fileio import write_atomic

FLAGS = flags.FLAGS
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A 1-minute load average above this at start means something else is using the CPU.
QUIET_LOAD = 0.5
# CPU features that decide the fp32/bf16/int8 matmul peak on x86.
_CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                 "amx_bf16", "amx_int8", "amx_tile")

flags.DEFINE_integer("repeats", 5, "Benchmarks: timed blocks per case; figures are the median "
                     "block.", lower_bound=1)
flags.DEFINE_integer("warmup", 2, "Benchmarks: untimed calls per case before timing (the first "
                     "traces or compiles).", lower_bound=0)


def reuse_flag(name: str, help_text: str | None = None, default: Any = None) -> None:
    """Shows colorgan's flag `name` in this script's --help, with a benchmark meaning and default.

    Call at import time of the script (its --help is built from the main module's key flags).
    """
    if FLAGS.find_module_defining_flag(name) != config.flag_definitions.__name__:
        raise ValueError(f"--{name} is not one of colorgan's flags")
    flag = FLAGS[name]
    if help_text is not None:
        flag.help = help_text
    if default is not None:
        FLAGS.set_default(name, default)
    FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def check_usage(argv: Sequence[str]) -> None:
    """Benchmarks take no positional arguments and do not expand colorgan's --recipe."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.recipe:
        raise app.UsageError("--recipe is not expanded by the benchmarks (its --steps would be "
                             "read as the timed steps); pass model flags, or --flagfile")


# ------------------------------------------------------------------------------ timing
@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds of each timed block of `calls` calls, each call doing `units` of work (images)."""
    seconds: tuple[float, ...]
    calls: int
    units: int = 1

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def per_call_s(self) -> float:
        return self.median_s / self.calls

    @property
    def units_per_s(self) -> float:
        return self.calls * self.units / self.median_s

    @property
    def spread(self) -> float:
        return (max(self.seconds) - min(self.seconds)) / self.median_s

    def to_dict(self) -> dict:
        return {"block_seconds": list(self.seconds), "calls_per_block": self.calls,
                "units_per_call": self.units, "median_block_s": self.median_s,
                "per_call_s": self.per_call_s, "units_per_s": self.units_per_s,
                "spread": self.spread}


def block_until_done(result: Any) -> None:
    """Forces a call's result to exist (TF may return before the work is done)."""
    for leaf in tf.nest.flatten(result):
        if isinstance(leaf, (tf.Tensor, tf.Variable)):
            leaf.numpy()


def measure(cases: dict[str, Callable[[], Any]], *, calls: int, repeats: int, warmup: int,
            units: int | dict[str, int] = 1) -> dict[str, Timing]:
    """Times every case with the protocol in the module docstring. `units`: work per call."""
    for fn in cases.values():
        for _ in range(warmup):
            block_until_done(fn())
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            for _ in range(calls):
                result = fn()
            block_until_done(result)
            seconds[name].append(time.perf_counter() - start)
    per = units if isinstance(units, dict) else dict.fromkeys(cases, units)
    return {name: Timing(tuple(s), calls, per[name]) for name, s in seconds.items()}


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing (a failed or skipped case)."""
    if value is None or not baseline:
        return None
    return value / baseline


# ------------------------------------------------------------------------- the machine
def _cpu_model() -> tuple[str, set[str]]:
    model, features = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    features = set(value.split())
                    break
    except OSError:
        pass
    return model, features


def machine_info() -> dict:
    """CPU model, cores, relevant CPU features, library versions and the current load."""
    model, features = _cpu_model()
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_features": sorted(features & set(_CPU_FEATURES)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or "default",
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads() or "default",
        "load_average_1min_at_start": os.getloadavg()[0],
    }


def warn_if_busy(info: dict) -> None:
    if info["load_average_1min_at_start"] > QUIET_LOAD:
        logging.warning("load average %.2f at start: another process is using the CPU, so these "
                        "figures are noisy (smoke run only)", info["load_average_1min_at_start"])


# ------------------------------------------------------------------- tables and results
@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    header: str
    fmt: str = "{}"


def format_table(rows: list[dict], columns: Sequence[Column]) -> str:
    """A plain-text table of `rows` (dicts), one column per `columns` entry."""
    # Text columns align left and leave missing values blank; numbers align right, 'n/a'.
    text = [all(isinstance(row.get(c.key), str) for row in rows if row.get(c.key) is not None)
            for c in columns]
    cells = [[c.header for c in columns]]
    for row in rows:
        cells.append([("" if is_text else "n/a") if row.get(c.key) is None
                      else c.fmt.format(row[c.key]) for c, is_text in zip(columns, text)])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) if t else cell.rjust(w) for cell, w, t in zip(r, widths, text))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_report(title: str, rows: list[dict], columns: Sequence[Column], notes: Sequence[str]) -> None:
    """The table and its notes, on stdout (the results; logs go to stderr)."""
    print(f"\n{title}\n")
    print(format_table(rows, columns))
    for note in notes:
        print(f"- {note}")


def output_path(name: str) -> str:
    """--output, or benchmarks/results/<name>.json."""
    return FLAGS.output or os.path.join(RESULTS_DIR, f"{name}.json")


def write_results(name: str, *, machine: dict, settings: dict, method: str, rows: list[dict],
                  notes: Sequence[str], extra: dict | None = None) -> str:
    """Writes the run as JSON (atomically) to `output_path(name)`; returns the path."""
    payload = {
        "benchmark": name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "machine": {**machine, "load_average_1min_at_end": os.getloadavg()[0]},
        "settings": settings,
        "method": method,
        "results": rows,
        "notes": list(notes),
        **(extra or {}),
    }
    path = write_atomic(output_path(name), json.dumps(payload, indent=2, default=_jsonable) + "\n")
    print(f"\nwrote {path}")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def flag_settings(names: Sequence[str]) -> dict:
    return {name: FLAGS[name].value for name in names}


# --------------------------------------------------------------------- synthetic photos
def smooth_rgb_u8(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 RGB image (height, width, 3): smooth coloured gradients and waves.

    Built one channel at a time in float32, so a 24-megapixel image needs ~100 MB of scratch.
    """
    rng = np.random.default_rng(seed)
    yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xx = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    out = np.empty((height, width, 3), np.uint8)
    for c in range(3):
        fy, fx, phase = rng.uniform(0.5, 3.0, 3).astype(np.float32)
        wave = np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
        ramp = yy * rng.uniform(-0.3, 0.3) + xx * rng.uniform(-0.3, 0.3)
        out[..., c] = np.clip((0.5 + 0.35 * wave + ramp) * color.UINT8_MAX, 0, color.UINT8_MAX)
    return out
