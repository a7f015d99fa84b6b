"""Text edgelab returns for people to read, in lines that fit a notebook's output area.

JupyterLab's output area breaks a line longer than its width wherever the width ends, mid-word
("limitat" / "ion"); at the default window and font it holds about 100 characters. Summaries,
messages and recommendations therefore come wrapped at word boundaries to :data:`WIDTH`.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

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


def hanging(text: str, indent: int, width: int = WIDTH) -> str:
    """``text`` (one line) broken at spaces to ``width``, continuation lines indented ``indent`` spaces.

    For a table row whose last column is prose: the continuation starts under that column.
    """
    if len(text) <= width:
        return text
    return "\n".join(
        textwrap.wrap(text, width, subsequent_indent=" " * indent, break_long_words=False, break_on_hyphens=False)
        or [text]
    )


def _split_literal(value: str, room: int) -> list[str] | None:
    """``value`` cut at spaces into pieces whose ``repr`` fits ``room`` characters (None: it cannot be)."""
    pieces = textwrap.wrap(
        value, max(room - 2, 1), drop_whitespace=False, break_long_words=False, break_on_hyphens=False
    )
    if len(pieces) < 2 or "".join(pieces) != value:
        return None
    return [repr(p) for p in pieces]


def fields_repr(name: str, *parts: str | tuple[str, Any], width: int = WIDTH) -> str:
    """``name(a=1, b='x')``: one line when it fits ``width``, else the parts packed under the parenthesis.

    A part is text as shown (``"input=uint8"``) or a ``(key, value)`` pair shown as ``key=repr(value)``;
    a string value too long for a line is cut at spaces into adjacent literals, one under the other,
    so the text stays valid Python with the same value.
    """
    texts = [p if isinstance(p, str) else f"{p[0]}={p[1]!r}" for p in parts]
    one = f"{name}({', '.join(texts)})"
    if len(one) <= width:
        return one
    pad = " " * (len(name) + 1)
    lines: list[str] = []
    line = name + "("
    empty = True  # nothing on ``line`` yet but its indent or the opening parenthesis
    for i, (part, text) in enumerate(zip(parts, texts)):
        piece = text + (")" if i == len(texts) - 1 else ",")
        if not empty and len(line) + 1 + len(piece) <= width:
            line += " " + piece
            continue
        if not empty:
            lines.append(line)
            line, empty = pad, True
        if len(line) + len(piece) > width and isinstance(part, tuple) and isinstance(part[1], str):
            key = f"{part[0]}="
            literals = _split_literal(part[1], width - len(line) - len(key) - 1)
            if literals:
                under = " " * (len(line) + len(key))
                literals[-1] += piece[-1]
                lines.append(line + key + literals[0])
                lines.extend(under + lit for lit in literals[1:-1])
                line, empty = under + literals[-1], False
                if i < len(texts) - 1:
                    lines.append(line)
                    line, empty = pad, True
                continue
        line += piece
        empty = False
    if not empty or line.strip():
        lines.append(line)
    return "\n".join(lines)


def dataclass_repr(obj: Any) -> str:
    """:func:`fields_repr` of a dataclass instance: its ``repr=True`` fields as ``name=value``."""
    shown = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.repr]
    return fields_repr(type(obj).__name__, *shown)
