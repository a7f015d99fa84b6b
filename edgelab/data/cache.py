"""A decoded-image cache: the images of a folder dataset decoded once, at model size, into a
memory-mapped uint8 file, so memory stays near one decoded copy of the dataset (or less: the
operating system pages the file in and out) and a dataset larger than memory still works.

One file per split and image size lives under :func:`cache_dir` (``EDGELAB_CACHE_DIR``, else
``$XDG_CACHE_HOME/edgelab/images`` or ``~/.cache/edgelab/images``). Its name carries a key made
of the split's file paths, their sizes and modification times and the image size: when a file
changes, or other settings pick other files (seed, ``max_per_class``), the key changes and the old
file of that dataset, split and size is removed. A per-image state file records which rows are
decoded, so an interrupted load resumes where it stopped.

:func:`~edgelab.data.datasets.load_dataset` (with ``verify``) decodes each image once: the scan's
check decodes it at model size (:class:`ScanDecoder`), the split files are filled from that pass,
and a small ``.scan1`` record of the files that failed lets a rescan of unchanged files skip decoding.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._files import write_atomic
from .._log import logger, tqdm
from ..errors import DecodeWorkerError
from .decoding import check_file, parallel_map, resolve, threaded, try_load, zero_byte
from .skips import SkippedFile
from .workers import decode_in_processes, use_processes

__all__ = ["CACHE_DIR_ENV", "ImageCache", "ScanDecoder", "cache_dir"]

#: Environment variable naming the folder of decoded-image caches.
CACHE_DIR_ENV = "EDGELAB_CACHE_DIR"

_VERSION = 1
_TODO, _OK, _FAILED = 0, 1, 2


def cache_dir() -> Path:
    """Where decoded-image caches go: ``EDGELAB_CACHE_DIR``, else the user's cache folder."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgelab" / "images"


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1  # decoding will fail and say why
    return st.st_size, st.st_mtime_ns


def _zero_byte(path: Path) -> tuple[None, SkippedFile] | None:
    """``(None, why)`` for an empty regular file (Pillow would call it "not an image")."""
    why = zero_byte(path)
    return None if why is None else (None, why)


class ImageCache:
    """The decoded pixels of ``paths`` at ``image_size``, in a memory-mapped file.

    Args:
        paths: The image files, in row order.
        image_size: ``(height, width)``.
        name: What the rows are (``"<dataset folder> train"``); files of the same name and size
            with another key are stale and are removed.
        folder: The cache folder (None: :func:`cache_dir`).
    """

    def __init__(
        self, paths: Sequence[Path], image_size: tuple[int, int], name: str, folder: str | os.PathLike | None = None
    ):
        self.paths = list(paths)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.folder = Path(folder) if folder is not None else cache_dir()
        digest = hashlib.sha256(f"v{_VERSION} {self.image_size}\n".encode())
        for p in self.paths:
            size, mtime = _stat(p)
            digest.update(f"{os.fsencode(p)!r} {size} {mtime}\n".encode())
        h, w = self.image_size
        self.prefix = f"{hashlib.sha256(name.encode()).hexdigest()[:16]}-{h}x{w}-"
        stem = self.prefix + digest.hexdigest()[:24]
        self.pixels_file = self.folder / f"{stem}.u8"
        self.state_file = self.folder / f"{stem}.state"
        self.meta_file = self.folder / f"{stem}.json"

    @property
    def nbytes(self) -> int:
        h, w = self.image_size
        return len(self.paths) * h * w * 3

    def _remove_stale(self) -> None:
        keep = {self.pixels_file.name, self.state_file.name, self.meta_file.name}
        for old in self.folder.glob(self.prefix + "*"):
            if old.name not in keep:
                try:
                    old.unlink()
                    logger.info("removed stale image cache %s", old)
                except OSError:
                    pass

    def _open(self, path: Path, nbytes: int, shape: tuple[int, ...]) -> tuple[np.memmap, bool]:
        """The file as a writable memory map, and whether it was kept as it was (else new or resized)."""
        with open(path, "ab") as f:  # create, or keep what an interrupted load wrote
            kept = f.tell() == nbytes
            if not kept:
                f.truncate(nbytes)
            # Reserve the blocks now: writing a sparse memory map on a full disk ends the process
            # with SIGBUS; reserved, a full disk is an OSError here (and the load falls back to memory).
            try:
                os.posix_fallocate(f.fileno(), 0, nbytes)
            except AttributeError:  # pragma: no cover - no posix_fallocate (macOS, Windows)
                pass
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):  # file system without it
                    pass
                else:
                    f.truncate(0)  # give the space back
                    raise OSError(exc.errno, exc.strerror, str(path)) from None
        return np.memmap(path, dtype=np.uint8, mode="r+", shape=shape), kept

    def load(
        self, desc: str = "loading images", progress: bool | None = None, max_pixels: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[SkippedFile]]:
        """Decode what is not cached yet; return ``(images, ok, failures)``.

        ``images`` is a read-only memory-mapped uint8 array ``(len(ok), H, W, 3)`` whose row ``j``
        is ``paths[ok[j]]``; ``failures`` says why the other files were left out.

        Raises:
            OSError: the cache folder cannot be written (callers fall back to memory).
        """
        h, w = self.image_size
        n = len(self.paths)
        shape = (n, h, w, 3)
        if n == 0:
            return np.zeros(shape, np.uint8), np.zeros(0, np.int64), []
        meta = self._read_meta()
        if meta is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._remove_stale()
            pixels, kept = self._open(self.pixels_file, self.nbytes, shape)
            state, _ = self._open(self.state_file, n, (n,))
            if not kept:  # no pixels to resume from, whatever the state file says
                state[:] = _TODO
            todo = np.flatnonzero(state != _OK)
            if len(todo) < n:
                logger.info(
                    "image cache %s: resuming, %d of %d images already decoded", self.pixels_file.name, n - len(todo), n
                )
            failures = self._decode(pixels, state, todo, desc, progress, max_pixels)
            ok = np.flatnonzero(state == _OK).astype(np.int64)
            if len(ok) < n:
                # Move the decoded rows together so that the split is one contiguous view. The
                # state is cleared first: a compaction cut short must not pass for finished rows.
                state[:] = _TODO
                state.flush()
                for row, src in enumerate(ok):
                    if row != src:
                        pixels[row] = pixels[src]
            pixels.flush()
            del pixels, state
            meta = {"version": _VERSION, "count": n, "ok": ok.tolist(), "failures": [f.to_dict() for f in failures]}
            write_atomic(self.meta_file, json.dumps(meta))
        ok = np.asarray(meta["ok"], dtype=np.int64)
        failures = [SkippedFile(Path(f["path"]), f["reason"], f["detail"]) for f in meta["failures"]]
        images = np.memmap(self.pixels_file, dtype=np.uint8, mode="r", shape=shape)[: len(ok)]
        return images, ok, failures

    def _read_meta(self) -> dict | None:
        """The finished cache's record, or None when the cache is missing or unfinished."""
        try:
            meta = json.loads(self.meta_file.read_text())
            if (
                meta.get("version") == _VERSION
                and meta.get("count") == len(self.paths)
                and self.pixels_file.stat().st_size == self.nbytes
            ):
                return meta
        except (OSError, ValueError, AttributeError):
            pass
        return None

    def _decode(
        self,
        pixels: np.memmap,
        state: np.memmap,
        todo: np.ndarray,
        desc: str,
        progress: bool | None,
        max_pixels: int | None,
    ) -> list[SkippedFile]:
        """Decode rows ``todo`` into ``pixels``: a large batch in worker processes and this thread
        (:mod:`edgelab.data.workers`), a small one on a few threads (Pillow releases the GIL)."""
        failures: dict[int, SkippedFile] = {}
        row_bytes = int(np.prod(pixels.shape[1:]))
        # Rows are written with pwrite, not through the memory map: decoding a large split adds
        # nothing to resident memory (the pages stay in the page cache, shared with the map).
        out = open(self.pixels_file, "r+b")  # noqa: SIM115 (closed below, after the threads)

        def note(i: int, bad: SkippedFile | None) -> None:
            if bad is not None:
                failures[i] = bad
                state[i] = _FAILED
            else:
                state[i] = _OK  # after the pixels: a row marked done is complete

        def one(i: int) -> None:
            image, bad = _zero_byte(self.paths[i]) or try_load(self.paths[i], self.image_size, max_pixels)
            if image is not None:
                os.pwrite(out.fileno(), image.tobytes(), i * row_bytes)
            note(i, bad)

        n = len(self.paths)
        rows = todo.tolist()
        method = "threads"
        try:
            with tqdm(total=n, initial=n - len(todo), desc=desc, unit="img", progress=progress) as bar:
                if use_processes(len(rows)):
                    method = "processes"

                    reported: set[int] = set()

                    def report(i: int, bad: SkippedFile | None) -> None:
                        note(i, bad)
                        reported.add(i)
                        bar.update()

                    def local(i: int) -> None:
                        one(i)
                        reported.add(i)
                        bar.update()

                    try:
                        decode_in_processes(
                            self.paths, rows, self.pixels_file, self.image_size, resolve(max_pixels), report, local
                        )
                        rows = []
                    except DecodeWorkerError as exc:
                        rows = [i for i in rows if i not in reported]
                        method = "processes, then threads"
                        logger.warning("%s; decoding the other %d images on threads", exc, len(rows))
                for _ in threaded(one, rows):
                    bar.update()
        finally:
            out.close()
        logger.info(
            "image cache %s: %d images decoded on %s",
            self.pixels_file.name,
            len(todo),
            method,
            extra={"decode_method": method},
        )
        return [failures[i] for i in sorted(failures)]


class ScanDecoder:
    """Decodes every image once, while the dataset is scanned, at model size, for the split caches.

    :func:`edgelab.data.scanning.scan` hands it the candidate files (:meth:`decode_all`); they are
    decoded into an :class:`ImageCache` of their own (memory-mapped, on every core, resumable
    after an interrupt), so a file that cannot be decoded is found, and reported, before the splits
    are drawn. Once the splits are known, :meth:`fill` copies each split's rows into its
    :class:`ImageCache` file, and :meth:`finish` keeps only the list of failures (a small record
    that lets the next scan of unchanged files skip decoding) and removes the pass's pixels. So the
    first load of a folder decodes each image exactly once, and a rerun decodes nothing.

    Args:
        folder: The cache folder.
        image_size: ``(height, width)`` the images are decoded at.
        name: What the images are (the dataset folder).
        max_pixels: Decoded-pixels budget per image (see :func:`edgelab.data.decoding.max_pixels`).

    Raises:
        OSError: the folder cannot be written (callers scan without it).
    """

    def __init__(
        self, folder: str | os.PathLike, image_size: tuple[int, int], name: str, max_pixels: int | None = None
    ):
        self.folder = Path(folder)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.name = f"{name} scan"
        self.max_pixels = max_pixels
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pool: ImageCache | None = None
        self._images: np.ndarray | None = None
        self._rows: dict[Path, int] = {}

    def _record(self, pool: ImageCache) -> Path:
        return pool.pixels_file.with_suffix(f".scan{_VERSION}")

    def decode_all(self, paths: Sequence[Path], progress: bool | None = None) -> list[SkippedFile | None]:
        """Per path, None when it decoded, else why not (from the record when nothing changed)."""
        pool = ImageCache(paths, self.image_size, f"{self.name} {resolve(self.max_pixels)}", folder=self.folder)
        self._pool = pool
        try:
            recorded = json.loads(self._record(pool).read_text())
            failures = [SkippedFile(Path(f["path"]), f["reason"], f["detail"]) for f in recorded["failures"]]
            logger.info("scan of %d images recorded in %s: not decoded again", len(paths), pool.folder)
        except (OSError, ValueError, KeyError, TypeError):
            try:
                images, ok, failures = pool.load("decoding images", progress, self.max_pixels)
            except OSError as exc:  # the folder cannot be written: check here, decode on first use
                logger.warning("cannot use the image cache in %s (%s); decoding after the scan", pool.folder, exc)
                return parallel_map(lambda p: check_file(p, True, self.max_pixels), paths, "checking images", progress)
            self._images = images
            self._rows = {pool.paths[i]: row for row, i in enumerate(ok.tolist())}
        why = {f.path: f for f in failures}
        return [why.get(p) for p in paths]

    def fill(self, cache: ImageCache) -> bool:
        """Write ``cache`` from this pass's rows (unless it is complete already).

        Returns False, leaving the cache to decode on first use, when a path was not decoded here.
        """
        if not cache.paths or cache._read_meta() is not None:
            return True
        images = self._images
        if images is None or cache.image_size != self.image_size or any(p not in self._rows for p in cache.paths):
            return False
        cache._remove_stale()
        n = len(cache.paths)
        with open(cache.state_file, "wb") as state:
            state.write(bytes(n))  # every row still to do until the pixels are written
        # Row by row with pread/pwrite, not through memory maps: the copy adds nothing to resident memory.
        row_bytes = int(np.prod(images.shape[1:]))
        with open(self._pool.pixels_file, "rb") as src, open(cache.pixels_file, "wb") as dst:  # type: ignore[union-attr]
            dst.truncate(cache.nbytes)
            for j, path in enumerate(cache.paths):
                os.pwrite(dst.fileno(), os.pread(src.fileno(), row_bytes, self._rows[path] * row_bytes), j * row_bytes)
        with open(cache.state_file, "r+b") as state:
            state.write(bytes([_OK]) * n)
        meta = {"version": _VERSION, "count": n, "ok": list(range(n)), "failures": []}
        write_atomic(cache.meta_file, json.dumps(meta))
        return True

    def finish(self) -> None:
        """Keep the record of failures; remove this pass's pixels (the split caches hold them now)."""
        pool = self._pool
        if pool is None or self._images is None:
            return
        meta = pool._read_meta()
        self._images = None
        self._rows = {}
        if meta is None:
            return
        write_atomic(self._record(pool), json.dumps({"failures": meta["failures"]}))
        for path in (pool.pixels_file, pool.state_file, pool.meta_file):
            path.unlink(missing_ok=True)


class MemoryScanDecoder:
    """:class:`ScanDecoder` for a dataset kept in memory (``load_dataset(..., cache_dir=False)``).

    The scan decodes each image once, at model size, into one array (on every core, like
    :class:`ImageCache`); :meth:`take` then hands out each split's rows. The splits' rows are moved
    into place inside that array, so the splits are views of it and no image is held twice: memory
    is the usable images' pixels, as when each split decoded its own files. Only when many rows
    are left unused (``max_per_class``) are the used ones copied out, so the rest can be freed.
    """

    def __init__(self, image_size: tuple[int, int], max_pixels: int | None = None):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.max_pixels = max_pixels
        self._images: np.ndarray | None = None
        self._rows: dict[Path, int] = {}

    def decode_all(self, paths: Sequence[Path], progress: bool | None = None) -> list[SkippedFile | None]:
        """Per path, None when it decoded, else why not."""
        h, w = self.image_size
        images = np.empty((len(paths), h, w, 3), np.uint8)

        def one(i: int) -> SkippedFile | None:
            image, bad = _zero_byte(paths[i]) or try_load(paths[i], (h, w), self.max_pixels)
            if image is not None:
                images[i] = image
            return bad

        failures = parallel_map(one, range(len(paths)), "decoding images", progress)
        self._images = images
        self._rows = {Path(p): i for i, (p, bad) in enumerate(zip(paths, failures)) if bad is None}
        return failures

    def take(self, parts: Sequence[Sequence[Path]]) -> list[np.ndarray] | None:
        """The pixels of each list of paths, in order (None when a path was not decoded here)."""
        images = self._images
        if images is None or any(Path(p) not in self._rows for part in parts for p in part):
            return None
        order = [self._rows[Path(p)] for part in parts for p in part]
        used = len(order)
        if len(set(order)) != used:  # a file in two splits: a copy each
            return [images[[self._rows[Path(p)] for p in part]] for part in parts]
        rest = sorted(set(range(len(images))) - set(order))
        _permute_rows(images, np.asarray(order + rest, dtype=np.int64))
        if len(rest) > len(images) // 8:  # mostly unused rows: keep only the used ones
            images = images[:used].copy()
        self._images, self._rows = None, {}
        bounds = np.cumsum([0, *(len(part) for part in parts)])
        return [images[a:b] for a, b in itertools.pairwise(bounds)]


def _permute_rows(images: np.ndarray, perm: np.ndarray) -> None:
    """``images[k] = old images[perm[k]]`` for every k, in place (one row of extra memory)."""
    done = np.zeros(len(perm), dtype=bool)
    spare = np.empty_like(images[0]) if len(images) else None
    for start in range(len(perm)):
        if done[start]:
            continue
        done[start] = True
        if perm[start] == start:
            continue
        spare[...] = images[start]  # type: ignore[index]
        k = start
        while perm[k] != start:
            images[k] = images[perm[k]]
            k = int(perm[k])
            done[k] = True
        images[k] = spare
