"""Encoder and decoder networks, built and initialised without global RNG state."""

import math

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "GaussianEncoder",
    "Standardize",
    "Unstandardize",
    "build_mlp",
    "initialize_parameters",
]

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}

# Bounds on the encoder's log-variance: exp(20) and exp(-30) are finite in float32,
# so a wild encoder output cannot turn the KL term or the noise into inf / NaN.
_LOG_VAR_MIN = -30.0
_LOG_VAR_MAX = 20.0


def build_mlp(layer_sizes, activation):
    """Stack ``Linear`` layers of the given sizes with ``activation`` between them.

    The last layer has no activation: it produces codes, distribution parameters
    or logits, whose range the caller decides.
    """
    layers = []
    n_layers = len(layer_sizes) - 1
    for i, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < n_layers - 1:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class GaussianEncoder(nn.Module):
    """Split a network's ``2 * d`` outputs into a mean and a log-variance.

    Parameters
    ----------
    body : torch.nn.Module
        Maps a batch to ``(n, 2 * d)``: the first ``d`` columns are the posterior
        mean, the last ``d`` its log-variance.
    """

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        mean, log_var = self.body(x).chunk(2, dim=-1)
        return mean, log_var.clamp(_LOG_VAR_MIN, _LOG_VAR_MAX)


class Standardize(nn.Module):
    """``(x - mean) / scale``: puts the network's input on a unit scale.

    ``mean`` is per feature; ``scale`` is one number for all features, so the
    relative scale of features (which the user chose) is kept.
    """

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32).clone())

    def forward(self, x):
        return (x - self.mean) / self.scale


class Unstandardize(Standardize):
    """``x * scale + mean``: the inverse of :class:`Standardize`, for decoder outputs."""

    def forward(self, x):
        return x * self.scale + self.mean


def _fan_in(weight, transposed):
    # ConvTranspose weights are (in, out, *kernel): torch's own init reads dim 1.
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return (weight.shape[0] if transposed else weight.shape[1]) * receptive


def initialize_parameters(module, generator):
    """Initialise ``module`` in place as PyTorch does, drawing from ``generator``.

    Linear and convolutional layers get PyTorch's default scheme (Kaiming-uniform
    weights with ``a=sqrt(5)``, uniform biases in ``+-1/sqrt(fan_in)``); affine
    normalisation layers get ones and zeros. Any other module that owns
    parameters directly is refused, because its default initialisation would draw
    from the global random state.
    """
    conv_types = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    transposed_types = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    norm_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)
    with torch.no_grad():
        for sub in module.modules():
            own = list(sub.parameters(recurse=False))
            if not own:
                continue
            if isinstance(sub, (nn.Linear, *conv_types, *transposed_types)):
                transposed = isinstance(sub, transposed_types)
                nn.init.kaiming_uniform_(sub.weight, a=math.sqrt(5), generator=generator)
                if sub.bias is not None:
                    bound = 1 / math.sqrt(max(_fan_in(sub.weight, transposed), 1))
                    nn.init.uniform_(sub.bias, -bound, bound, generator=generator)
            elif isinstance(sub, norm_types):
                sub.reset_parameters()
            else:
                raise TypeError(
                    f"cannot initialise {type(sub).__name__} reproducibly: skae "
                    "initialises Linear, Conv, ConvTranspose and normalisation layers."
                )
            buffers = getattr(sub, "reset_running_stats", None)
            if buffers is not None:
                buffers()
