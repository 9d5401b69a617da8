"""scipy.sparse input: the statistics and row sources the estimators need, never densified.

``validate_data`` hands sparse input over as CSR or CSC. These helpers compute
what fitting needs from the whole matrix (its range, per-feature mean and
spread) from the stored entries alone, and wrap it as a
:class:`skae.engine.batches.SparseRows`, which densifies one batch of rows at a
time on the device.
"""

import numpy as np
import scipy.sparse as sp
import torch

from .engine.batches import SparseRows

__all__ = ["ACCEPTED_FORMATS", "canonical_csr", "location_and_scale", "sparse_rows", "value_range"]

# What validate_data may hand over; other formats (COO, LIL, ...) are converted to CSR.
ACCEPTED_FORMATS = ("csr", "csc")


def canonical_csr(X):
    """``X`` as CSR with sorted, unique entries per row; a copy only where needed."""
    X = X.tocsr()  # no copy for CSR input
    if not X.has_canonical_format:
        # has_canonical_format is False for both duplicates and unsorted
        # indices; work on a copy so the caller's matrix is never changed.
        X = X.copy()
        X.sum_duplicates()
    return X


def value_range(X):
    """``(min, max)`` over all entries of sparse ``X``, implicit zeros included."""
    if X.shape[0] == 0 or X.shape[1] == 0:
        return 0.0, 0.0
    return float(X.min()), float(X.max())


def location_and_scale(X):
    """Per-feature mean and one overall standard deviation (1 for constant data).

    The same statistics as :func:`skae._base._location_and_scale`, from the
    stored entries only: each stored value contributes ``(x - mean)**2`` and
    each implicit zero ``mean**2``.
    """
    X = canonical_csr(X)
    n_rows, n_features = X.shape
    values = X.data.astype(np.float64)
    # bincount of no entries is an integer array: cast so the updates below stay float.
    mean = np.bincount(X.indices, weights=values, minlength=n_features) / n_rows
    squares = np.bincount(
        X.indices, weights=(values - mean[X.indices]) ** 2, minlength=n_features
    ).astype(np.float64)
    stored = np.bincount(X.indices, minlength=n_features)
    squares += (n_rows - stored) * mean**2
    spread = float(np.sqrt((squares / n_rows).mean()))
    return mean, spread if spread > 0 and np.isfinite(spread) else 1.0


def sparse_rows(X, device, dtype):
    """``X`` as :class:`SparseRows` on ``device`` with values of torch ``dtype``.

    Costs memory for the non-zeros only (int64 indices, values in ``dtype``).
    """
    X = canonical_csr(X)
    return SparseRows(
        torch.from_numpy(X.indptr.astype(np.int64, copy=False)).to(device),
        torch.from_numpy(X.indices.astype(np.int64, copy=False)).to(device),
        torch.from_numpy(X.data).to(device=device, dtype=dtype),
        X.shape[1],
    )


def issparse(X):
    """Whether ``X`` is a scipy sparse matrix or array."""
    return sp.issparse(X)
