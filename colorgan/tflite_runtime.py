"""Running a TFLite model in Python: the LiteRT interpreter (ai-edge-litert if installed, else
TF's bundled one) and a predict function with the Keras model's calling convention."""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from colorgan import quiet


def make_interpreter(model_content: bytes, num_threads: int | None = None):
    """A LiteRT interpreter (ai-edge-litert if installed, else TF's bundled tf.lite one);
    `num_threads`: its CPU threads (None: LiteRT's default)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # pylint: disable=import-outside-toplevel
    except ImportError:
        Interpreter = tf.lite.Interpreter  # noqa: N806
    with quiet.filtered_stderr():  # LiteRT announces its XNNPACK delegate on stderr
        interpreter = Interpreter(model_content=model_content, num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


def predict_fn(model_content: bytes) -> Callable[[tf.Tensor], tf.Tensor]:
    """Model-space l (N, h, w, 1) -> ab (N, h, w, 2) through a TFLite model with a dynamic
    (1, H, W, 1) input (colorgan.export): the interpreter's input is resized to each image's own
    size, so it sees exactly what the Keras model would (the aspect ratio kept)."""
    interpreter = make_interpreter(model_content)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    shape = [list(inp["shape"])]

    def predict(l):
        l = np.asarray(tf.convert_to_tensor(l, tf.float32))
        if list(l.shape[1:]) != shape[0][1:]:
            interpreter.resize_tensor_input(inp["index"], [1, *l.shape[1:]])
            interpreter.allocate_tensors()
            shape[0] = [1, *l.shape[1:]]
        results = []
        for image in l:
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            results.append(interpreter.get_tensor(out["index"]))
        return tf.convert_to_tensor(np.concatenate(results))

    return predict
