"""Inference in large chunks under ``torch.inference_mode``."""

import copy
import itertools
import operator
import weakref

import torch

from .chain import SPLIT, Linear, hooked, operations
from .networks import _LOG_VAR_MAX, _LOG_VAR_MIN
from .threads import in_threads

__all__ = ["apply_in_chunks", "chunk_rows_for", "lean_forward", "parameters_dtype", "with_dtype"]

# About 4 MB of float32 input per chunk: large enough that per-call overhead
# vanishes, small enough that activations of wide networks stay bounded. With
# 16 MB the hidden activations of a pass over 20,000 x 100 rows (tens of MB)
# went to fresh mmap'd memory each time: 20,000 page faults and a third more
# time for the score pass at the end of fit.
_ELEMENTS_PER_CHUNK = 1 << 20


def chunk_rows_for(n_features):
    """Rows per inference chunk for inputs of ``n_features`` columns."""
    return max(1, _ELEMENTS_PER_CHUNK // max(1, n_features))


def with_dtype(model, dtype):
    """``model`` itself if its parameters already have ``dtype``, else a converted copy.

    The copy leaves the fitted model untouched, so concurrent callers never see
    a half-converted network. It takes about a millisecond for a small MLP,
    which is why skae's engine models skip it when their networks have lean
    forward passes (see ``for_dtype`` in :mod:`skae.engine.autoencoders`).
    """
    dtype_now = parameters_dtype(model)
    if dtype_now is None or dtype_now == dtype:
        return model
    return copy.deepcopy(model).to(dtype)


def parameters_dtype(module):
    """The dtype of ``module``'s first parameter, or None if it has none."""
    parameter = _first_parameter(module)
    return None if parameter is None else parameter.dtype


def _first_parameter(module):
    """``next(module.parameters(), None)``, without the generators' cost on every call."""
    pending, seen = [module], set()
    while pending:
        module = pending.pop()
        if module is None or id(module) in seen:
            continue
        seen.add(id(module))
        for parameter in module._parameters.values():
            if parameter is not None:
                return parameter
        pending += reversed(list(module._modules.values()))
    return None


def apply_in_chunks(fn, X, device, chunk_rows, threads=None):
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
    threads : int or None, default=None
        Intra-op threads for the calls (see :mod:`skae.engine.threads`); None
        leaves torch's setting as it is.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        On the CPU, rows in the order of ``X``.
    """
    n_rows = X.shape[0]
    if n_rows == 0:
        raise ValueError("apply_in_chunks needs at least one row")
    joined = None
    # A small tensor already on the device goes in whole: each skipped slice, copy
    # or move is a dispatcher call, a measurable share of a millisecond transform.
    in_one_piece = n_rows <= chunk_rows and isinstance(X, torch.Tensor) and X.device == device
    with torch.inference_mode(), in_threads(threads):
        for start in range(0, n_rows, chunk_rows):
            out = fn(X if in_one_piece else X[start : start + chunk_rows].to(device, non_blocking=True))
            single = not isinstance(out, tuple)
            out = (out,) if single else out
            if n_rows <= chunk_rows:  # one chunk: nothing to gather
                joined = tuple(part if part.device.type == "cpu" else part.cpu() for part in out)
                break
            if joined is None:
                joined = _gathering_buffers(out, n_rows)
            rows = min(chunk_rows, n_rows - start)
            for whole, part in zip(joined, out):
                if part.shape[0] != rows:  # the buffers would keep uninitialised rows
                    raise ValueError(f"fn returned {part.shape[0]} rows for a chunk of {rows}")
                whole[start : start + rows].copy_(part)
            del out, part  # before the next chunk (see _gathering_buffers)
    return joined[0] if single else joined


def _gathering_buffers(first_out, n_rows):
    # The results are written into buffers allocated once, before the next
    # chunk, rather than kept per chunk and concatenated at the end: each kept
    # piece is a small allocation that outlives its chunk, and glibc malloc
    # places such pieces in the holes the chunk's freed blocks leave, so the
    # next chunk's blocks no longer fit there and the heap grows by about a
    # block per chunk (measured with 16 MB chunks: up to 1.6 GiB over the 96
    # chunks of a 200,000 x 2,000 input, in one thread as in two).
    with torch.inference_mode(False):  # ordinary tensors, as torch.cat returned
        return tuple(torch.empty((n_rows, *part.shape[1:]), dtype=part.dtype, device="cpu") for part in first_out)


def lean_forward(network):
    """``network``'s forward pass for inference, with fewer passes over memory.

    For a plain MLP (see :func:`skae.engine.chain.operations`) a
    ``Standardize`` followed by a ``Linear`` layer is folded into that layer's
    weights, and each activation overwrites the fresh output of the layer
    before it instead of allocating another. Its matrix products run in the
    dtype of its input whatever the dtype of the weights, as on a converted
    copy of the network (float64 input: float64 throughout; a float64 buffer
    still promotes float32 input, as torch does). Returns None for other
    networks, and while forward hooks are registered or a module has its own
    ``forward`` (only the modules' own calls run them).

    The chain of operations is built once per network and kept while the
    network's structure stays the same (see :class:`_Structure`); weights are
    read on every call, so the result always reflects the current parameters,
    however they were changed. Call the result with gradients disabled.
    """
    if _global_forward_hooks():
        return None
    cached = _LEAN_FORWARDS.get(network)
    if cached is not None and cached[0].matches(network):
        return cached[1]
    structure = _Structure(network)
    if not structure.plain or structure.hooked(network):
        return None
    run = _build_lean_forward(network)
    if run is None and structure.any_hooks:
        # Refused for hooks that matches() does not track (backward or
        # parameter hooks): not kept, so that removing them brings the pass back.
        return None
    _LEAN_FORWARDS[network] = (structure, run)
    return run


# network -> (its _Structure, its lean forward or None); weak, so that the cache
# never keeps a network alive. The structure never holds the network itself.
_LEAN_FORWARDS = weakref.WeakKeyDictionary()

# Read from each module's __dict__: cheaper than attribute look-ups on a Module.
_MEMBERS = operator.itemgetter("_modules", "_parameters", "_buffers")
_FORWARD_HOOKS = operator.itemgetter("_forward_hooks", "_forward_pre_hooks")
# The activation settings the chain of operations reads: ELU's alpha, GELU's approximate.
_SETTINGS = ("alpha", "approximate")
_flatten = itertools.chain.from_iterable


def _global_forward_hooks():
    hooks = torch.nn.modules.module
    return bool(hooks._global_forward_hooks or hooks._global_forward_pre_hooks)


class _Structure:
    """Everything :func:`_build_lean_forward` reads from a network but the weights.

    Records the modules below the network, their types, the names and objects
    of every module's children, parameters and buffers, and the activations'
    settings. :meth:`matches` compares them with the network as it is now: any
    change to the module tree, a parameter or buffer replaced by another
    object, a new activation setting, a new forward hook or a ``forward`` set
    on an instance fails it. Changes to the values of parameters and buffers,
    made in place, do not: the lean forward reads them on every call. Backward
    and parameter hooks do not act at inference and are not compared (a
    network refused for them is not kept).

    :meth:`matches` runs on every inference call, so it is written as a few
    passes of builtins over flat lists (no Python loop per module): in a
    millisecond ``transform`` each interpreted line counts.
    """

    def __init__(self, network):
        modules, pending, seen = [], [network], set()
        while pending:
            module = pending.pop()
            if module is None or id(module) in seen:
                continue
            seen.add(id(module))
            modules.append(module)
            pending += reversed(list(module._modules.values()))
        # The network itself is passed to matches, never kept: the cache is weak on it.
        self._below = modules[1:]
        states = list(map(vars, modules))
        # matches() reads the containers with dict's own methods: a module whose
        # children, parameters or buffers live in another mapping gets no lean pass.
        self.plain = all(isinstance(members, dict) for members in _flatten(map(_MEMBERS, states)))
        self.any_hooks = any(map(hooked, modules))
        if not self.plain:
            return
        self._snapshot = self._take(modules, states)
        # Keeps the recorded members alive, so that their ids cannot be reused.
        self._members = list(_flatten(map(dict.values, _flatten(map(_MEMBERS, states)))))
        # Only the activations that have settings are checked for them (a type
        # change is caught by the parent's children): none in a ReLU network.
        # By identity, as for members: a setting can be any object.
        self._settings = [(state, name, state[name]) for state in states for name in _SETTINGS if name in state]

    @staticmethod
    def _take(modules, states):
        """What is compared: the modules' types and their children, parameters and buffers."""
        member_dicts = list(_flatten(map(_MEMBERS, states)))
        return (
            list(map(type, modules)),
            list(map(len, member_dicts)),
            list(_flatten(member_dicts)),
            list(map(id, _flatten(map(dict.values, member_dicts)))),
        )

    def matches(self, network):
        """Whether ``network`` still has the recorded structure and no forward hooks."""
        modules = [network, *self._below]
        states = list(map(vars, modules))
        try:
            same = self._take(modules, states) == self._snapshot
        except TypeError:  # a container replaced by a mapping that is not a dict
            return False
        return (
            same
            and all(state.get(name) is value for state, name, value in self._settings)
            and not _hooked(states)
        )

    def hooked(self, network):
        """Whether the network or a module below it has a forward hook or its own ``forward``."""
        return _hooked(list(map(vars, [network, *self._below])))


def _hooked(states):
    """Whether a module (given by its ``__dict__``) has forward hooks or its own ``forward``.

    Either acts only through the module's own call, which the lean pass skips.
    """
    return any(map(len, _flatten(map(_FORWARD_HOOKS, states)))) or any(
        map(dict.__contains__, states, itertools.repeat("forward"))
    )


def _build_lean_forward(network):
    chain = operations(network, split_allowed=True)
    if chain is None:
        return None
    split = bool(chain) and chain[-1] is SPLIT
    if split:
        chain = chain[:-1]
    steps = []
    for op in chain:
        previous = steps[-1] if steps else None
        if getattr(previous, "standardize", None) is not None and isinstance(op, Linear) and op.bias is not None:
            steps[-1] = _FoldedLinear(op, *previous.standardize)
        else:
            steps.append(op)
    return _LeanForward(steps, split)


class _LeanForward:
    """The inference pass over a chain of operations; see :func:`lean_forward`."""

    def __init__(self, steps, split):
        self._steps, self._split = steps, split

    def __call__(self, x):
        owned = False  # whether the current tensor is ours to overwrite
        for step in self._steps:
            if hasattr(step, "weight"):  # a matrix product or convolution: always a fresh tensor
                x, owned = step.infer(x), True
            elif getattr(step, "reshapes", False):  # a view: as much ours as its input
                x = step.infer(x)
            else:
                y = step.infer(x, owned)
                owned = owned or y is not x
                x = y
        if self._split:
            mean, log_var = x.chunk(2, dim=-1)
            return mean, log_var.clamp(_LOG_VAR_MIN, _LOG_VAR_MAX)
        return x


class _FoldedLinear:
    """``((x - mean) / scale) @ weight.T + bias`` as a single ``addmm``.

    The folded weights are computed from the current parameters on every call
    (two small operations), so no copy of them can go stale.
    """

    def __init__(self, linear, mean, scale):
        self.weight = linear.weight
        self.linear, self.mean, self.scale = linear, mean, scale

    def infer(self, x):
        weight, bias, mean, scale = self.linear.weight, self.linear.bias, self.mean, self.scale
        dtype = x.dtype  # computed in x's dtype, as on a converted copy of the network
        if not dtype == weight.dtype == bias.dtype == mean.dtype == scale.dtype:
            weight, bias, mean, scale = (t.to(dtype) for t in (weight, bias, mean, scale))
        weight = weight / scale
        return torch.addmm(torch.addmv(bias, weight, mean, alpha=-1), x, weight.t())

