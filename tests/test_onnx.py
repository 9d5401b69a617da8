"""skae.onnx: transform exported through skl2onnx (alone and in pipelines), the decoder on its own."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, VAETransformer

from .helpers import ESTIMATORS, tiny

pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")
skae_onnx = pytest.importorskip("skae.onnx")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACTIVATIONS = ["relu", "tanh", "logistic", "identity", "elu", "gelu"]
CONV = dict(architecture="conv", conv_channels=(2, 3), image_shape=(8, 8))


def run(model, X):
    """The outputs of ``model`` on ``X``, by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def assert_matches(got, expected):
    """Within 1e-5 relative; entries near zero are compared relative to the output's scale."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.fixture(scope="module")
def X():
    from sklearn.datasets import load_digits

    return (load_digits().data[:100] / 16).astype(np.float32)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_transform_and_inverse_transform_match_for_every_activation(cls, architecture, activation, X):
    params = CONV if architecture == "conv" else {}
    loss = "bce" if activation in ("tanh", "gelu") else "mse"
    est = tiny(cls, hidden_layer_sizes=(8,), max_iter=2, activation=activation, reconstruction_loss=loss, **params)
    est.fit(X)
    model = skl2onnx.to_onnx(est, X[:1])
    codes = est.transform(X)
    assert_matches(run(model, X)[0], codes)
    decoder = skae_onnx.inverse_transform_to_onnx(est)
    assert_matches(run(decoder, codes)[0], est.inverse_transform(codes))
    # Written from the weights: the same model on every export.
    assert skl2onnx.to_onnx(est, X[:1]).SerializeToString() == model.SerializeToString()


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_float64_graphs_match_float64_transform(cls, X):
    X64 = X.astype(np.float64)
    est = tiny(cls, hidden_layer_sizes=(8,), max_iter=2).fit(X64)
    assert_matches(run(skl2onnx.to_onnx(est, X64[:1]), X64)[0], est.transform(X64))
    codes = est.transform(X64)
    decoder = skae_onnx.inverse_transform_to_onnx(est, dtype=np.float64, target_opset=13)
    assert_matches(run(decoder, codes)[0], est.inverse_transform(codes))


def test_inside_pipeline_column_transformer_and_feature_union(digits):
    X, y = digits
    X = X[:200].astype(np.float32)
    y = y[:200]
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("reduce", tiny(VAETransformer, n_components=4, **CONV)),
            ("classify", LogisticRegression(max_iter=300)),
        ]
    ).fit(X, y)
    labels, probabilities = run(skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False}), X)
    assert_array_equal(labels, pipe.predict(X))
    assert_allclose(probabilities, pipe.predict_proba(X), atol=1e-5)

    columns = ColumnTransformer(
        [
            ("ae", tiny(AutoencoderTransformer, hidden_layer_sizes=(4,)), list(range(0, 32))),
            ("pca", PCA(3), list(range(32, 64))),
        ]
    ).fit(X)
    assert_matches(run(skl2onnx.to_onnx(columns, X[:1]), X)[0], columns.transform(X))

    union = FeatureUnion([("vae", tiny(VAETransformer, hidden_layer_sizes=(4,))), ("pca", PCA(2))]).fit(X)
    assert_matches(run(skl2onnx.to_onnx(union, X[:1]), X)[0], union.transform(X))


def test_convertible_user_networks_are_exported(X_small):
    X = X_small.astype(np.float32)
    encoder = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(8, 4))
    decoder = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.ELU(alpha=0.5), torch.nn.Linear(6, 5))
    est = tiny(VAETransformer, encoder=encoder, decoder=decoder).fit(X)
    assert_matches(run(skl2onnx.to_onnx(est, X[:1]), X)[0], est.transform(X))
    codes = est.transform(X)
    assert_matches(run(skae_onnx.inverse_transform_to_onnx(est), codes)[0], est.inverse_transform(codes))


class _Custom(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(5, 2)

    def forward(self, x):
        return self.layer(x) * 2


def test_unconvertible_networks_are_a_value_error_that_says_so(X_small):
    X = X_small.astype(np.float32)
    est = tiny(AutoencoderTransformer, encoder=_Custom()).fit(X)
    with pytest.raises(ValueError, match=r"cannot convert the encoder_ .*encoder_ \(a _Custom\).*torch.onnx.export"):
        skl2onnx.to_onnx(est, X[:1])
    skae_onnx.inverse_transform_to_onnx(est)  # skae's own decoder still exports

    hooked = tiny(AutoencoderTransformer).fit(X)
    hooked.decoder_[0][0].register_forward_hook(lambda module, inputs, output: output * 0)
    skl2onnx.to_onnx(hooked, X[:1])  # the encoder has no hook
    with pytest.raises(ValueError, match=r"cannot convert the decoder_ .*decoder_.0.0 \(a Linear with hooks"):
        skae_onnx.inverse_transform_to_onnx(hooked)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_export_before_fit_is_not_fitted_error(cls, X):
    with pytest.raises(NotFittedError):
        skl2onnx.to_onnx(cls(), X[:1])
    with pytest.raises(NotFittedError):
        skae_onnx.inverse_transform_to_onnx(cls())


def test_bad_arguments(X_small):
    est = tiny(AutoencoderTransformer).fit(X_small)
    with pytest.raises(ValueError, match="float32 or float64 graphs, got dtype int64"):
        skae_onnx.inverse_transform_to_onnx(est, dtype=np.int64)
    with pytest.raises(ValueError, match="target_opset must be an int from 13"):
        skae_onnx.inverse_transform_to_onnx(est, target_opset=9)
    with pytest.raises(TypeError, match="exports skae estimators, got a PCA"):
        skae_onnx.inverse_transform_to_onnx(PCA())
    with pytest.raises(ValueError, match="fitted on 5 features, but skl2onnx gives it 3 columns"):
        skl2onnx.to_onnx(est, X_small[:1, :3].astype(np.float32))
