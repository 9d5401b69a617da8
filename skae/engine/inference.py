"""Inference in large chunks under ``torch.inference_mode``."""

import copy

import torch

from .chain import SPLIT, operations
from .networks import _LOG_VAR_MAX, _LOG_VAR_MIN

__all__ = ["apply_in_chunks", "chunk_rows_for", "lean_forward", "sum_in_chunks", "with_dtype"]

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
    n_rows = X.shape[0]
    if n_rows == 0:
        raise ValueError("apply_in_chunks needs at least one row")
    joined = None
    with torch.inference_mode():
        for start in range(0, n_rows, chunk_rows):
            out = fn(X[start : start + chunk_rows].to(device, non_blocking=True))
            single = not isinstance(out, tuple)
            out = (out,) if single else out
            if n_rows <= chunk_rows:  # one chunk: nothing to gather
                joined = tuple(part.cpu() for part in out)
                break
            if joined is None:
                joined = _gathering_buffers(out, n_rows)
            for whole, part in zip(joined, out):
                whole[start : start + part.shape[0]].copy_(part)
            del out, part  # before the next chunk (see _gathering_buffers)
    return joined[0] if single else joined


def _gathering_buffers(first_out, n_rows):
    # The results are written into buffers allocated once, before the next
    # chunk, rather than kept per chunk and concatenated at the end: each kept
    # piece is a small allocation that outlives its chunk, and glibc malloc
    # places such pieces in the holes the chunk's freed blocks of ~16 MB leave,
    # so the next chunk's blocks no longer fit there and the heap grows by about
    # a block per chunk (measured: up to 1.6 GiB over the 96 chunks of a
    # 200,000 x 2,000 input, in one thread as in two).
    with torch.inference_mode(False):  # ordinary tensors, as torch.cat returned
        return tuple(torch.empty((n_rows, *part.shape[1:]), dtype=part.dtype, device="cpu") for part in first_out)


def sum_in_chunks(fn, X, device, chunk_rows):
    """Sum of ``fn`` over row chunks of ``X`` on ``device``, as a Python float.

    Parameters
    ----------
    fn : callable
        Maps a ``(m, ...)`` tensor to a 0-d tensor.
    X : torch.Tensor
        Input rows, on any device.
    device : torch.device
        Where ``fn`` runs.
    chunk_rows : int
        Rows per call of ``fn``.

    Returns
    -------
    float
        The per-chunk values, summed once all are known.
    """
    n_chunks = -(-X.shape[0] // chunk_rows)
    values = None
    with torch.inference_mode():
        for index in range(n_chunks):
            start = index * chunk_rows
            value = fn(X[start : start + chunk_rows].to(device, non_blocking=True))
            if values is None:
                values = torch.empty(n_chunks, dtype=value.dtype, device="cpu")
            values[index] = value
            del value  # nothing outlives its chunk (see _gathering_buffers)
    if values is None:
        raise ValueError("sum_in_chunks needs at least one row")
    return float(values.sum())


def lean_forward(network):
    """``network``'s forward pass for inference, with fewer passes over memory.

    For a plain MLP (see :func:`skae.engine.chain.operations`) a
    ``Standardize`` followed by a ``Linear`` layer is folded into that layer's
    weights, and each activation overwrites the fresh output of the layer
    before it instead of allocating another. Returns None for other networks.
    The weights are read now: build it again after they change. Gradients do
    not flow through the result.
    """
    chain = operations(network, split_allowed=True)
    if chain is None:
        return None
    split = bool(chain) and chain[-1] is SPLIT
    if split:
        chain = chain[:-1]
    steps = []
    with torch.no_grad():
        for op in chain:
            previous = steps[-1] if steps else None
            if getattr(previous, "standardize", None) is not None and _has_bias(op):
                steps[-1] = _folded_linear(op, *previous.standardize)
            else:
                steps.append(op)

    def run(x):
        owned = False  # whether the current tensor is ours to overwrite
        for step in steps:
            if hasattr(step, "weight"):  # a matrix product: always a fresh tensor
                x, owned = step.infer(x), True
            else:
                y = step.infer(x, owned)
                owned = owned or y is not x
                x = y
        if split:
            mean, log_var = x.chunk(2, dim=-1)
            return mean, log_var.clamp(_LOG_VAR_MIN, _LOG_VAR_MAX)
        return x

    return run


class _FoldedLinear:
    """``((x - mean) / scale) @ weight.T + bias`` as a single ``addmm``."""

    def __init__(self, weight_t, bias):
        self.weight, self.bias = weight_t, bias

    def infer(self, x):
        return torch.addmm(self.bias, x, self.weight)


def _has_bias(op):
    return getattr(op, "bias", None) is not None


def _folded_linear(linear, mean, scale):
    weight = linear.weight / scale
    return _FoldedLinear(weight.t(), linear.bias - weight @ mean)
