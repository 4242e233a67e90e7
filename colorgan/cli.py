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
    absl_level = std_logging.getLogger("absl").level
    with flagsaver.flagsaver():
        for name in flags.FLAGS:
            flags.FLAGS[name].unparse()  # back to its default
        # Resetting absl's --verbosity sets the absl logger's level (to WARNING where absl's
        # handler is not installed: notebooks, tests), and flagsaver does not undo that.
        std_logging.getLogger("absl").setLevel(absl_level)
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
INFERENCE_SETTINGS = config.INFERENCE_FIELDS


def inference_settings(flag_values: flags.FlagValues,
                       names: tuple[str, ...] = INFERENCE_SETTINGS) -> dict:
    """The inference settings given on the command line, for `inference.load_model(**...)`;
    `names`: the ones the verb reads (config.NO_HINT_INFERENCE for verbs that take no hints)."""
    return {name: flag_values[name].value for name in names if flag_values[name].present}


# absl's help flags: a verb with `extra_help` prints that text after absl's own help.
_HELP_ARGS = frozenset({"--help", "-help", "-h", "-?", "--helpshort", "--helpfull"})


def split_argv(argv: Sequence[str],
               flag_values: flags.FlagValues = flags.FLAGS) -> tuple[list[str], list[str]]:
    """(argv[0] and the flags absl defines, with their values; every other argument, in order).

    The second list is for another parser (Beam's PipelineOptions), so it keeps the two-word form
    `--runner DataflowRunner` intact: absl's `known_only` parse would move such values after all
    unknown flags. An absl flag's value may be its next argument (`--model PATH`) unless it is a
    boolean; `--noNAME` is a boolean's negation. Everything after `--` goes to the second list.
    """
    ours, rest = [argv[0]], []
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == "--":
            rest += [arg, *args]
            break
        name, eq, _ = arg.lstrip("-").partition("=")
        negated = name not in flag_values and name.startswith("no") and name[2:] in flag_values
        if not arg.startswith("-") or not (name in flag_values or negated):
            rest.append(arg)
            continue
        ours.append(arg)
        if not eq and not negated and not flag_values[name].boolean and args:
            ours.append(args.pop(0))
    return ours, rest


def parse_flags(argv: Sequence[str], passthrough: bool = False,
                extra_help: Callable[[], str] | None = None) -> list[str]:
    """absl's flags parser with recipe expansion; returns the positional arguments. Without
    --verbose, TensorFlow's own Python log lines below errors (retracing hints, checkpoint
    timings) stay off the screen.

    `passthrough`: arguments that are not colorgan's or absl's flags are returned after argv[0]
    instead of being an error (split_argv). `extra_help`: text printed after absl's --help.
    """
    try:
        argv = expand_argv(argv)
        if extra_help and _HELP_ARGS & set(argv[1:]):
            app.usage(shorthelp="--helpfull" not in argv, writeto_stdout=True)
            print(extra_help())
            sys.exit(EXIT_USAGE)  # absl's own status after --help
        argv, rest = split_argv(argv) if passthrough else (argv, [])
        positional = flags.FLAGS(argv) + rest
    except (flags.Error, app.UsageError) as e:
        print(f"{os.path.basename(argv[0])}: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if not flags.FLAGS.verbose:
        hide_library_logs()
    return positional


def hide_library_logs() -> None:
    """TensorFlow's, Keras' and Beam's own Python log lines below errors off the screen (TF 2.21
    logs through absl.logging directly; Beam's import warns on the root logger)."""
    for name in ("absl", "tensorflow", ""):
        std_logging.getLogger(name).addFilter(_drop_library_lines)


_LIBRARY_PATHS = tuple(f"{os.sep}{name}{os.sep}"
                       for name in ("tensorflow", "keras", "tf_keras", "apache_beam"))


def _drop_library_lines(record: std_logging.LogRecord) -> bool:
    """A logging filter: False for TensorFlow's, Keras' and Beam's own lines below ERROR."""
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


def report_outcome(written: Sequence[str], failed: Sequence[str], skipped: Sequence[str]) -> int:
    """The end of a per-file CLI (colourise, video): each written path on stdout, the skipped
    and failed counts in the log; the exit status (EXIT_USER_ERROR if any input failed)."""
    for path in written:
        print(path)
    if skipped:
        logging.info("%d skipped: output exists, use --overwrite", len(skipped))
    if failed:
        logging.error("%d of %d inputs failed", len(failed),
                      len(failed) + len(written) + len(skipped))
        return EXIT_USER_ERROR
    return EXIT_OK


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


def run(main: Callable[[list[str]], int], default_argv: Sequence[str] = (), *,
        passthrough: bool = False, extra_help: Callable[[], str] | None = None) -> None:
    """Entry point for `python -m colorgan.<verb>` and the console scripts. `default_argv` goes
    before the user's arguments (e.g. a verb's recipe), so the user's flags win; `passthrough`
    and `extra_help` as in parse_flags."""
    app.run(main, flags_parser=lambda argv: parse_flags([argv[0], *default_argv, *argv[1:]],
                                                        passthrough, extra_help))
