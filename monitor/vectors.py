"""Sentence vectors as stored: the direction of the encoder's mean-pooled vector, int8.

Only the direction matters (themes compare vectors by cosine), so each vector is scaled
to its largest component = 127 and rounded: ``DIM`` bytes a mention (384 for the shipped
MiniLM), cosine to the float32 vector above 0.9999. ``unpack`` gives unit float32 rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DTYPE = np.int8


def pack(vectors: np.ndarray) -> list[bytes]:
    """(n, dim) float vectors -> n int8 blobs (a zero vector stays zeros)."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"expected a 2-d array of vectors, got shape {v.shape}")
    scale = np.abs(v).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(v / scale * 127.0), -127, 127).astype(DTYPE)
    return [row.tobytes() for row in q]


def unpack(blobs: Sequence[bytes], dim: int | None = None) -> np.ndarray:
    """Blobs of one model (all the same length) -> (n, dim) unit float32 rows; a blob of
    another length than the first (or ``dim``) is a ValueError."""
    if not blobs:
        return np.zeros((0, dim or 0), dtype=np.float32)
    width = dim or len(blobs[0])
    if any(len(b) != width for b in blobs):
        raise ValueError("vectors of different sizes: they come from different models")
    q = np.frombuffer(b"".join(blobs), dtype=DTYPE).reshape(len(blobs), width).astype(np.float32)
    return normalise(q)


def normalise(v: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (v / norms).astype(np.float32, copy=False)
