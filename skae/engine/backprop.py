"""One training step's gradients: by hand for plain MLPs, by autograd otherwise.

At the sizes skae trains on (tens to hundreds of units, batches of tens to
hundreds of rows) the CPU spends most of a step on per-operation bookkeeping,
and autograd's (graph nodes, saved tensors, gradient accumulation) is the
largest part of it. For networks made only of ``Linear`` layers, the
activations skae offers and the :class:`~skae.engine.networks.Standardize`
wrappers, the backward pass is a short, fixed sequence of matrix products, so
:func:`gradient_step` writes it out and stores the gradients straight into
preallocated ``.grad`` buffers. Any other network (convolutions, custom
modules) falls back to autograd, with the same contract.

A step function has the signature ``step(batch, generator) -> loss_sum``: it
sets every parameter's ``.grad`` to the gradient of the model's
``training_loss`` on ``batch`` and returns the detached loss summed over the
batch's rows (the trainer divides by the epoch's row count once).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .autoencoders import Autoencoder, VariationalAutoencoder
from .networks import _LOG_VAR_MAX, _LOG_VAR_MIN, GaussianEncoder, Standardize, Unstandardize

__all__ = ["autograd_step", "gradient_step", "manual_step"]

_LOG_2PI = math.log(2 * math.pi)
_aten = torch.ops.aten


def autograd_step(model):
    """A step function that differentiates ``model.training_loss`` with autograd."""

    def step(batch, generator):
        model.zero_grad(set_to_none=True)
        loss = model.training_loss(batch, generator)
        loss.backward()
        return loss.detach() * batch.shape[0]

    return step


def gradient_step(model):
    """The hand-written step for ``model`` where one exists, else :func:`autograd_step`."""
    step = manual_step(model)
    return step if step is not None else autograd_step(model)


def manual_step(model):
    """A hand-written step function for ``model``, or None when it has no plain-MLP form.

    The step computes the same loss and gradients as
    ``model.training_loss(batch, generator).backward()`` (up to floating-point
    rounding), draws the same noise from ``generator`` in the same order, and
    leaves the model's modules untouched apart from the parameters' ``.grad``.
    """
    if type(model) not in (Autoencoder, VariationalAutoencoder) or _has_hooks(model):
        return None
    variational = type(model) is VariationalAutoencoder
    encoder = _operations(model.encoder, split_allowed=variational)
    decoder = _operations(model.decoder, split_allowed=False)
    if encoder is None or decoder is None:
        return None
    if variational != (encoder[-1] is _SPLIT):
        return None
    parameters = list(model.parameters())
    covered = {id(p) for op in encoder + decoder for p in getattr(op, "parameters", ())}
    if covered != {id(p) for p in parameters}:
        return None
    for parameter in parameters:
        if parameter.grad is None or parameter.grad.shape != parameter.shape:
            parameter.grad = torch.zeros_like(parameter)
    if variational:
        return _VariationalStep(model, encoder[:-1], decoder)
    return _AutoencoderStep(model, encoder + decoder)


# ----------------------------------------------------------------- operations
#
# Each operation maps ``x`` to ``(y, saved)`` and back maps ``(g, saved)`` to the
# gradient with respect to its input (None when ``need_input`` is False),
# writing its own parameters' gradients into their ``.grad``.

_SPLIT = object()  # marks the end of a GaussianEncoder's body


class _Linear:
    def __init__(self, layer):
        self.weight, self.bias = layer.weight, layer.bias
        self.parameters = [p for p in (self.weight, self.bias) if p is not None]

    def forward(self, x):
        if self.bias is None:
            return torch.mm(x, self.weight.t()), x
        return torch.addmm(self.bias, x, self.weight.t()), x

    def backward(self, g, x, need_input):
        torch.mm(g.t(), x, out=self.weight.grad)
        if self.bias is not None:
            torch.sum(g, 0, out=self.bias.grad)
        return torch.mm(g, self.weight) if need_input else None


class _Elementwise:
    """An activation or an affine rescaling: no parameters, one saved tensor."""

    def __init__(self, forward, backward, saves_input=False):
        self._forward, self._backward, self._saves_input = forward, backward, saves_input

    def forward(self, x):
        y = self._forward(x)
        return y, x if self._saves_input else y

    def backward(self, g, saved, need_input):
        return self._backward(g, saved) if need_input else None


def _elementwise(module):
    kind = type(module)
    if kind is nn.ReLU:
        return _Elementwise(torch.relu, lambda g, y: _aten.threshold_backward.default(g, y, 0))
    if kind is nn.Tanh:
        return _Elementwise(torch.tanh, _aten.tanh_backward.default)
    if kind is nn.Sigmoid:
        return _Elementwise(torch.sigmoid, _aten.sigmoid_backward.default)
    if kind is nn.Identity:
        return _Elementwise(lambda x: x, lambda g, y: g)
    if kind is nn.ELU:
        alpha = float(module.alpha)
        return _Elementwise(
            lambda x: F.elu(x, alpha),
            lambda g, y: _aten.elu_backward.default(g, alpha, 1, 1, True, y),
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
        return _Elementwise(lambda x: (x - mean) / scale, lambda g, y: g / scale)
    if kind is Unstandardize:
        mean, scale = module.mean, module.scale
        return _Elementwise(lambda x: torch.addcmul(mean, x, scale), lambda g, y: g * scale)
    return None


def _operations(module, split_allowed):
    """Flatten ``module`` into operations, or None if any part has no hand-written form."""
    kind = type(module)
    if kind is nn.Sequential:
        operations = []
        for child in module:
            child_operations = _operations(child, split_allowed)
            if child_operations is None or (operations and operations[-1] is _SPLIT):
                return None
            operations.extend(child_operations)
        return operations
    if kind is GaussianEncoder and split_allowed:
        body = _operations(module.body, split_allowed=False)
        return None if body is None else [*body, _SPLIT]
    if kind is nn.Linear:
        return [_Linear(module)]
    operation = _elementwise(module)
    return None if operation is None else [operation]


def _forward(operations, x):
    saved = []
    for operation in operations:
        x, kept = operation.forward(x)
        saved.append(kept)
    return x, saved


def _backward(operations, saved, g, need_input):
    """Back through ``operations``; stops below the first one that has parameters
    unless the gradient with respect to the input is needed."""
    first = 0
    if not need_input:
        first = next(
            (i for i, op in enumerate(operations) if getattr(op, "parameters", None)),
            len(operations),
        )
    for i in range(len(operations) - 1, first - 1, -1):
        g = operations[i].backward(g, saved[i], need_input or i > first)
    return g


def _has_hooks(model):
    """Whether the user hooked into the model: hooks need autograd's pass to fire."""
    module_hooks = any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        for m in model.modules()
    )
    tensor_hooks = any(
        p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None)
        for p in model.parameters()
    )
    return module_hooks or tensor_hooks


# ---------------------------------------------------------------------- steps


class _AutoencoderStep:
    """Mean over rows of the per-row reconstruction loss (summed over features)."""

    def __init__(self, model, operations):
        self.operations = operations
        self.bce = model.reconstruction_loss == "bce"

    @torch.no_grad()
    def __call__(self, x, generator):
        raw, saved = _forward(self.operations, x)
        n_rows = x.shape[0]
        if self.bce:
            total = F.binary_cross_entropy_with_logits(raw, x, reduction="sum")
            g = torch.sigmoid(raw).sub_(x).div_(n_rows)
        else:
            diff = (raw - x).view(-1)
            total = torch.dot(diff, diff)
            g = diff.mul_(2.0 / n_rows).view_as(x)
        _backward(self.operations, saved, g, need_input=False)
        return total


class _VariationalStep:
    """Mean over rows of reconstruction NLL + beta * KL, one reparameterised draw per row."""

    def __init__(self, model, encoder, decoder):
        self.encoder, self.decoder = encoder, decoder
        self.model = model

    @torch.no_grad()
    def __call__(self, x, generator):
        model = self.model
        n_rows, n_features = x.shape
        raw_code, encoder_saved = _forward(self.encoder, x)
        mean, raw_log_var = raw_code.chunk(2, dim=-1)
        log_var = raw_log_var.clamp(_LOG_VAR_MIN, _LOG_VAR_MAX)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        std = (0.5 * log_var).exp()
        z = torch.addcmul(mean, std, noise)
        raw, decoder_saved = _forward(self.decoder, z)

        if model.reconstruction_loss == "bce":
            nll = F.binary_cross_entropy_with_logits(raw, x, reduction="sum")
            g_raw = torch.sigmoid(raw).sub_(x).div_(n_rows)
        else:
            diff = raw - x
            flat = diff.view(-1)
            squares = torch.dot(flat, flat)
            # The batch's maximum-likelihood variance, a constant for the gradient
            # (see VariationalAutoencoder.training_loss).
            variance = (squares / flat.numel()).clamp_min(model.min_observation_variance)
            nll = 0.5 * (squares / variance + n_rows * n_features * (_LOG_2PI + variance.log()))
            g_raw = diff.div_(variance * n_rows)
        variance_ratio = std.square()
        kl = 0.5 * (mean.square() + variance_ratio - 1.0 - log_var).sum()

        g_z = _backward(self.decoder, decoder_saved, g_raw, need_input=True)
        weight = model.beta / n_rows
        g_mean = torch.add(g_z, mean, alpha=weight)
        g_log_var = (g_z * noise).mul_(std).mul_(0.5)
        g_log_var.add_(variance_ratio.sub(1.0), alpha=0.5 * weight)
        inside = (raw_log_var >= _LOG_VAR_MIN) & (raw_log_var <= _LOG_VAR_MAX)
        g_log_var.mul_(inside)
        _backward(self.encoder, encoder_saved, torch.cat([g_mean, g_log_var], dim=-1), False)
        return nll + model.beta * kl
