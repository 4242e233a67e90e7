"""Keeps TensorFlow's start-up noise off a newcomer's first screen.

TF 2.21 writes lines such as "oneDNN custom operations are on", "Could not find cuda drivers"
and an error-level "failed call to cuInit" on any machine without a GPU, some of them before its
logging is initialised (so TF_CPP_MIN_LOG_LEVEL cannot stop them). The CLIs run TensorFlow's
import and device start-up with the process's stderr (file descriptor 2) piped through a filter
that drops only known noise lines and passes everything else (our own lines, real errors, an
import failure's traceback) through unchanged. `--verbose` turns the filter off. Pure standard
library: it runs before TensorFlow is imported. (Not TF_ENABLE_ONEDNN_OPTS=0: that would switch
off oneDNN, which the bfloat16 speed depends on.)
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

NOISE = re.compile("|".join((
    r"All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations are on",
    r"Could not find cuda drivers",
    r"failed call to cuInit",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"To enable the following instructions: .* rebuild TensorFlow",
    r"Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation placer already registered",
    r"TF-TRT Warning: Could not find TensorRT",
    r"Created TensorFlow Lite XNNPACK delegate",
    r"^fully_quantize: \d+, inference_type: \d+",
)))
_VERBOSE_ARGS = ("--verbose", "--verbose=true", "--verbose=True", "--verbose=1")
# Set (to "1") by a quiet colorgan command for its worker processes (colorgan.batch on Beam's
# multi-process DirectRunner), which import colorgan from another program.
WORKER_ENV = "COLORGAN_QUIET_WORKER"
_state = {"enabled": False}


def wanted(argv: list[str] | None = None) -> bool:
    """True for a colorgan command (`python -m colorgan.<verb>` or a `colorgan-<verb>` script)
    run without --verbose, or a worker process such a command started (WORKER_ENV); never for a
    library user (a notebook, a test runner)."""
    if os.environ.get(WORKER_ENV) == "1":
        return True
    argv = sys.argv if argv is None else argv
    if not argv:
        return False
    command = argv[0] == "-m" or os.path.basename(argv[0]).startswith("colorgan-")
    return command and not any(a in _VERBOSE_ARGS for a in argv[1:])


def enable() -> None:
    """Marks this process as quiet: `filtered_stderr` filters from now on."""
    _state["enabled"] = True


def enabled() -> bool:
    return _state["enabled"]


@contextlib.contextmanager
def filtered_stderr(pattern: re.Pattern = NOISE, *, force: bool = False):
    """While active, lines written to fd 2 (by Python or C++) that match `pattern` are dropped;
    the others reach the real stderr. A no-op unless enabled() or `force`. Yields the list that
    collects the dropped lines."""
    dropped: list[str] = []
    if not (force or enabled()):
        yield dropped
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                text = line.decode("utf-8", "replace")
                if pattern.search(text):
                    dropped.append(text)
                else:
                    os.write(saved, line)

    thread = threading.Thread(target=pump, name="colorgan-stderr-filter", daemon=True)
    thread.start()
    try:
        yield dropped
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the pump reads to EOF and stops
        thread.join(timeout=10)
        os.close(saved)


def start_tensorflow() -> None:
    """Imports TensorFlow and starts its devices with the noise filtered (when enabled)."""
    with filtered_stderr():
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        tf.config.list_physical_devices()  # device start-up: the CUDA probe prints here
