"""skae: autoencoders and variational autoencoders as scikit-learn transformers."""

import importlib

__version__ = "0.1.0"

# Public names and the modules that define them, imported on first use (PEP 562):
# ``import skae`` stays light, so that the ``skae`` command checks its arguments
# before torch and scikit-learn load.
_EXPORTS = {
    "AutoencoderTransformer": "autoencoder",
    "VAETransformer": "vae",
    "compare_reducers": "compare",
    "load": "persistence",
    "save": "persistence",
    "skops_trusted_types": "persistence",
}

__all__ = [
    "AutoencoderTransformer",
    "VAETransformer",
    "__version__",
    "compare_reducers",
    "load",
    "save",
    "skops_trusted_types",
]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
