"""Inference in large chunks under ``torch.inference_mode``."""

import copy

import torch

from .chain import SPLIT, operations
from .networks import _LOG_VAR_MAX, _LOG_VAR_MIN

__all__ = ["apply_in_chunks", "chunk_rows_for", "lean_forward", "with_dtype"]

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
