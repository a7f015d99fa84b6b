"""``tf.data`` input pipelines over uint8 images held in numpy arrays or memory-mapped caches.

Batches are gathered by index inside the pipeline, so only a batch at a time is copied out of the
(possibly memory-mapped) images, and pixels stay uint8 until :func:`tf_normalize` turns a batch into
the model's float input. TensorFlow is imported only when a pipeline is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import check_int
from ..preprocess import EDGELAB_RANGE, INPUT_MEAN, INPUT_STD, InputRange

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = ["array_batches", "tf_normalize"]


def tf_normalize(images: tf.Tensor) -> tf.Tensor:
    """:func:`edgelab.preprocess.normalize` as TensorFlow ops (uint8 batch -> float32 in [-1, 1])."""
    # deferred: TensorFlow (the arrays of a Dataset need no tf.data)
    from .._keras import tf

    return (tf.cast(images, tf.float32) - INPUT_MEAN) / INPUT_STD


def array_batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    normalized: bool = True,
    prefetch: bool = True,
    input_range: InputRange | None = None,
) -> tf.data.Dataset:
    """Batches ``(images, labels)`` of uint8 ``images`` (N, H, W, 3), read by index.

    Args:
        images: uint8 pixels; a ``np.memmap`` is read a batch at a time, never copied whole.
        labels: int labels (N,).
        batch_size: Images per batch (the last batch may be smaller).
        shuffle: Seeded shuffle of the order, reshuffled each epoch.
        seed: Shuffle seed.
        normalized: float32 images in the model's input range; False keeps uint8.
        prefetch: Prepare the next batches while the current one is used.
        input_range: The range a model takes (:func:`edgelab.preprocess.model_input_range`);
            None: edgelab's own [-1, 1].
    """
    # deferred: TensorFlow (the arrays of a Dataset need no tf.data)
    from .._keras import tf

    batch_size = check_int("batch_size", batch_size)
    seed = check_int("seed", seed, minimum=0)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    h, w = images.shape[1:3]
    order = tf.data.Dataset.range(n)
    if shuffle:
        order = order.shuffle(max(1, n), seed=seed, reshuffle_each_iteration=True)

    def gather(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Sorted reads are sequential in a memory-mapped file; the pairing is kept.
        index = np.asarray(index)
        return np.ascontiguousarray(images[index]), labels[index]

    @tf.autograph.experimental.do_not_convert  # plain tensor code: nothing to convert
    def load(index):
        x, y = tf.numpy_function(gather, [index], (tf.uint8, tf.int64), stateful=False)
        x = tf.ensure_shape(x, (None, h, w, 3))
        y = tf.ensure_shape(y, (None,))
        if not normalized:
            return x, y
        if input_range is None or input_range == EDGELAB_RANGE:
            return tf_normalize(x), y
        return tf.cast(x, tf.float32) * np.float32(input_range.scale) + np.float32(input_range.low), y

    ds = order.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds
