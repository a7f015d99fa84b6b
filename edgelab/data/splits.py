"""Split arithmetic: seeded stratified train/val/test splits, per-class caps and class-balanced picks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, check_int, check_number

__all__ = ["SPLITS", "balanced_indices", "stratified_split"]

SPLITS = ("train", "val", "test")


def check_fractions(val_fraction: object, test_fraction: object) -> tuple[float, float]:
    val = check_number("val_fraction", val_fraction, minimum=0, maximum=1, max_open=True)
    test = check_number("test_fraction", test_fraction, minimum=0, maximum=1, max_open=True)
    if val + test >= 1:
        raise ConfigError(
            "Expected val_fraction + test_fraction < 1 (something must be left to train on). "
            f"Received: val_fraction={val_fraction!r}, test_fraction={test_fraction!r}"
        )
    return val, test


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))


def balanced_indices(labels: Sequence[int] | np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` indices in which the classes take turns (seeded random order within each class).

    Every class is equally represented unless it has fewer images than its share; used for
    calibration sets, where a class the converter never sees gets poor quantization ranges.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    queues = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(int(q.pop(0)))
    return np.asarray(picked, dtype=np.int64)


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded, stratified train/val/test split of sample indices.

    Each class is shuffled with its own random stream (from ``seed`` and the label), so a class's
    split does not change when other classes are added. Per class, ``round(n * fraction)`` samples
    (at least one when the fraction is above 0) go to test and to val, but at least one sample
    always stays in train: a class of two gives one to train and one to test.

    Returns:
        ``(train, val, test)``: sorted int64 index arrays, disjoint, covering every sample.
    """
    val_fraction, test_fraction = check_fractions(val_fraction, test_fraction)
    seed = check_int("seed", seed, minimum=0)
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ConfigError(
            f"Expected labels to be a 1-D array of ints. Received: shape={labels.shape}, dtype={labels.dtype}"
        )
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = np.random.default_rng([seed, int(c) & 0xFFFFFFFF]).permutation(idx)
        n = len(idx)
        # A split that was asked for gets at least one sample, while one is left to train on
        # (test before val when a class is too small for both).
        n_test = max(_round_half_up(n * test_fraction), int(test_fraction > 0))
        n_val = max(_round_half_up(n * val_fraction), int(val_fraction > 0))
        while n_test + n_val >= n and (n_test or n_val):
            if n_val >= n_test:
                n_val -= 1
            else:
                n_test -= 1
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return tuple(  # type: ignore[return-value]
        np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts
    )


def cap_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random subset with at most ``max_per_class`` per class (sorted)."""
    if max_per_class is None:
        return np.arange(len(labels), dtype=np.int64)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) > max_per_class:
            idx = np.random.default_rng([seed, int(c), 1]).choice(idx, max_per_class, replace=False)
        keep.append(idx)
    return np.sort(np.concatenate(keep)).astype(np.int64) if keep else np.zeros(0, np.int64)
