"""Matplotlib figures as PNG bytes, for reports (evaluate, hint_eval, benchmarks)."""

from __future__ import annotations

import io


def figure(size: tuple[float, float] = (5, 4)):
    """(Figure, Axes) on the Agg canvas, without pyplot: no global backend switch, so
    notebooks keep their inline plots."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def png(fig) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()
