"""colorgan.config and the recipe/flagfile handling in colorgan.cli."""

from __future__ import annotations

import dataclasses
import glob
import json
import os

import pytest
from absl import flags
from absl.testing import flagsaver

from colorgan import cli, config
from conftest import run_main

FLAGS = flags.FLAGS

RECIPES = sorted(os.path.basename(p)[:-len(".flags")]
                 for p in glob.glob(os.path.join(config.CONFIGS_DIR, "*.flags")))
CONFIG_FIELDS = {f.name for cls in (config.DataConfig, config.ModelConfig, config.TrainConfig)
                 for f in dataclasses.fields(cls)}


def _config_from_argv(argv: list[str]) -> config.Config:
    with flagsaver.flagsaver():
        cli.parse_flags(["x"] + argv)
        return config.from_flags(FLAGS)


def _field(cfg: config.Config, name: str):
    for section in (cfg.data, cfg.model, cfg.train):
        if hasattr(section, name):
            return getattr(section, name)
    raise KeyError(name)


def _expected_values(argv: list[str]) -> dict:
    """What each config flag in (expanded) argv should set, parsed by the flag's own parser;
    the last occurrence wins."""
    expected = {}
    for arg in cli.expand_argv(argv):
        name, _, value = arg[2:].partition("=")
        if not _:
            if name in CONFIG_FIELDS:
                expected[name] = True
            elif name.startswith("no") and name[2:] in CONFIG_FIELDS:
                expected[name[2:]] = False
            continue
        if name in CONFIG_FIELDS:
            expected[name] = FLAGS[name].parser.parse(value)
    return expected


def test_recipes_exist():
    assert "tiny" in RECIPES


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_parses_into_a_valid_config(name):
    cfg = _config_from_argv([f"--recipe={name}"])
    assert isinstance(cfg, config.Config)
    assert cfg.data.image_size == cfg.model.image_size
    assert cfg.model.num_down >= 1
    expected = _expected_values([f"--recipe={name}"])
    assert expected, f"recipe {name} sets no config flag"
    for field, value in expected.items():
        assert _field(cfg, field) == value, (name, field)
    # The resolved config survives its own serialisations.
    assert config.from_dict(json.loads(config.to_json(cfg))) == cfg


def test_tiny_config_fixture_matches_recipe(tiny_config):
    assert tiny_config.model.base_filters == 8 and tiny_config.train.steps == 6
    assert tiny_config.data.val_fraction == 0.0 and tiny_config.model.depth == 3


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


def test_model_config_cross_field_checks():
    with pytest.raises(ValueError, match=r"image_size=48 .*2\*\*depth=32"):
        config.ModelConfig(image_size=48, depth=5)
    with pytest.raises(ValueError, match="power-of-two image_size, got 48"):
        config.ModelConfig(image_size=48, depth=0)
    with pytest.raises(ValueError, match="dropout_blocks"):
        config.ModelConfig(image_size=32, depth=3, dropout_blocks=3)
    assert config.ModelConfig(image_size=48, depth=4).num_down == 4
    assert config.ModelConfig(image_size=64, depth=0).num_down == 6
    with pytest.raises(ValueError, match="image_size"):
        config.Config(data=config.DataConfig(image_size=64), model=config.ModelConfig(image_size=32))


def _non_default_config(tmp_path) -> config.Config:
    return config.Config(
        data=config.DataConfig(data=str(tmp_path / "my photos"), val_fraction=0.25,
                               image_size=48, batch_size=3, crop_min=0.7, flip=False,
                               min_chroma=1.5, cache_dir=str(tmp_path / "cache")),
        model=config.ModelConfig(image_size=48, base_filters=6, max_filters=24, depth=4,
                                 output_space="ab", upsample="resize_conv", dropout_blocks=2,
                                 dropout_rate=0.3, discriminator="patch", disc_filters=5),
        train=config.TrainConfig(mode="gan", steps=123, learning_rate=1.5e-4,
                                 d_learning_rate=1.0 / 3.0e4, beta1=0.0, pixel_loss="l1",
                                 pixel_weight=10.0, label_smoothing=0.1,
                                 mixed_precision="bfloat16", seed=42, deterministic=True,
                                 init_from="default", strategy="mirrored", tpu="grpc://x:8470"))


def test_to_flagfile_parses_back_to_same_config(tmp_path):
    cfg = _non_default_config(tmp_path)
    path = tmp_path / "config.flags"
    path.write_text(config.to_flagfile(cfg))
    assert _config_from_argv([f"--flagfile={path}"]) == cfg
    default = config.Config()
    path.write_text(config.to_flagfile(default))
    assert _config_from_argv(["--recipe=tiny", f"--flagfile={path}"]) == default


def test_json_and_dict_round_trip(tmp_path):
    cfg = _non_default_config(tmp_path)
    assert config.from_dict(json.loads(config.to_json(cfg))) == cfg
    assert config.from_dict(config.to_dict(cfg)) == cfg
    d = config.to_dict(cfg)
    d["model"]["no_such_field"] = 1
    with pytest.raises(ValueError, match="no_such_field"):
        config.from_dict(d)


def test_config_differences(tmp_path):
    old = _non_default_config(tmp_path)
    resumed = dataclasses.replace(
        old, train=dataclasses.replace(old.train, steps=999, log_every_steps=7))
    assert config.config_differences(old, resumed) == []
    changed = dataclasses.replace(old, model=dataclasses.replace(old.model, base_filters=16))
    assert config.config_differences(old, changed) == ["base_filters: 6 -> 16"]


def test_non_defaults_lists_only_changed_fields():
    cfg = config.Config(train=config.TrainConfig(steps=5))
    assert config.non_defaults(cfg) == {"steps": 5}


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
