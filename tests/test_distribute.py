"""tf.distribute: mirrored training on 2 logical CPU devices (conftest splits the CPU) and a
2-worker localhost MultiWorkerMirroredStrategy run, against the same run on one device.

Global-batch semantics make this exact up to float rounding: the same examples form global batch
k under every strategy, each replica's loss is divided by the replica count and BatchNorm is
synchronised, so 2 replicas and 1 device compute the same update.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from colorgan import config, data, distribute, train, workdir as workdir_lib
from conftest import run_main
from test_train import GAN_LOSSES, with_changes

# 1 device vs 2 replicas: the same float32 math summed in a different order (cross-replica sums
# of gradients and of BatchNorm moments).
STRATEGY_RTOL, STRATEGY_ATOL = 1e-4, 1e-5
WORKER_TIMEOUT_S = 300


def gan_config(tiny_config: config.Config, strategy: str, steps: int) -> config.Config:
    # No dropout: each replica would draw its own masks, which one device cannot reproduce.
    return with_changes(tiny_config, model=dict(dropout_blocks=0),
                        train=dict(mode="gan", strategy=strategy, steps=steps, log_every_steps=1))


def assert_same_losses(history_a, history_b):
    assert [h["step"] for h in history_a] == [h["step"] for h in history_b]
    for a, b in zip(history_a, history_b):
        for name in GAN_LOSSES:
            np.testing.assert_allclose(b[name], a[name], rtol=STRATEGY_RTOL, atol=STRATEGY_ATOL,
                                       err_msg=f"{name} at step {a['step']}")


def assert_same_weights(weights_a, weights_b):
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_allclose(b, a, rtol=STRATEGY_RTOL, atol=STRATEGY_ATOL)


@pytest.fixture(scope="module")
def one_device_run(tiny_config, tmp_path_factory):
    """The reference: 4 GAN steps under the default strategy."""
    return train.train(gan_config(tiny_config, "default", 4), str(tmp_path_factory.mktemp("one")))


def test_the_test_machine_has_two_cpu_devices():
    assert len(tf.config.list_logical_devices("CPU")) == 2
    assert distribute.make_strategy("mirrored").num_replicas_in_sync == 2


def test_one_mirrored_strategy_per_process():
    """A second live MirroredStrategy's collective keys clash with the first's (its BatchNorm
    all-reduces fail with "Shape mismatch in the collective instance"): make_strategy reuses one."""
    assert distribute.make_strategy("mirrored") is distribute.make_strategy("mirrored")


def test_mirrored_matches_one_device_and_replicas_stay_identical(tiny_config, tmp_path,
                                                                 one_device_run):
    result = train.train(gan_config(tiny_config, "mirrored", 4), str(tmp_path / "mirrored"))
    assert_same_losses(one_device_run.history, result.history)
    assert_same_weights(one_device_run.generator.get_weights(), result.generator.get_weights())
    for variable in result.generator.variables:
        copies = variable.value.values  # a MirroredVariable: one copy per replica
        assert len(copies) == 2, variable.path
        np.testing.assert_array_equal(copies[0].numpy(), copies[1].numpy(), err_msg=variable.path)
    # Synchronised BatchNorm (inference is built without it).
    norms = [layer for layer in result.generator.layers if "norm" in layer.name]
    assert norms and all(layer.synchronized for layer in norms)


@pytest.mark.parametrize("first,second", [("mirrored", "default"), ("default", "mirrored")])
def test_a_checkpoint_resumes_under_another_strategy(tiny_config, tmp_path, one_device_run,
                                                     first, second):
    workdir = str(tmp_path / "run")
    before = train.train(gan_config(tiny_config, first, 2), workdir)
    after = train.train(gan_config(tiny_config, second, 4), workdir)
    assert before.step == 2 and after.step == 4
    assert_same_losses(one_device_run.history, before.history + after.history)
    assert_same_weights(one_device_run.generator.get_weights(), after.generator.get_weights())


def test_shards_of_the_input_make_up_the_same_global_batches(tiny_config):
    cfg = tiny_config.data  # global batch 4
    files = data.training_files(cfg).files
    whole = [b["ab"].numpy() for b in data.make_train_dataset(cfg, files, seed=3).take(3)]
    # 2 input pipelines (workers) x 2 replicas each: per-replica batches of 1; each pipeline
    # feeds its replicas consecutive batches, so global step k is batches 2k and 2k+1 of each.
    shards = [[b["ab"].numpy() for b in data.make_train_dataset(
        cfg, files, seed=3, shard=(i, 2), batch_size=1).take(6)] for i in range(2)]
    for k, global_batch in enumerate(whole):
        parts = np.concatenate([shards[i][2 * k + r] for i in range(2) for r in range(2)])
        # The same images (sorted by content), in a different order.
        key = lambda batch: sorted(range(len(batch)), key=lambda j: float(batch[j].sum()))  # noqa
        np.testing.assert_array_equal(parts[key(parts)], global_batch[key(global_batch)])


def test_batch_must_divide_over_replicas(tmp_path, caplog):
    code = run_main(train.main, ["--recipe=tiny", "--strategy=mirrored", "--batch_size=3",
                                 f"--workdir={tmp_path / 'w'}"])
    assert code == 2
    assert "multiple of the 2 replicas" in caplog.text


def test_strategy_may_change_when_resuming_but_not_the_model():
    old = config.Config(train=config.TrainConfig(strategy="default"))
    new = config.Config(train=config.TrainConfig(strategy="multiworker", tpu="x"))
    assert config.config_differences(old, new) == []


@pytest.mark.parametrize("task_type,task_id,has_chief,want", [
    ("worker", 0, False, True), ("worker", 1, False, False), ("chief", 0, True, True),
    ("worker", 0, True, False), (None, None, False, True)])
def test_is_chief(task_type, task_id, has_chief, want):
    jobs = {"worker": ["localhost:1", "localhost:2"]}
    if has_chief:
        jobs["chief"] = ["localhost:3"]
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(jobs), task_type=task_type, task_id=task_id)
    assert distribute.is_chief(types.SimpleNamespace(cluster_resolver=resolver)) is want
    assert distribute.is_chief(tf.distribute.get_strategy()) is True


# ---------------------------------------------------------------- 2 workers on localhost
_WORKER = """
import json, sys
import numpy as np
from colorgan import cli, train
workdir, out = sys.argv[1], sys.argv[2]
cfg = cli.config_from_recipe("tiny", mode="gan", dropout_blocks=0, strategy="multiworker",
                             steps=4, log_every_steps=1)
result = train.train(cfg, workdir)
np.savez(out + ".npz", *result.generator.get_weights())
with open(out + ".json", "w") as f:
    json.dump(result.history, f)
"""


def test_two_localhost_workers_match_one_device(tmp_path, one_device_run):
    workdir, script = str(tmp_path / "run"), tmp_path / "worker.py"
    script.write_text(_WORKER)
    procs = []
    for index, tf_config in enumerate(distribute.localhost_tf_configs(2)):
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs.append(subprocess.Popen(
            [sys.executable, str(script), workdir, str(tmp_path / f"worker{index}")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [p.communicate(timeout=WORKER_TIMEOUT_S)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]

    weights = [list(np.load(tmp_path / f"worker{i}.npz").values()) for i in range(2)]
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)  # the workers end identical
    histories = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    losses = [[{k: v for k, v in h.items() if k not in ("images_per_s", "train_s", "cpu_s")} for h in hist]
              for hist in histories]
    assert losses[0] == losses[1]
    # ... and equal to one device on the same global batches.
    assert_same_losses(one_device_run.history, histories[0])
    assert_same_weights(one_device_run.generator.get_weights(), weights[0])
    # Only the chief wrote the workdir; the other worker's checkpoint copy is gone.
    ckpt_dir = os.path.join(workdir, workdir_lib.CKPT_DIR)
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint", "ckpt-3.data-00000-of-00001",
                                            "ckpt-3.index", "ckpt-4.data-00000-of-00001",
                                            "ckpt-4.index"]
    assert len(workdir_lib.read_log(workdir)) == 4
    # The cluster's checkpoint restores on one device.
    generator, _ = workdir_lib.load_generator(workdir)
    assert_same_weights(weights[0], generator.get_weights())
