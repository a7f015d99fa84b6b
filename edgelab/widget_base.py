"""The base widget of every notebook explorer (:mod:`edgelab.widgets`, :mod:`edgelab.diagnose.widget`).

Its state lives in widget traits (an ``ipywidgets.Image``, two ``ipywidgets.HTML``), not in an
``Output`` area, so setting a control's value from code updates the explorer at once.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ._text import wrap
from .explore import ImageGrid, html_frame, picture_bytes

__all__ = ["Explorer", "button"]


class Explorer(w.VBox):
    """The base of every explorer: a picture (``.image``), a status line (``.label``) and a table (``.table``).

    A subclass builds its controls, overrides ``_render`` (recompute and ``_show``) and ``summary``.
    """

    def __init__(self, controls: Sequence[w.Widget], **kwargs: Any) -> None:
        # flex-start: shown at its own size, not stretched to the width of the box
        self.image = w.Image(layout=w.Layout(max_width="100%", align_self="flex-start"))
        self.label = w.HTML()
        self.table = w.HTML()
        super().__init__([w.HBox(list(controls)), self.label, self.image, self.table], **kwargs)

    def _render(self) -> None:  # overridden: recompute picture, status line and table
        raise NotImplementedError

    def _show(
        self, picture: Figure | ImageGrid | np.ndarray | None, status: str, table: pd.DataFrame | None = None
    ) -> None:
        if picture is None:
            self.image.value, self.image.layout.display = b"", "none"
        else:
            data, fmt = picture_bytes(picture)
            self.image.format, self.image.value, self.image.layout.display = fmt, data, None
        # One paragraph per finding (HTML would run them together), the first in bold; an indented
        # line continues the paragraph above it (edgelab's text is wrapped for plain output).
        paragraphs: list[str] = []
        for line in status.split("\n"):
            if paragraphs and line[:1].isspace():
                paragraphs[-1] += " " + line.strip()
            else:
                paragraphs.append(line)
        first, *rest = map(html.escape, paragraphs)
        self.label.value = "<br>".join([f"<b>{first}</b>", *rest])
        self.table.value = html_frame(table) if table is not None and len(table) else ""

    def summary(self) -> str:
        """The current state as plain text."""
        raise NotImplementedError

    def __repr__(self) -> str:  # the text/plain fallback a notebook stores: short and stable
        try:
            first = self.summary().splitlines()[0]
        except Exception:  # not fully built yet
            first = ""
        return wrap(f"{type(self).__name__}({first})")


def button(description: str, icon: str) -> w.Button:
    """A button sized to its label, as the explorers use."""
    return w.Button(description=description, icon=icon, layout=w.Layout(width="auto"))
