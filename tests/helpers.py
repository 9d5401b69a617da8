"""Small, fast estimator instances shared by the tests."""

from skae import AutoencoderTransformer, VAETransformer

ESTIMATORS = [AutoencoderTransformer, VAETransformer]


def tiny(cls, **params):
    """A small, fast, reproducible instance of ``cls`` for tests."""
    defaults = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, device="cpu")
    defaults.update(params)
    return cls(**defaults)
