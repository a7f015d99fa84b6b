"""Drawing synthetic scenes in a second process, so a large set uses two cores.

Each scene comes from its own random stream (:func:`edgelab.data.scenes.image_rng`), so a range of
images drawn anywhere is byte-identical to the same range drawn in order. :func:`draw_in_background`
starts one fresh ``python -c`` worker (like :mod:`edgelab.data.workers`: no ``multiprocessing``, which
would import the caller's main script again) that draws the tail of the set into a temporary file
while the caller draws the head; :meth:`Background.collect` reads it back. A worker that fails or is
missing is no error: the caller draws those images itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .._log import logger
from .workers import worker_command

__all__ = ["MIN_IMAGES", "Background", "draw_in_background", "use_background"]

#: Fewest scenes drawn with a second process. A scene at 96 px takes ~2 ms; the worker costs
#: ~0.3 CPU seconds to start (a fresh interpreter importing numpy and Pillow): 150 scenes' worth.
MIN_IMAGES = 600


def use_background(count: int) -> bool:
    """Whether ``count`` scenes are drawn with a second process on this machine."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return count >= MIN_IMAGES and cpus >= 2 and bool(sys.executable)


class Background:
    """A worker drawing images ``start:stop`` of a set into ``path``."""

    def __init__(self, proc: subprocess.Popen | None, path: Path, start: int, stop: int, shape: tuple[int, ...]):
        self.proc, self.path, self.start, self.stop, self.shape = proc, path, start, stop, shape

    def collect(self) -> np.ndarray | None:
        """The worker's images ``(stop - start, H, W, 3)``, or None when it failed (then draw them here)."""
        try:
            if self.proc is None or self.proc.wait() != 0:
                return None
            pixels = np.fromfile(self.path, dtype=np.uint8)
            count = self.stop - self.start
            if pixels.size != count * int(np.prod(self.shape)):
                return None
            return pixels.reshape(count, *self.shape)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker if it still runs and remove its file."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.path.unlink()


def draw_in_background(job: dict, start: int, stop: int, shape: tuple[int, ...]) -> Background:
    """Start a worker drawing images ``start:stop`` of the set ``job`` describes
    (``per_class``-free: ``seed``, ``classes``, ``size``, ``shift``)."""
    fd, name = tempfile.mkstemp(prefix="edgelab-scenes-", suffix=".u8")
    os.close(fd)
    path = Path(name)
    try:
        proc = subprocess.Popen(
            [
                *worker_command("edgelab.data.scene_draw"),
                json.dumps({**job, "start": start, "stop": stop, "out": name, "parent": os.getpid()}),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops the worker
        )
    except OSError as exc:
        logger.debug("no scene worker (%s): drawing every scene here", exc)
        proc = None
    return Background(proc, path, start, stop, shape)
