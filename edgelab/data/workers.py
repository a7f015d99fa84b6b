"""Decoding a large batch of images in worker processes, straight into a cache's pixel file.

Pillow releases the GIL while it decodes and resizes, but the Python around each small image (the
file checks, the EXIF lookup, the mode conversion) holds it, so threads keep well under two cores
busy on small JPEGs. Above :data:`PROCESS_MIN_IMAGES` images the decoded-image cache
(:class:`edgelab.data.cache.ImageCache`) hands its rows to :data:`edgelab.data.decoding.WORKERS`
worker processes instead: each decodes with :func:`edgelab.data.decoding.try_load` (the same
function, so the same bytes and the same reasons for a skipped file), writes the pixels into the
pixel file itself (``pwrite`` at the row's offset) and sends back one short line per file. The
parent marks a row done only after that line, so an interrupted run leaves rows that are either
complete or still to do.

A worker is a fresh ``python -m edgelab.data.workers`` (not a ``multiprocessing`` child: those
import the parent's main script again, which a script without an ``if __name__ == "__main__"``
guard, or one that imports TensorFlow at the top, cannot afford). It imports numpy, Pillow and
:mod:`edgelab.data.decoding` only. Workers run in their own session, so a Ctrl-C reaches only the
parent, which stops them; a worker whose parent has gone stops at its next line (a closed pipe).
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import site
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

from ..errors import DecodeWorkerError
from .decoding import WORKERS, try_load, zero_byte
from .skips import SkippedFile

__all__ = ["PROCESS_MIN_IMAGES", "decode_in_processes", "start_worker", "use_processes", "worker_command"]

#: Fewest images a load decodes in worker processes; fewer go to threads. Starting a worker costs
#: 0.2-0.4 CPU seconds (a fresh interpreter importing numpy and Pillow). Measured on a shared 2-core
#: machine (load average 4.4-8; 150x150 JPEGs decoded at 96x96; the same folder, threads and
#: processes alternating, ``benchmarks/bench.py --decode-only --decode-method``): threads as fast or
#: faster up to 1,000 images, processes faster in 4 of 5 runs at 2,000 and 4,000 (up to 37% more
#: images/s). The crossover lies between: processes start at 1,500.
PROCESS_MIN_IMAGES = 1500

#: Files per message to a worker; two messages are in flight per worker, so none waits for work.
CHUNK = 16


def use_processes(count: int) -> bool:
    """Whether :func:`decode_in_processes` is used for ``count`` images on this machine."""
    return count >= PROCESS_MIN_IMAGES and WORKERS >= 2 and bool(sys.executable) and hasattr(os, "pwrite")


def _package_root() -> str | None:
    """The folder holding the ``edgelab`` package, when a fresh interpreter would not find it by
    itself (a notebook that put a checkout on ``sys.path``); None otherwise."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    defaults = {*site.getsitepackages(), site.getusersitepackages()}
    return None if any(os.path.realpath(d) == os.path.realpath(root) for d in defaults) else root


def worker_command(module: str = "edgelab.data.workers") -> list[str]:
    """The command line of one worker process running ``module``'s ``main()`` (this interpreter;
    edgelab from where this one has it)."""
    root = _package_root()
    # -c instead of -m: the package root goes on sys.path before edgelab is imported.
    code = f"import sys\nif sys.argv[1]: sys.path.insert(0, sys.argv[1])\nfrom {module} import main\nmain()"
    return [sys.executable, "-c", code, root or ""]


def start_worker(header: bytes, errors: IO[bytes]) -> subprocess.Popen:
    """One worker process (:func:`worker_command`) in its own session, sent the job's ``header``;
    its stderr goes to ``errors``."""
    proc = subprocess.Popen(
        worker_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        bufsize=0,
        start_new_session=True,  # Ctrl-C in a terminal reaches the parent only; it stops the workers
    )
    _send(proc, header)
    return proc


def _send(proc: subprocess.Popen, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(proc.stdin.fileno(), view) :]  # type: ignore[union-attr]


def _stop(procs: Sequence[subprocess.Popen]) -> None:
    """Close every worker's input and end any still running; waits for all of them (no orphans)."""
    for proc in procs:
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        if proc.poll() is None:
            proc.kill()  # a row it was writing is not marked done: it is decoded again next time
    for proc in procs:
        proc.wait()
        with contextlib.suppress(OSError):
            proc.stdout.close()  # type: ignore[union-attr]


def _tail(errors: IO[bytes], limit: int = 2000) -> str:
    errors.flush()
    errors.seek(0)
    text = errors.read().decode(errors="replace").strip()
    return text[-limit:] or "no message"


def _header(pixels_file: Path, image_size: tuple[int, int], max_pixels: int) -> bytes:
    job = {"pixels_file": os.fspath(pixels_file), "size": [int(v) for v in image_size], "max_pixels": int(max_pixels)}
    return json.dumps(job).encode() + b"\n"


def decode_in_processes(
    paths: Sequence[Path],
    rows: Sequence[int],
    pixels_file: Path,
    image_size: tuple[int, int],
    max_pixels: int,
    on_row: Callable[[int, SkippedFile | None], None],
    local: Callable[[int], None] | None,
    processes: int = max(1, WORKERS - 1),
) -> None:
    """Decode ``paths[i]`` for each ``i`` in ``rows`` into row ``i`` of ``pixels_file`` (uint8,
    ``image_size`` x 3 per row): ``processes`` worker processes, and this thread too.

    This thread decodes rows itself with ``local(i)`` (unless None) from the start, and hands rows to each
    worker once it has started (so the workers' start-up costs no wall time), a few files at a
    time as it asks; a worker that starts after the last row was taken is stopped unused.
    ``on_row(i, None)`` is called (in this thread) once a worker has written row ``i``'s pixels,
    and ``on_row(i, why)`` for a file it could not use.

    Raises:
        DecodeWorkerError: a worker failed; rows not yet passed to ``on_row`` or ``local`` were not decoded.
    """
    queue = deque(int(i) for i in rows)
    header = _header(pixels_file, image_size, max_pixels)
    procs: list[subprocess.Popen] = []
    pending: dict[int, int] = {}  # rows sent to each worker and not reported yet, by worker pid
    ready: dict[int, bool] = {}  # whether each worker has started (imported what it decodes with)
    with tempfile.TemporaryFile() as errors, selectors.DefaultSelector() as selector:

        def failed(what: str) -> DecodeWorkerError:
            return DecodeWorkerError(f"{what}: {_tail(errors)}")

        def feed(proc: subprocess.Popen) -> None:
            chunk = [queue.popleft() for _ in range(min(CHUNK, len(queue)))]
            try:
                if chunk:
                    _send(proc, json.dumps([[i, os.fspath(paths[i])] for i in chunk]).encode() + b"\n")
                elif pending[proc.pid] == 0:
                    proc.stdin.close()  # type: ignore[union-attr]  # nothing left: the worker ends
            except OSError as exc:
                raise failed(f"a decoding worker stopped taking work ({exc})") from None
            pending[proc.pid] += len(chunk)

        def replies(key: selectors.SelectorKey) -> None:
            proc, buffer = key.data
            data = os.read(key.fd, 1 << 16)
            if not data:  # the worker ended
                selector.unregister(key.fileobj)
                if proc.wait() != 0 or pending[proc.pid] or buffer:
                    raise failed(f"a decoding worker stopped (exit code {proc.returncode})")
                return
            buffer += data
            *lines, rest = buffer.split(b"\n")
            buffer[:] = rest
            for line in lines:
                try:
                    message = json.loads(line)
                    if message == {"ready": True}:  # imports done: work from now on
                        ready[proc.pid] = True
                        feed(proc)
                        feed(proc)
                        continue
                    if isinstance(message, dict):
                        raise DecodeWorkerError(f"a decoding worker failed: {message.get('error')}")
                    row = int(message[0])
                    why = None if len(message) == 1 else SkippedFile(paths[row], str(message[1]), str(message[2]))
                except (ValueError, TypeError, IndexError, KeyError) as exc:
                    raise failed(f"a decoding worker sent {bytes(line)[:200]!r} ({exc})") from None
                pending[proc.pid] -= 1
                on_row(row, why)
            if ready[proc.pid] and pending[proc.pid] <= CHUNK:
                feed(proc)

        try:
            for _ in range(processes):
                try:
                    proc = start_worker(header, errors)
                except OSError as exc:
                    raise failed(f"cannot start a decoding worker ({exc})") from None
                procs.append(proc)
                pending[proc.pid], ready[proc.pid] = 0, False
                selector.register(proc.stdout, selectors.EVENT_READ, (proc, bytearray()))  # type: ignore[arg-type]
            while queue or any(pending.values()):  # then workers still starting are stopped unused
                for key, _ in selector.select(timeout=0 if queue and local else None):
                    replies(key)
                if queue and local:
                    local(queue.pop())  # this thread works from the other end of the queue
        finally:
            _stop(procs)


def _decode_rows(header: dict, lines: Iterator[bytes], reply: Callable[[list], None]) -> None:
    height, width = (int(v) for v in header["size"])
    limit = int(header["max_pixels"])
    row_bytes = height * width * 3
    fd = os.open(header["pixels_file"], os.O_RDWR)
    try:
        for line in lines:
            for row, name in json.loads(line):
                path = Path(name)
                bad = zero_byte(path)
                image = None
                if bad is None:
                    image, bad = try_load(path, (height, width), limit)
                if image is not None:
                    os.pwrite(fd, image.tobytes(), row * row_bytes)
                    reply([row])
                else:
                    reply([row, bad.reason, bad.detail])  # type: ignore[union-attr]
    finally:
        os.close(fd)


def main() -> None:
    """A worker: says ``{"ready": true}`` once imported, then reads a header line and lines of
    ``[[row, path], ...]`` on stdin and replies one line per file on stdout (``[row]`` done,
    ``[row, reason, detail]`` skipped, ``{"error": ...}`` failed) until its input ends."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the replies

    def reply(message: object) -> None:
        out.write(json.dumps(message).encode() + b"\n")

    try:
        reply({"ready": True})
        lines = iter(sys.stdin.buffer)
        header = json.loads(next(lines, b"null"))
        if header is None:
            return
        try:
            _decode_rows(header, lines, reply)
        except BrokenPipeError:
            raise
        except (OSError, ValueError, MemoryError) as exc:
            reply({"error": f"{type(exc).__name__}: {exc}"})
            sys.exit(1)
    except (BrokenPipeError, KeyboardInterrupt):  # the parent stopped: so does the worker, quietly
        os._exit(0)


if __name__ == "__main__":
    main()
