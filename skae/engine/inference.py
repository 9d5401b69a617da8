"""Inference in large chunks under ``torch.inference_mode``."""

import copy

import torch

__all__ = ["apply_in_chunks", "chunk_rows_for", "with_dtype"]

# About 16 MB of float32 input per chunk: large enough that per-call overhead
# vanishes, small enough that activations of wide networks stay bounded.
_ELEMENTS_PER_CHUNK = 1 << 22


def chunk_rows_for(n_features):
    """Rows per inference chunk for inputs of ``n_features`` columns."""
    return max(1, _ELEMENTS_PER_CHUNK // max(1, n_features))


def with_dtype(model, dtype):
    """``model`` itself if its parameters already have ``dtype``, else a converted copy.

    The copy leaves the fitted model untouched, so concurrent callers never see
    a half-converted network.
    """
    parameter = next(model.parameters(), None)
    if parameter is None or parameter.dtype == dtype:
        return model
    return copy.deepcopy(model).to(dtype)


def apply_in_chunks(fn, X, device, chunk_rows):
    """Apply ``fn`` to row chunks of ``X`` on ``device``; gather the results on the CPU.

    Parameters
    ----------
    fn : callable
        Maps a ``(m, ...)`` tensor to a tensor or a tuple of tensors whose first
        dimension is ``m``.
    X : torch.Tensor
        Input rows, on any device.
    device : torch.device
        Where ``fn`` runs.
    chunk_rows : int
        Rows per call of ``fn``.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        On the CPU, rows in the order of ``X``.
    """
    pieces = []
    with torch.inference_mode():
        for start in range(0, X.shape[0], chunk_rows):
            out = fn(X[start : start + chunk_rows].to(device, non_blocking=True))
            out = out if isinstance(out, tuple) else (out,)
            pieces.append(tuple(part.cpu() for part in out))
    if not pieces:
        raise ValueError("apply_in_chunks needs at least one row")
    joined = tuple(
        parts[0] if len(parts) == 1 else torch.cat(parts) for parts in zip(*pieces)
    )
    return joined if len(joined) > 1 else joined[0]
