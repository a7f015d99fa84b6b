"""Reports of the files and folders a dataset leaves out, each with a stable reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    DatasetWarning,  # re-exported: every error class lives in edgelab.errors
)
from ..records import Record

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["DatasetWarning", "SkipReason", "SkippedFile", "SkippedReport"]


class SkipReason:
    """Why a file or folder was not used. The values are stable strings (shown in reports and JSON)."""

    HIDDEN = "hidden"
    UNSUPPORTED = "unsupported extension"
    ZERO_BYTE = "zero-byte file"
    UNREADABLE = "unreadable"
    NOT_IMAGE = "not an image"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    TOO_LARGE = "too large"
    LINK_LOOP = "folder visited twice"
    DUPLICATE = "duplicate file"
    EMPTY_FOLDER = "empty folder"
    OUTSIDE_CLASSES = "outside class folders"
    UNKNOWN_CLASS = "unknown class"
    NOT_REGULAR = "not a regular file"
    PIXEL_FORMAT = "unsupported pixel format"

    ALL = (
        HIDDEN,
        UNSUPPORTED,
        ZERO_BYTE,
        UNREADABLE,
        NOT_IMAGE,
        TRUNCATED,
        CORRUPT,
        TOO_LARGE,
        LINK_LOOP,
        DUPLICATE,
        EMPTY_FOLDER,
        OUTSIDE_CLASSES,
        UNKNOWN_CLASS,
        NOT_REGULAR,
        PIXEL_FORMAT,
    )


@dataclass(frozen=True)
class SkippedFile(Record):
    """One file or folder that was not used, with a reason from :class:`SkipReason` and a detail."""

    path: Path
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class SkippedReport:
    """Every file or folder left out of a dataset, in path order. Behaves like a read-only list."""

    files: tuple[SkippedFile, ...] = ()

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[SkippedFile]:
        return iter(self.files)

    def __getitem__(self, index: int) -> SkippedFile:
        return self.files[index]

    def __add__(self, other: SkippedReport | Iterable[SkippedFile]) -> SkippedReport:
        return SkippedReport(self.files + tuple(other))

    def by_reason(self) -> dict[str, int]:
        """Number of entries per reason, in :attr:`SkipReason.ALL` order."""
        counts = Counter(f.reason for f in self.files)
        return {r: counts[r] for r in SkipReason.ALL if counts[r]}

    def paths(self, reason: str | None = None) -> list[Path]:
        """Paths skipped (for one reason, or all)."""
        return [f.path for f in self.files if reason is None or f.reason == reason]

    def summary(self) -> str:
        """``"3 files skipped (truncated: 2, not an image: 1)"``."""
        parts = ", ".join(f"{r}: {n}" for r, n in self.by_reason().items())
        noun = "file" if len(self) == 1 else "files"
        return f"{len(self)} {noun} skipped" + (f" ({parts})" if parts else "")

    def to_list(self) -> list[dict[str, str]]:
        return [f.to_dict() for f in self.files]

    def to_frame(self) -> pd.DataFrame:
        # deferred: pandas (only this table needs it)
        import pandas as pd

        return pd.DataFrame(self.to_list(), columns=["path", "reason", "detail"])

    def __repr__(self) -> str:
        return f"SkippedReport({self.summary()})"
