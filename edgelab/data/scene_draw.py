"""The scene worker's entry point: a fresh interpreter started by :mod:`edgelab.data.scene_workers`.

Kept apart from that module so the import graph stays one-way: ``scenes`` starts workers through
``scene_workers``, and the worker (this module) draws with ``scenes``.
"""

from __future__ import annotations

import json
import os
import sys

from .scenes import draw_range


def main() -> None:
    """A worker: draws the images its job (the last argument, JSON) names into the job's file."""
    job = json.loads(sys.argv[-1])
    images = draw_range(job["seed"], tuple(job["classes"]), tuple(job["size"]), job["shift"], job["start"], job["stop"])
    with open(job["out"], "wb") as out:
        out.write(images.tobytes())
    if os.getppid() != job.get("parent", os.getppid()):  # the parent is gone: nobody reads or removes it
        os.unlink(job["out"])


if __name__ == "__main__":
    main()
