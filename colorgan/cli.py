"""Command-line plumbing shared by the verbs: recipe expansion, exit codes, one-line errors.

Exit codes for every verb: 0 success; 1 bad flags or usage (absl); 2 a user-fixable failure
(`UserError`: no images, no checkpoint, a workdir written by another config, a skipped input);
3 an unexpected internal error, printed as one line (the traceback only with --verbose).
"""

from __future__ import annotations

import functools
import logging as std_logging
import os
import sys
from typing import Callable, Sequence

from absl import app, flags, logging
from absl.testing import flagsaver

from colorgan import config
from colorgan.errors import UserError

EXIT_OK, EXIT_USAGE, EXIT_USER_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT: stopped by a signal after saving


def _flagfile_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except OSError as e:
        raise app.UsageError(f"cannot read flagfile {path}: {e.strerror}") from e
    return [line for line in lines if line and not line.startswith(("#", "//"))]


def expand_argv(argv: Sequence[str], _depth: int = 0) -> list[str]:
    """Inlines `--flagfile=PATH` and `--recipe=NAME` arguments, recursively, in place.

    absl resolves a nested `--flagfile` against the working directory, so recipes include their
    base with `--recipe=NAME` instead, which this expands from the installed package: recipes work
    from any directory (Colab, an installed wheel). Order is kept, so later flags still win.
    """
    if _depth > 10:
        raise app.UsageError("flagfiles/recipes nested more than 10 deep (a cycle?)")
    out: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in ("--flagfile", "--recipe") and not eq:  # the two-word form: --recipe NAME
            if not args:
                raise app.UsageError(f"{name} needs a value")
            value = args.pop(0)
        if name == "--flagfile":
            out += expand_argv(_flagfile_lines(value), _depth + 1)
        elif name == "--recipe":
            try:
                path = config.recipe_path(value)
            except ValueError as e:
                raise app.UsageError(str(e)) from e
            out += expand_argv(_flagfile_lines(path), _depth + 1)
        else:
            out.append(arg)
    return out


def config_from_recipe(recipe: str, **overrides) -> config.Config:
    """The Config a recipe plus flag overrides give, without touching the process's flags
    (for notebooks and scripts): flags the process already parsed do not leak in. Raises
    ValueError for an unknown recipe, flag or bad value."""
    return config_from_args([f"--recipe={recipe}"] + [f"--{k}={v}" for k, v in overrides.items()])


def config_from_args(args: Sequence[str]) -> config.Config:
    """The Config that command-line `args` (flags, --flagfile=, --recipe=) give, without touching
    the process's flags. Raises ValueError for an unknown recipe, flag or bad value."""
    with flagsaver.flagsaver():
        for name in flags.FLAGS:
            flags.FLAGS[name].unparse()  # back to its default
        try:
            flags.FLAGS(expand_argv(["colorgan", *args]))
        except (flags.Error, app.UsageError) as e:
            raise ValueError(str(e)) from e
        return config.from_flags(flags.FLAGS)


def config_from_flags(flag_values: flags.FlagValues) -> config.Config:
    """`config.from_flags`, with an inconsistent combination of flags as a usage error (exit 1)."""
    try:
        return config.from_flags(flag_values)
    except ValueError as e:
        raise app.UsageError(f"invalid flags: {e}") from e


# Inference settings a verb may override on the command line (else the model's own, chosen on
# validation data, apply).
INFERENCE_SETTINGS = ("vividness", "color_upsample", "flip_average")


def inference_settings(flag_values: flags.FlagValues) -> dict:
    """The inference settings given on the command line, for `inference.load_model(**...)`."""
    return {name: flag_values[name].value for name in INFERENCE_SETTINGS
            if flag_values[name].present}


def parse_flags(argv: Sequence[str]) -> list[str]:
    """absl's flags parser with recipe expansion; returns the positional arguments. Without
    --verbose, TensorFlow's own Python log lines below errors (retracing hints, checkpoint
    timings) stay off the screen."""
    try:
        positional = flags.FLAGS(expand_argv(argv))
    except (flags.Error, app.UsageError) as e:
        print(f"{os.path.basename(argv[0])}: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if not flags.FLAGS.verbose:
        for name in ("absl", "tensorflow"):  # TF 2.21 logs through absl.logging directly
            std_logging.getLogger(name).addFilter(_drop_library_lines)
    return positional


_LIBRARY_PATHS = (f"{os.sep}tensorflow{os.sep}", f"{os.sep}keras{os.sep}", f"{os.sep}tf_keras{os.sep}")


def _drop_library_lines(record: std_logging.LogRecord) -> bool:
    """A logging filter: False for TensorFlow's and Keras' own lines below ERROR."""
    return record.levelno >= std_logging.ERROR or not any(p in record.pathname
                                                          for p in _LIBRARY_PATHS)


def check_usage(argv: Sequence[str], required: Sequence[str] = (), positional: bool = False) -> None:
    """Raises app.UsageError for stray positional arguments or a missing required flag.

    (Not flags.mark_flag_as_required: flags are process-global, and a flag one verb requires is
    optional for another imported in the same process.)
    """
    if not positional and len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    for name in required:
        if not flags.FLAGS[name].value:
            raise app.UsageError(f"--{name} is required")


def handle_errors(main: Callable[[list[str]], int | None]) -> Callable[[list[str]], int]:
    """Maps exceptions from a verb's main to exit codes and one-line messages."""

    @functools.wraps(main)
    def wrapped(argv: list[str]) -> int:
        try:
            return main(argv) or EXIT_OK
        except app.UsageError as e:
            logging.error("usage: %s (see --help)", e)
            return EXIT_USAGE
        except UserError as e:
            logging.error("%s", e)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            logging.error("interrupted")
            return EXIT_INTERRUPTED
        except Exception as e:  # pylint: disable=broad-except
            if flags.FLAGS.is_parsed() and flags.FLAGS.verbose:
                logging.exception("internal error")
            else:
                logging.error("internal error: %s: %s (run with --verbose for the traceback)",
                              type(e).__name__, e)
            return EXIT_INTERNAL

    return wrapped


def run(main: Callable[[list[str]], int], default_argv: Sequence[str] = ()) -> None:
    """Entry point for `python -m colorgan.<verb>` and the console scripts. `default_argv` goes
    before the user's arguments (e.g. a verb's recipe), so the user's flags win."""
    app.run(main, flags_parser=lambda argv: parse_flags([argv[0], *default_argv, *argv[1:]]))
