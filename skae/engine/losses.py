"""Per-sample reconstruction losses and the Gaussian KL divergence.

Every function returns one value per row (summed over features or latent
dimensions); callers average over the batch.
"""

import math

import torch
import torch.nn.functional as F

__all__ = [
    "bernoulli_nll",
    "gaussian_kl",
    "gaussian_nll",
    "squared_error",
]

_LOG_2PI = math.log(2 * math.pi)


def squared_error(output, x):
    """Sum of squared errors per row."""
    return (output - x).square().sum(dim=-1)


def bernoulli_nll(logits, x):
    """Binary cross-entropy per row, from logits (numerically stable)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def gaussian_nll(mean, x, variance):
    """Negative log-density of ``x`` under N(mean, variance * I), per row.

    ``variance`` is a scalar (a Python float or a 0-d tensor) shared by all
    features: the calibrated observation noise of the sigma-VAE.
    """
    n_features = x.shape[-1]
    variance = torch.as_tensor(variance, dtype=x.dtype, device=x.device)
    return 0.5 * (squared_error(mean, x) / variance + n_features * (_LOG_2PI + variance.log()))


def gaussian_kl(mean, log_var):
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) per row."""
    return 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var).sum(dim=-1)
