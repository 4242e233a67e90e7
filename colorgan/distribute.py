"""tf.distribute strategies by name (`--strategy`), and what the training loop needs to know
about the one it runs under: one code path from a laptop CPU to GPUs, worker clusters and TPUs.

- 'default': TF's default strategy (one device; no cross-replica work at all).
- 'mirrored': synchronous data parallelism over this machine's GPUs, or over its logical CPU
  devices when it has no GPU (tests split the CPU in two: `split_cpu`).
- 'multiworker': MultiWorkerMirroredStrategy over the cluster in the standard `TF_CONFIG`
  environment variable (every worker runs the same command; worker 0, or 'chief', writes).
- 'tpu': TPUStrategy through the standard TPUClusterResolver (`--tpu`: name or grpc:// address;
  empty on a Cloud TPU VM).

Semantics (train.py): --batch_size is the *global* batch, split evenly over replicas; each
replica's loss is divided by the number of replicas so the summed gradients are the mean over the
global batch; BatchNorm is synchronised across replicas; models, optimizers and checkpoints are
created in the strategy's scope; checkpoints are strategy-independent (save under one, restore
under another).
"""

from __future__ import annotations

import functools
import json
import os
import socket

from absl import logging
import tensorflow as tf

from colorgan.config import STRATEGIES
from colorgan.errors import UserError


def split_cpu(devices: int) -> None:
    """Splits the first physical CPU into `devices` logical devices (before TF initialises).

    For running the 'mirrored' path on a machine without accelerators (tests, benchmarks)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])


@functools.cache
def _mirrored(devices: tuple[str, ...]) -> tf.distribute.MirroredStrategy:
    """One MirroredStrategy per device list and process: the collective keys of a second live one
    clash with the first's (its synchronised-BatchNorm all-reduces then fail with "Shape mismatch
    in the collective instance"), e.g. when a notebook trains twice or tests train in turn."""
    return tf.distribute.MirroredStrategy(list(devices))


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """The strategy called `name` (see the module docstring). Raises UserError if unavailable."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return _mirrored(tuple(d.name for d in devices))
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            logging.warning("--strategy=multiworker without TF_CONFIG: a cluster of one worker")
        else:
            try:
                json.loads(os.environ["TF_CONFIG"])
            except ValueError as e:
                raise UserError(f"TF_CONFIG is not valid JSON ({e})") from e
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as e:
            raise UserError(f"--strategy=tpu: no TPU found (--tpu={tpu!r}): "
                            f"{str(e).splitlines()[0]}") from e
        return tf.distribute.TPUStrategy(resolver)
    raise UserError(f"unknown --strategy={name!r}; valid: {', '.join(STRATEGIES)}")


def replica_batch_size(global_batch: int, strategy: tf.distribute.Strategy) -> int:
    """Per-replica share of the global batch. Raises UserError unless it divides evenly."""
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise UserError(f"--batch_size={global_batch} is the global batch and must be a multiple "
                        f"of the {replicas} replicas of this strategy")
    return global_batch // replicas


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the workdir: the chief, else worker 0, else the only one."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def task_id(strategy: tf.distribute.Strategy) -> int:
    """This worker's index in its cluster (0 without one)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None else 0


def localhost_tf_configs(workers: int) -> list[str]:
    """`TF_CONFIG` values for a cluster of `workers` processes on this machine (free ports), one
    per worker: for trying --strategy=multiworker locally (tests, benchmarks/scaling.py)."""
    sockets = [socket.socket() for _ in range(workers)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        cluster = {"worker": [f"localhost:{s.getsockname()[1]}" for s in sockets]}
    finally:
        for s in sockets:
            s.close()
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            for i in range(workers)]
