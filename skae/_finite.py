"""Guards that keep NaN and infinity out of what a fitted model returns.

Training stops at the first non-finite epoch loss (see :mod:`skae.engine.trainer`),
but the weights kept from the last finite epoch can still map some inputs to
infinity, and inputs far outside the training range can overflow float32 at
inference time. These helpers find such results so the estimator can recompute
them in float64 or raise a clear error instead of returning NaN silently.
"""

import math

import torch

__all__ = ["all_finite", "check_finite_output"]


def all_finite(result):
    """Whether a tensor, or every tensor of a tuple, holds only finite values."""
    parts = result if isinstance(result, tuple) else (result,)
    # A finite sum means finite entries (NaN and infinity propagate into it), and
    # one reduction is cheaper than isfinite's full-size mask. Only a sum that
    # overflowed, or real NaN or infinity, needs the entry-by-entry check.
    return all(math.isfinite(part.sum().item()) or bool(torch.isfinite(part).all()) for part in parts)


def check_finite_output(result, method, X):
    """Raise a ValueError naming the rows where ``method`` gave NaN or infinity.

    Parameters
    ----------
    result : torch.Tensor or tuple of torch.Tensor
        The output of ``method`` on ``X``, rows first.
    method : str
        Name of the public method, for the message.
    X : ndarray or None
        Its input (None for :meth:`sample`, which has no input rows).
    """
    parts = result if isinstance(result, tuple) else (result,)
    bad = torch.zeros(parts[0].shape[0], dtype=torch.bool)
    for part in parts:
        bad |= ~torch.isfinite(part.reshape(part.shape[0], -1)).all(dim=1)
    if not bool(bad.any()):
        return
    rows = torch.nonzero(bad).flatten()
    where = f"{len(rows)} of {bad.shape[0]} rows (the first is row {int(rows[0])})"
    if X is None:
        raise ValueError(
            f"{method} produced NaN or infinite values for {where}: the fitted model is "
            "numerically broken, which happens when training diverged. Refit with a lower "
            "learning_rate_init or scaled data."
        )
    # max(-min, max) works on sparse X too, without densifying it.
    largest = max(-float(X.min()), float(X.max())) if X.size else 0.0
    raise ValueError(
        f"{method} produced NaN or infinite values for {where}. Either the input lies far "
        "outside the range the model was trained on or overflows floating point (its "
        f"largest magnitude is {largest:.3g}; pass data scaled as the training data was), "
        "or the fitted model is numerically broken (refit with a lower learning_rate_init)."
    )
