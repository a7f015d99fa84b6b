"""edgelab's figures: plain matplotlib Figures (no pyplot state) that Jupyter shows as pictures.

A ``matplotlib.figure.Figure`` made without pyplot has no picture representation of its own: as the
last value of a notebook cell it shows ``<Figure size 650x420 with 1 Axes>`` unless the notebook ran
``%matplotlib inline`` (which registers a PNG formatter for figures). This subclass adds
``_repr_png_``, which IPython uses when no formatter is registered, so an edgelab figure shows in any
notebook; with ``%matplotlib inline`` IPython's own formatter wins and the picture is shown once.
The class keeps matplotlib's name so that its text form stays ``<Figure size ... with N Axes>``.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure as _MatplotlibFigure

__all__ = ["Figure"]


class Figure(_MatplotlibFigure):
    """A matplotlib Figure with a PNG representation for Jupyter (no pyplot, no backend switch)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)  # the Agg canvas, chosen by savefig; pyplot stays untouched
        return buffer.getvalue()
