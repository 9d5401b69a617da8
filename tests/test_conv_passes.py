"""Hand-written passes for convolutional networks compute what the modules and autograd compute."""

import numpy as np
import pytest
import torch
from torch import nn

from skae import AutoencoderTransformer, VAETransformer
from skae.engine import adam, convolution
from skae.engine.backprop import autograd_step, manual_step
from skae.engine.chain import operations
from skae.engine.inference import lean_forward

from .helpers import ESTIMATORS, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 13, 17), (2, 5, 3), (1, 1, 12)]


def _conv_estimator(cls, shape, **params):
    defaults = dict(architecture="conv", image_shape=shape, conv_channels=(3, 4), hidden_layer_sizes=(6,),
                    max_iter=1, n_components=2)
    defaults.update(params)
    X = np.random.RandomState(0).uniform(size=(24, int(np.prod(shape))))
    return tiny(cls, **defaults).fit(X), X


def _gradients(step, model, batch):
    total = step(batch, torch.Generator().manual_seed(3))
    return total, [p.grad.clone() for p in model.parameters()]


def _assert_matches_autograd(model, batch):
    manual = manual_step(model)
    assert manual is not None
    total, grads = _gradients(manual, model, batch)
    expected_total, expected_grads = _gradients(autograd_step(model), model, batch)
    torch.testing.assert_close(total, expected_total, rtol=1e-5, atol=1e-4)
    for grad, expected in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


def _kinds(network):
    return {type(op._run).__name__ for op in operations(network, split_allowed=True) if hasattr(op, "_run")}


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("shape", SHAPES)
def test_manual_conv_step_matches_autograd(cls, loss, shape):
    est, X = _conv_estimator(cls, shape, reconstruction_loss=loss)
    model = est._engine_model()
    _assert_matches_autograd(model, torch.as_tensor(X[:13], dtype=torch.float32))


def test_each_way_of_computing_a_convolution_is_used_where_it_should_be():
    small, _ = _conv_estimator(AutoencoderTransformer, (1, 8, 8))
    assert _kinds(small.encoder_) == _kinds(small.decoder_) == {"_DenseConvolution"}
    large, _ = _conv_estimator(AutoencoderTransformer, (1, 28, 28), conv_channels=(8, 8))
    expected = {"_UnfoldingConvolution", "_DirectConvolution"} if convolution._SLOW_CONV2D else {"_DirectConvolution"}
    # The first encoder layer reads one map; the next, from 8 maps of 14x14, is direct.
    assert _kinds(large.encoder_) == expected
    assert _kinds(large.decoder_) == expected


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("force", ["direct", "no private kernels"])
def test_every_way_gives_the_same_gradients_and_fits(cls, force, monkeypatch):
    """With the dense matrices or torch's private kernels off, results agree up to rounding."""
    reference, X = _conv_estimator(cls, (1, 28, 28), max_iter=2)
    if force == "direct":
        monkeypatch.setattr(convolution, "DENSE_ENTRIES", 0)
    else:
        monkeypatch.setattr(convolution, "_SLOW_CONV2D", False)
        monkeypatch.setattr(adam, "_FUSED_ADAM", False)
    other, _ = _conv_estimator(cls, (1, 28, 28), max_iter=2)
    kinds = _kinds(other.encoder_) | _kinds(other.decoder_)
    assert "_DenseConvolution" not in kinds if force == "direct" else "_UnfoldingConvolution" not in kinds
    _assert_matches_autograd(other._engine_model(), torch.as_tensor(X[:13], dtype=torch.float32))
    np.testing.assert_allclose(other.loss_curve_, reference.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(other.transform(X), reference.transform(X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_without_the_fused_adam_kernel_results_are_bit_identical(cls, monkeypatch):
    X = np.random.RandomState(0).uniform(size=(50, 6))
    lean = tiny(cls, max_iter=3).fit(X)
    monkeypatch.setattr(adam, "_FUSED_ADAM", False)
    generic = tiny(cls, max_iter=3).fit(X)
    assert lean.loss_curve_ == generic.loss_curve_
    np.testing.assert_array_equal(lean.transform(X), generic.transform(X))


def _user_networks(transposed_bias=True):
    encoder = nn.Sequential(
        nn.Unflatten(1, (2, 6, 5)),
        nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=False),
        nn.Tanh(),
        nn.Identity(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 2),
    )
    decoder = nn.Sequential(
        nn.Linear(2, 4 * 3 * 3),
        nn.ELU(),
        nn.Unflatten(1, (4, 3, 3)),
        nn.ConvTranspose2d(4, 2, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0),
                           dilation=(1, 2), groups=2, bias=transposed_bias),
        nn.Flatten(),
    )
    return encoder, decoder


@pytest.mark.parametrize("dense", [True, False])
def test_users_convolutions_with_groups_dilation_and_no_bias(dense, monkeypatch):
    if not dense:
        monkeypatch.setattr(convolution, "DENSE_ENTRIES", 0)
    encoder, decoder = _user_networks()
    X = np.random.RandomState(0).uniform(size=(20, 60))
    est = tiny(AutoencoderTransformer, encoder=encoder, decoder=decoder, n_components=2, max_iter=1).fit(X)
    model = est._engine_model()
    _assert_matches_autograd(model, torch.as_tensor(X[:9], dtype=torch.float32))
    x = torch.as_tensor(X[:9], dtype=torch.float32)
    with torch.inference_mode():
        torch.testing.assert_close(lean_forward(est.encoder_)(x), est.encoder_(x), rtol=1e-5, atol=1e-6)


def test_an_unflatten_of_feature_maps_falls_back_to_the_modules():
    # torch splits dimension 1 of the maps (4 -> 2 x 2); the hand-written reshape would
    # split whole rows, so such a network has no hand-written form and trains as torch runs it.
    encoder = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 4, 3, padding=1),
                            nn.Unflatten(1, (2, 2)), nn.Flatten(), nn.Linear(256, 2))
    assert operations(encoder, split_allowed=False) is None
    X = np.random.RandomState(0).uniform(size=(40, 64))
    est = tiny(AutoencoderTransformer, encoder=encoder, max_iter=2).fit(X)
    assert est.transform(X).shape == (40, 2)


def test_convolutions_without_a_hand_written_form_fall_back_to_the_modules():
    for odd in (
        nn.Conv2d(1, 2, 3, padding="same"),
        nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
    ):
        network = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), odd, nn.Flatten())
        assert operations(network, split_allowed=False) is None
    # A convolution whose input shape nothing before it gives: no hand-written form.
    assert operations(nn.Sequential(nn.Conv1d(1, 1, 1)), split_allowed=False) is None
    # A linear layer applied to images (its last dimension only) is left to torch.
    assert operations(nn.Sequential(nn.Unflatten(1, (1, 2, 3)), nn.Linear(3, 3)), split_allowed=False) is None


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_lean_conv_inference_matches_the_modules_and_keeps_the_input(cls, shape):
    est, X = _conv_estimator(cls, shape)
    x = torch.as_tensor(X, dtype=torch.float32)
    z = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    before = (x.clone(), z.clone())
    with torch.inference_mode():
        for network, data in ((est.encoder_, x), (est.decoder_, z)):
            lean = lean_forward(network)
            assert lean is not None
            expected, got = network(data), lean(data)
            if not isinstance(expected, tuple):
                expected, got = (expected,), (got,)
            for e, g in zip(expected, got):
                torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
    assert torch.equal(x, before[0]) and torch.equal(z, before[1])


def test_unflatten_first_never_lets_an_activation_overwrite_the_callers_rows():
    network = nn.Sequential(nn.Unflatten(1, (1, 2, 2)), nn.ReLU(), nn.Flatten(), nn.Linear(4, 1))
    x = -torch.ones(3, 4)
    with torch.inference_mode():
        lean_forward(network)(x)
    assert torch.equal(x, -torch.ones(3, 4))


@pytest.mark.parametrize("cls", [VAETransformer])
def test_float64_conv_inference_does_not_depend_on_batching(cls):
    est, X = _conv_estimator(cls, (1, 8, 8))
    whole = est.transform(X)
    np.testing.assert_array_equal(np.vstack([est.transform(X[:3]), est.transform(X[3:])]), whole)
