"""One training step's gradients: by hand for plain networks, by autograd otherwise.

At the sizes skae trains on (tens to hundreds of units, batches of tens to
hundreds of rows) the CPU spends most of a step on per-operation bookkeeping,
and autograd's (graph nodes, saved tensors, gradient accumulation) is the
largest part of it. For networks made only of ``Linear`` layers, zero-padded
convolutions and transposed convolutions (:mod:`skae.engine.convolution`), the
``Unflatten``/``Flatten`` around them, the activations skae offers and the
:class:`~skae.engine.networks.Standardize` wrappers, the backward pass is a
short, fixed sequence of products, so :func:`manual_step` writes it out and
stores the gradients straight into preallocated ``.grad`` buffers. Any other
network (custom modules, other padding, hooks) gets None there, and
:func:`autograd_step` serves it with the same contract.

A step function has the signature ``step(batch, generator) -> loss_sum``: it
sets every parameter's ``.grad`` to the gradient of the model's
``training_loss`` on ``batch`` and returns the detached loss summed over the
batch's rows (the trainer divides by the epoch's row count once).
"""

import math

import torch
import torch.nn.functional as F

from .autoencoders import Autoencoder, VariationalAutoencoder
from .chain import SPLIT, backward, forward, hooked, operations
from .networks import _LOG_VAR_MAX, _LOG_VAR_MIN

__all__ = ["autograd_step", "manual_step"]

_LOG_2PI = math.log(2 * math.pi)


def autograd_step(model):
    """A step function that differentiates ``model.training_loss`` with autograd."""

    def step(batch, generator):
        model.zero_grad(set_to_none=True)
        loss = model.training_loss(batch, generator)
        loss.backward()
        return loss.detach() * batch.shape[0]

    return step


def manual_step(model):
    """A hand-written step function for ``model``, or None when it has no plain form (see above).

    The step computes the same loss and gradients as
    ``model.training_loss(batch, generator).backward()`` (up to floating-point
    rounding), draws the same noise from ``generator`` in the same order, and
    leaves the model's modules untouched apart from the parameters' ``.grad``.
    Its ``chains`` attribute lists its chains of operations (see
    :func:`skae.engine.chain.set_threads`).
    """
    if type(model) not in (Autoencoder, VariationalAutoencoder) or hooked(model):
        return None
    variational = type(model) is VariationalAutoencoder
    encoder = operations(model.encoder, split_allowed=variational)
    decoder = operations(model.decoder, split_allowed=False)
    if encoder is None or decoder is None:
        return None
    if variational != (bool(encoder) and encoder[-1] is SPLIT):
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


# ---------------------------------------------------------------------- steps


class _AutoencoderStep:
    """Mean over rows of the per-row reconstruction loss (summed over features)."""

    def __init__(self, model, operations):
        self.operations = operations
        self.bce = model.reconstruction_loss == "bce"
        self.scale = model.scale
        self.chains = [operations]

    @torch.no_grad()
    def __call__(self, x, generator):
        raw, saved = forward(self.operations, x)
        n_rows = x.shape[0]
        if self.bce:
            total = F.binary_cross_entropy_with_logits(raw, x, reduction="sum")
            g = torch.sigmoid(raw).sub_(x).div_(n_rows)
        else:
            # Residuals in units of the data's scale: their squares stay in float32's range.
            diff = (raw - x).div_(self.scale).view(-1)
            total = torch.dot(diff, diff)
            g = diff.mul_(2.0 / (self.scale * n_rows)).view_as(x)
        backward(self.operations, saved, g, need_input=False)
        return total


class _VariationalStep:
    """Mean over rows of reconstruction NLL + beta * KL, one reparameterised draw per row."""

    def __init__(self, model, encoder, decoder):
        self.encoder, self.decoder = encoder, decoder
        self.model = model
        self.chains = [encoder, decoder]

    @torch.no_grad()
    def __call__(self, x, generator):
        model = self.model
        n_rows, n_features = x.shape
        raw_code, encoder_saved = forward(self.encoder, x)
        mean, raw_log_var = raw_code.chunk(2, dim=-1)
        log_var = raw_log_var.clamp(_LOG_VAR_MIN, _LOG_VAR_MAX)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        std = (0.5 * log_var).exp()
        z = torch.addcmul(mean, std, noise)
        raw, decoder_saved = forward(self.decoder, z)

        if model.reconstruction_loss == "bce":
            nll = F.binary_cross_entropy_with_logits(raw, x, reduction="sum")
            g_raw = torch.sigmoid(raw).sub_(x).div_(n_rows)
        else:
            # Residuals in units of the data's scale, as in training_loss.
            diff = (raw - x).div_(model.scale)
            flat = diff.view(-1)
            squares = torch.dot(flat, flat)
            # The batch's maximum-likelihood variance, a constant for the gradient
            # (see VariationalAutoencoder.training_loss).
            variance = (squares / flat.numel()).clamp_min(model.min_scaled_variance)
            nll = 0.5 * (squares / variance + n_rows * n_features * (_LOG_2PI + variance.log()))
            g_raw = diff.div_(variance * (n_rows * model.scale))
        variance_ratio = std.square()
        kl = 0.5 * (mean.square() + variance_ratio - 1.0 - log_var).sum()

        g_z = backward(self.decoder, decoder_saved, g_raw, need_input=True)
        weight = model.beta / n_rows
        g_mean = torch.add(g_z, mean, alpha=weight)
        g_log_var = (g_z * noise).mul_(std).mul_(0.5)
        g_log_var.add_(variance_ratio.sub(1.0), alpha=0.5 * weight)
        inside = (raw_log_var >= _LOG_VAR_MIN) & (raw_log_var <= _LOG_VAR_MAX)
        g_log_var.mul_(inside)
        backward(self.encoder, encoder_saved, torch.cat([g_mean, g_log_var], dim=-1), False)
        return nll + model.beta * kl
