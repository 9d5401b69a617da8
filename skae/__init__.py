"""skae: autoencoders and variational autoencoders as scikit-learn transformers."""

from .autoencoder import AutoencoderTransformer
from .compare import compare_reducers
from .persistence import load, save, skops_trusted_types
from .vae import VAETransformer

__version__ = "0.1.0"

__all__ = [
    "AutoencoderTransformer",
    "VAETransformer",
    "__version__",
    "compare_reducers",
    "load",
    "save",
    "skops_trusted_types",
]
