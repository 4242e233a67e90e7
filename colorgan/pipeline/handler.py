"""RunInference's model handler for colorgan models, and how photos are batched.

Beam's own TensorFlow handlers (apache_beam.ml.inference.tensorflow_inference) do not fit: they
import tensorflow_hub and load through `tf.keras.models.load_model`, which in Keras 3 reads only
`.keras`/`.h5` files (not a training workdir, an exported SavedModel, a TFLite file or packaged
weights), and they `stack` their inputs into one call, so every photo of a batch would need one
size. This handler loads through colorgan.inference.load_model, once per worker process, and runs
one model call per render shape in each batch (BUILD.md, "Batch colourisation on Apache Beam").
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import threading
import time
from typing import Iterable, Sequence

from apache_beam.ml.inference.base import ModelHandler, PredictionResult
import numpy as np

from colorgan import color, images, inference, photos
from colorgan.pipeline import files
from colorgan.pipeline.job import NAMESPACE, Job

# BatchElements' fixed target weight. A photo weighs its share of a batch: 1/--batch_images, or
# its pixels / --batch_megapixels if that is more, at most a whole batch (it then runs alone).
BATCH_WEIGHT = 1_000_000

# Loaded models of this process, so the driver and in-process workers load a model only once.
_MODELS: dict[tuple, inference.Colorizer] = {}
_MODELS_LOCK = threading.Lock()


def load_model(job: Job) -> inference.Colorizer:
    """The job's model, loaded once per process (a URI is copied to local disk first)."""
    key = (job.model, job.checkpoint_step, job.settings)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = inference.load_model(files.local_model(job.model), job.checkpoint_step,
                                                **dict(job.settings))
        return _MODELS[key]


@dataclasses.dataclass
class Decoded:
    """A photo read for colourising: its paths, its pixels, its file's size in bytes, and the
    milliseconds spent reading and decoding it."""
    src: str
    dst: str
    photo: images.Photo
    nbytes: int
    ms: float


@dataclasses.dataclass
class Rendered:
    """A colourised photo: uint8 sRGB (H, W, 3), its provenance record, and its share of the
    model call's milliseconds."""
    rgb_u8: np.ndarray
    record: dict
    ms: float


def batch_weight(item: Decoded, batch_images: int, batch_megapixels: float) -> int:
    """BatchElements' weight of a photo, in units of BATCH_WEIGHT per batch (see there)."""
    height, width = item.photo.rgb.shape[:2]
    by_pixels = -(-BATCH_WEIGHT * height * width // int(batch_megapixels * 1e6))  # rounded up
    return min(BATCH_WEIGHT, max(BATCH_WEIGHT // batch_images, by_pixels))


class ColorizerHandler(ModelHandler):
    """Decoded photos in; PredictionResults out whose inference is a Rendered, or the one-line
    reason the photo could not be colourised (it then fails alone, never its batch)."""

    def __init__(self, job: Job):
        # min = max: a fixed batch weight, so --batch_images and --batch_megapixels are limits
        # (Beam's adaptive batch sizing would otherwise start at one photo per call).
        super().__init__(min_batch_size=BATCH_WEIGHT, max_batch_size=BATCH_WEIGHT,
                         element_size_fn=functools.partial(
                             batch_weight, batch_images=job.batch_images,
                             batch_megapixels=job.batch_megapixels))
        self._job = job

    def load_model(self) -> inference.Colorizer:
        return load_model(self._job)

    def run_inference(self, batch: Sequence[Decoded], model: inference.Colorizer,
                      inference_args: dict | None = None) -> Iterable[PredictionResult]:
        groups = collections.defaultdict(list)
        for i, item in enumerate(batch):
            groups[model.render_shape(item.photo.rgb.shape, self._job.render_size)].append(i)
        results: list[Rendered | str] = [""] * len(batch)
        for indices in groups.values():
            for i, result in zip(indices, self.colorize_group(model, [batch[i] for i in indices])):
                results[i] = result
        return [PredictionResult(item, result, model.identity)
                for item, result in zip(batch, results)]

    def colorize_group(self, model: inference.Colorizer,
                       items: list[Decoded]) -> list[Rendered | str]:
        """One model call for photos that share a render shape. If it fails, each photo is tried
        alone, so one photo (too large for memory, say) fails alone."""
        start = time.perf_counter()
        try:
            outs = model.colorize_batch([item.photo.rgb for item in items], self._job.render_size)
            rgbs = [color.to_uint8(out).numpy() for out in outs]
        except Exception as e:  # pylint: disable=broad-except  (reported per photo, never raised)
            if len(items) == 1:
                return [photos.failure_reason(e)]
            return [r for item in items for r in self.colorize_group(model, [item])]
        ms = 1000 * (time.perf_counter() - start) / len(items)
        record = model.provenance(self._job.render_size)
        return [Rendered(rgb, record, ms) for rgb in rgbs]

    def get_metrics_namespace(self) -> str:
        return NAMESPACE + "_inference"
