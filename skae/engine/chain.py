"""Plain MLP networks flattened into a chain of operations with hand-written passes.

:func:`operations` turns a network built only of ``Linear`` layers, the
activations skae offers and the :class:`~skae.engine.networks.Standardize`
wrappers (nested in ``Sequential`` and, for the VAE, a ``GaussianEncoder``)
into a list of operations, or None when any part has no hand-written form.
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

from .networks import GaussianEncoder, Standardize, Unstandardize

__all__ = ["SPLIT", "backward", "forward", "hooked", "operations"]

_aten = torch.ops.aten


SPLIT = object()  # marks the end of a GaussianEncoder's body


class _Linear:
    """``x @ weight.T + bias``."""

    def __init__(self, layer):
        self.weight, self.bias = layer.weight, layer.bias
        self.parameters = [p for p in (self.weight, self.bias) if p is not None]

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
    (and autograd) to fire.
    """
    if hooked(module):
        return None
    kind = type(module)
    if kind is nn.Sequential:
        flat = []
        for child in module:
            child_operations = operations(child, split_allowed)
            if child_operations is None or (flat and flat[-1] is SPLIT):
                return None
            flat.extend(child_operations)
        return flat
    if kind is GaussianEncoder and split_allowed:
        body = operations(module.body, split_allowed=False)
        return None if body is None else [*body, SPLIT]
    if kind is nn.Linear:
        return [_Linear(module)]
    operation = _elementwise(module)
    return None if operation is None else [operation]


def forward(chain, x):
    """Run the operations of ``chain`` on ``x``; return the output and what backward needs."""
    saved = []
    # A layer's output is held by no one else (a layer saves its input, not its
    # output), so the activation after it may overwrite it instead of allocating;
    # the caller's batch and anything an operation saved are never overwritten.
    owned = False
    for operation in chain:
        x, kept = operation.forward(x, owned)
        saved.append(kept)
        owned = isinstance(operation, _Linear)
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
