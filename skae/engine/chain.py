"""Plain networks flattened into a chain of operations with hand-written passes.

:func:`operations` turns a network built only of ``Linear`` layers, the
activations skae offers, the :class:`~skae.engine.networks.Standardize`
wrappers, and convolutions with the ``Unflatten`` / ``Flatten`` around them
(see :mod:`skae.engine.convolution`), nested in ``Sequential`` and, for the
VAE, a ``GaussianEncoder``, into a list of operations, or None when any part
has no hand-written form.
Each operation has

* ``forward(x, owned=False) -> (y, saved)``, which may overwrite ``x`` when
  ``owned`` (no one else holds it), and ``backward(g, saved, need_input)``,
  which writes its parameters' gradients into their ``.grad`` and returns the
  gradient with respect to its input (None unless ``need_input``);
* ``infer(x)``, the output alone, for inference; matrix products run in the
  dtype of ``x`` whatever the parameters' (elementwise operations follow
  torch's type promotion).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .convolution import convolution_operation, reshape_operation
from .networks import GaussianEncoder, Standardize, Unstandardize

__all__ = ["SPLIT", "Linear", "backward", "forward", "hooked", "operations", "set_threads"]

_aten = torch.ops.aten


SPLIT = object()  # marks the end of a GaussianEncoder's body


class Linear:
    """``x @ weight.T + bias``."""

    fresh_output = True  # a new tensor, held by no one else
    threads = None  # see set_threads

    def __init__(self, layer):
        self.weight, self.bias = layer.weight, layer.bias
        self.parameters = [p for p in (self.weight, self.bias) if p is not None]
        self.flops_per_row = 2.0 * self.weight.numel()

    def forward(self, x, owned=False):
        if self.bias is None:
            return torch.mm(x, self.weight.t()), x
        return torch.addmm(self.bias, x, self.weight.t()), x

    def backward(self, g, x, need_input):
        torch.mm(g.t(), x, out=self.weight.grad)
        if self.bias is not None:
            torch.sum(g, 0, out=self.bias.grad)
        return torch.mm(g, self.weight) if need_input else None

    def infer(self, x):
        """The output, in ``x``'s dtype (float32 weights are converted for float64 input)."""
        if self.weight.dtype == x.dtype:
            return self.forward(x)[0]
        weight = self.weight.to(x.dtype)
        if self.bias is None:
            return torch.mm(x, weight.t())
        return torch.addmm(self.bias.to(x.dtype), x, weight.t())


class _Elementwise:
    """An activation or an affine rescaling: no parameters, one saved tensor."""

    threads = None  # see set_threads

    def __init__(self, forward, backward, saves_input=False, in_place=None, standardize=None):
        self._forward, self._backward, self._saves_input = forward, backward, saves_input
        self._in_place = in_place
        # (mean, scale) for Standardize, so inference can fold it into the next layer.
        self.standardize = standardize

    def forward(self, x, owned=False):
        y = self.infer(x, owned)
        return y, x if self._saves_input else y

    def backward(self, g, saved, need_input):
        return self._backward(g, saved) if need_input else None

    def infer(self, x, owned=False):
        """The output; overwrites ``x`` when ``owned`` (no one else holds it) and it can."""
        if owned and self._in_place is not None:
            return self._in_place(x)
        return self._forward(x)


def _elementwise(module):
    kind = type(module)
    if kind is nn.ReLU:
        return _Elementwise(
            torch.relu, lambda g, y: _aten.threshold_backward.default(g, y, 0), in_place=torch.relu_
        )
    if kind is nn.Tanh:
        return _Elementwise(torch.tanh, _aten.tanh_backward.default, in_place=torch.tanh_)
    if kind is nn.Sigmoid:
        return _Elementwise(
            torch.sigmoid, _aten.sigmoid_backward.default, in_place=torch.sigmoid_
        )
    if kind is nn.Identity:
        return _Elementwise(lambda x: x, lambda g, y: g)
    if kind is nn.ELU:
        alpha = float(module.alpha)
        return _Elementwise(
            lambda x: F.elu(x, alpha),
            lambda g, y: _aten.elu_backward.default(g, alpha, 1, 1, True, y),
            in_place=lambda x: F.elu_(x, alpha),
        )
    if kind is nn.GELU:
        approximate = module.approximate
        return _Elementwise(
            lambda x: F.gelu(x, approximate=approximate),
            lambda g, x: _aten.gelu_backward.default(g, x, approximate=approximate),
            saves_input=True,
        )
    if kind is Standardize:
        mean, scale = module.mean, module.scale
        return _Elementwise(
            lambda x: (x - mean) / scale, lambda g, y: g / scale, standardize=(mean, scale)
        )
    if kind is Unstandardize:
        mean, scale = module.mean, module.scale
        return _Elementwise(
            lambda x: torch.addcmul(mean, x, scale),
            lambda g, y: g * scale,
            in_place=lambda x: x.mul_(scale).add_(mean),
        )
    return None


def operations(module, split_allowed):
    """Flatten ``module`` into operations, or None if any part has no hand-written form.

    A module or parameter with user hooks has none: hooks need the module calls
    (and autograd) to fire. Convolutions are bound to the shapes of their input
    maps, which the layers before them give (see
    :mod:`skae.engine.convolution`); one whose input shape is unknown has none.
    """
    chain = _flatten(module, split_allowed)
    if chain is None or not _bind(chain):
        return None
    return chain


def _flatten(module, split_allowed):
    if hooked(module):
        return None
    kind = type(module)
    if kind is nn.Sequential:
        flat = []
        for child in module:
            child_operations = _flatten(child, split_allowed)
            if child_operations is None or (flat and flat[-1] is SPLIT):
                return None
            flat.extend(child_operations)
        return flat
    if kind is GaussianEncoder and split_allowed:
        body = _flatten(module.body, split_allowed=False)
        return None if body is None else [*body, SPLIT]
    if kind is nn.Linear:
        return [Linear(module)]
    operation = _elementwise(module) or reshape_operation(module) or convolution_operation(module)
    return None if operation is None else [operation]


def _bind(chain):
    """Follow the shape of one row through ``chain``; False if an operation cannot take it."""
    shape = None  # flat rows of a width only the first layer knows
    for operation in chain:
        if isinstance(operation, Linear):
            if shape is not None and shape != (operation.weight.shape[1],):
                return False  # torch would apply it to the last dimension only
            shape = (operation.weight.shape[0],)
        elif hasattr(operation, "bind"):
            known, shape = shape is not None, operation.bind(shape)
            # None is "unknown" only for a reshape of rows whose shape was unknown too.
            if shape is None and (known or not getattr(operation, "reshapes", False)):
                return False
    return True


def set_threads(chains, rows, flops_per_thread, base, limit):
    """Give each operation of ``chains`` its own intra-op thread count for batches of ``rows``.

    A product (linear layer or convolution) gets one thread per
    ``flops_per_thread`` of its work, between ``base`` and ``limit``; every
    other operation gets ``base``. Returns whether any operation got more than
    ``base``; if none did, nothing is set and :func:`forward` and
    :func:`backward` leave the thread count alone.
    """
    operations = [op for chain in chains for op in chain if op is not SPLIT]
    counts = [
        max(base, min(limit, int(rows * op.flops_per_row // flops_per_thread)))
        if getattr(op, "flops_per_row", None)
        else base
        for op in operations
    ]
    if max(counts, default=base) <= base:
        return False
    for op, count in zip(operations, counts):
        op.threads = count
    return True


def _use_threads(operation):
    wanted = operation.threads
    if wanted is not None and wanted != torch.get_num_threads():
        torch.set_num_threads(wanted)


def forward(chain, x):
    """Run the operations of ``chain`` on ``x``; return the output and what backward needs."""
    saved = []
    # A layer's output is held by no one else (a layer saves its input, not its
    # output), so the activation after it may overwrite it instead of allocating;
    # the caller's batch and anything an operation saved are never overwritten.
    owned = False
    for operation in chain:
        _use_threads(operation)
        x, kept = operation.forward(x, owned)
        saved.append(kept)
        owned = getattr(operation, "fresh_output", False)
    return x, saved


def backward(chain, saved, g, need_input):
    """Back through ``chain`` from the output gradient ``g``.

    Without ``need_input`` it stops at the first operation that has parameters
    (nothing below it needs a gradient) and returns None.
    """
    first = 0
    if not need_input:
        first = next(
            (i for i, op in enumerate(chain) if getattr(op, "parameters", None)), len(chain)
        )
    for i in range(len(chain) - 1, first - 1, -1):
        _use_threads(chain[i])
        g = chain[i].backward(g, saved[i], need_input or i > first)
    return g if need_input else None


def hooked(module):
    """Whether ``module`` itself (not its children) or its own parameters carry hooks."""
    if (
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
    ):
        return True
    # The parameter dict itself: parameters(recurse=False) costs microseconds per
    # module, and this runs for every module whenever a chain is built.
    return any(
        p is not None and (p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None))
        for p in module._parameters.values()
    )
