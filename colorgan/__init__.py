"""colorgan: automatic colourisation of grayscale photos with a U-Net and a conditional GAN.

The public Python API is `load_model` and `colorize_array` (from colorgan.inference); they are
imported lazily so that `colorgan.config` and the CLIs' flag parsing do not pay for TensorFlow.
"""

__version__ = "0.1.0"
__all__ = ["load_model", "colorize_array", "__version__"]

from colorgan import quiet as _quiet  # noqa: E402  (stdlib only; must run before TensorFlow)

if _quiet.wanted():  # a colorgan command: keep TensorFlow's start-up noise off the screen
    _quiet.enable()
    _quiet.start_tensorflow()


def __getattr__(name):
    if name in ("load_model", "colorize_array", "Colorizer"):
        from colorgan import inference  # pylint: disable=import-outside-toplevel
        return getattr(inference, name)
    raise AttributeError(f"module 'colorgan' has no attribute {name!r}")
