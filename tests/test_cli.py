"""colorgan.cli: recipe and flagfile expansion, configs from arguments, and per-verb --help.

Per-verb --help: each verb's key flags (what `--help` lists; `--helpfull` lists every flag) are
the flags that verb reads, and not another verb's, although all of them share one process-global
flag registry. In-process: absl's --help text is `FLAGS.module_help(<the main module>)`.
(tests/test_train_subprocess.py runs one real `train --help`.)"""

import dataclasses
import inspect
import logging
import os
import re

import pytest
from absl import flags
from absl import logging as absl_logging
from absl.testing import flagsaver

from colorgan import cli, colorize, config, evaluate, export, quickstart, train
from colorgan.web import __main__ as web
from colorgan.config import flag_definitions

from conftest import run_main

FLAGS = flags.FLAGS
VERBS = {"colorize": colorize, "train": train, "export": export, "evaluate": evaluate,
         "quickstart": quickstart, "web": web}
# (verb, flags its --help must show, flags it must not: other verbs' or training-only flags).
EXPECTED = [
    ("colorize", {"model", "output", "render_size", "vividness", "color_upsample", "format",
                  "compare", "overwrite", "max_pixels", "checkpoint_step", "verbose"},
     {"beta1", "batch_size", "accuracy_threshold", "workdir", "formats", "version", "image_size"}),
    ("train", {"workdir", "recipe", "beta1", "image_size", "batch_size", "pixel_weight", "steps",
               "verbose"},
     {"model", "output", "render_size", "formats", "accuracy_threshold", "compare"}),
    ("export", {"model", "output", "formats", "version", "render_size", "calibration_images",
                "overwrite"},
     {"beta1", "batch_size", "image_size", "accuracy_threshold", "compare", "workdir"}),
    ("evaluate", {"model", "data", "split", "output", "full_res", "render_size",
                  "accuracy_threshold", "limit", "max_pixels"},
     {"beta1", "batch_size", "formats", "compare", "workdir", "pixel_weight"}),
    ("quickstart", {"workdir", "steps", "verbose"}, {"beta1", "model", "output", "formats"}),
    ("web", {"model", "port", "tfjs_quantization", "verbose"},
     {"output", "formats", "render_size", "workdir", "beta1", "vividness"}),
]
# How a verb's main reads a flag: FLAGS.name or FLAGS["name"].
FLAG_READ = re.compile(r"""FLAGS(?:\.(\w+)|\[["'](\w+)["']\])""")
FLAGS_METHODS = {"is_parsed", "get_key_flags_for_module", "module_help"}


def _key_flags(verb: str) -> set[str]:
    return {f.name for f in FLAGS.get_key_flags_for_module(VERBS[verb].__name__)}


@pytest.mark.parametrize("verb,shown,hidden", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_each_verb_shows_its_own_flags(verb, shown, hidden):
    keys = _key_flags(verb)
    assert shown <= keys, sorted(shown - keys)
    assert not hidden & keys, sorted(hidden & keys)
    assert keys == set(flag_definitions.VERB_FLAGS[verb])  # declared for the verb's own module


@pytest.mark.parametrize("verb,shown,hidden", EXPECTED, ids=[e[0] for e in EXPECTED])
def test_help_text_lists_only_the_verbs_flags(verb, shown, hidden):
    text = FLAGS.module_help(VERBS[verb].__name__)
    for name in shown:
        assert re.search(rf"--(\[no\])?{name}\b", text), name
    for name in hidden:
        assert not re.search(rf"--(\[no\])?{name}\b", text), name


@pytest.mark.parametrize("verb", ["colorize", "export", "evaluate", "web"])
def test_every_flag_a_verb_reads_is_in_its_help(verb):
    """Read from the verb's own source, so a flag newly read by main() cannot be missing from
    its --help; cli.inference_settings(FLAGS) reads the inference settings."""
    source = inspect.getsource(VERBS[verb])
    read = {a or b for a, b in FLAG_READ.findall(source)} - FLAGS_METHODS
    if "cli.inference_settings(FLAGS)" in source:
        read |= set(cli.INFERENCE_SETTINGS)
    assert read, "the pattern found no flag reads"
    assert read <= _key_flags(verb), sorted(read - _key_flags(verb))


def test_train_shows_every_config_flag():
    """train builds its whole Config from flags (cli.config_from_flags): every field of the
    config dataclasses is a train flag."""
    fields = {f.name for cls in (config.DataConfig, config.ModelConfig, config.TrainConfig)
              for f in dataclasses.fields(cls)}
    assert fields <= _key_flags("train"), sorted(fields - _key_flags("train"))


def test_tensorflow_info_lines_stay_off_the_screen_without_verbose(tiny_workdir, tmp_path,
                                                                   caplog):
    """cli.parse_flags: without --verbose, TensorFlow's own Python log lines below errors
    (retracing hints, checkpoint timings) stay off the screen."""
    caplog.set_level(logging.INFO)
    assert run_main(export.main, [f"--model={tiny_workdir}", f"--output={tmp_path / 'out'}",
                                  "--formats=saved_model"]) == cli.EXIT_OK
    from_tf = [f"{os.path.basename(r.pathname)}: {r.getMessage()}" for r in caplog.records
               if f"{os.sep}tensorflow{os.sep}" in r.pathname and r.levelno < logging.ERROR]
    assert from_tf == []


def _config_from_argv(argv: list[str]) -> config.Config:
    with flagsaver.flagsaver():
        cli.parse_flags(["x"] + argv)
        return config.from_flags(FLAGS)


# ----------------------------------------------------------------- recipes and flagfiles
def test_later_flags_override_recipe():
    cfg = _config_from_argv(["--recipe=tiny", "--steps=17", "--base_filters=4"])
    assert cfg.train.steps == 17 and cfg.model.base_filters == 4
    assert cfg.model.max_filters == 32 and cfg.data.batch_size == 4  # the rest of the recipe
    # And the other way round: a recipe given last wins over earlier flags.
    cfg = _config_from_argv(["--steps=17", "--recipe=tiny"])
    assert cfg.train.steps == 6


def test_flagfile(tmp_path):
    path = tmp_path / "mine.flags"
    path.write_text("# a comment\n// another\n\n--recipe=tiny\n--base_filters=12\n--noflip\n"
                    "--learning_rate=3e-4\n--output_space=ab\n")
    cfg = _config_from_argv([f"--flagfile={path}"])
    assert cfg.model.base_filters == 12 and cfg.model.output_space == "ab"
    assert cfg.data.flip is False and cfg.train.learning_rate == pytest.approx(3e-4)
    assert cfg.train.steps == 6  # from the nested recipe
    cfg = _config_from_argv([f"--flagfile={path}", "--base_filters=2"])
    assert cfg.model.base_filters == 2


def test_unknown_recipe_exits_1(capsys):
    with flagsaver.flagsaver():
        with pytest.raises(SystemExit) as excinfo:
            cli.parse_flags(["x", "--recipe=no_such_recipe"])
    assert excinfo.value.code == cli.EXIT_USAGE == 1
    err = capsys.readouterr().err
    assert "no_such_recipe" in err and "tiny" in err  # names the available recipes
    assert run_main(lambda argv: 0, ["--recipe=no_such_recipe"]) == 1
    assert run_main(lambda argv: 0, ["--flagfile=/no/such/file.flags"]) == 1
    assert run_main(lambda argv: 0, ["--image_size=not_a_number"]) == 1
    assert run_main(lambda argv: 0, ["--recipe=tiny"]) == 0


def test_two_word_recipe_and_flagfile_forms_are_expanded(tmp_path):
    flagfile = tmp_path / "x.flags"
    flagfile.write_text("--recipe=tiny\n--steps=3\n")
    assert cli.expand_argv(["--recipe", "tiny"]) == cli.expand_argv(["--recipe=tiny"])
    expanded = cli.expand_argv(["--flagfile", str(flagfile)])
    assert expanded[-1] == "--steps=3" and "--base_filters=8" in expanded


def test_config_from_recipe_applies_overrides_and_leaves_flags_alone():
    before = flags.FLAGS["steps"].value
    cfg = cli.config_from_recipe("tiny", steps=9, image_size=64)
    assert cfg.train.steps == 9 and cfg.model.image_size == cfg.data.image_size == 64
    assert cfg.model.base_filters == 8  # from the recipe
    assert flags.FLAGS["steps"].value == before
    with pytest.raises(ValueError, match="no_such_flag"):
        cli.config_from_recipe("tiny", no_such_flag=1)
    with pytest.raises(ValueError, match="unknown recipe"):
        cli.config_from_recipe("nope")


def test_config_from_recipe_ignores_flags_the_process_parsed():
    with flagsaver.flagsaver(min_chroma=3.0, beta2=0.5):
        cfg = cli.config_from_recipe("tiny")
        assert flags.FLAGS["min_chroma"].value == 3.0  # still the process's
    assert cfg.data.min_chroma == config.DataConfig().min_chroma
    assert cfg.train.beta2 == config.TrainConfig().beta2


def test_config_from_recipe_keeps_info_logs_on(caplog):
    """Resetting absl's --verbosity to its default used to set the absl logger to WARNING, so a
    notebook (or a later test) lost every INFO line after building a Config."""
    caplog.set_level(logging.INFO)
    cli.config_from_recipe("tiny")
    absl_logging.info("still shown")
    assert "still shown" in [r.getMessage() for r in caplog.records]
