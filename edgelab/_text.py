"""Text edgelab returns for people to read, in lines that fit a notebook's output area.

JupyterLab's output area breaks a line longer than its width wherever the width ends, mid-word
("limitat" / "ion"); at the default window and font it holds about 100 characters. Summaries,
messages and recommendations therefore come wrapped at word boundaries to :data:`WIDTH`.
"""

from __future__ import annotations

import textwrap

#: Longest line of text edgelab returns for display (JupyterLab's default output width).
WIDTH = 100
#: Longest message edgelab logs: room for a handler's prefix such as ``edgelab WARNING: ``.
LOG_WIDTH = WIDTH - 20


def wrap(text: str, width: int = WIDTH, indent: str = "  ") -> str:
    """``text`` with every line longer than ``width`` broken at spaces (never inside a word or a path).

    A continuation line keeps its line's leading spaces plus ``indent``; lines that fit, and a single
    word longer than ``width`` (a URL), stay as they are.
    """
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip(" "))]
        out.extend(
            textwrap.wrap(
                line,
                width,
                subsequent_indent=lead + indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [line]
        )
    return "\n".join(out)
