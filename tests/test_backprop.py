"""The hand-written training step computes what autograd computes."""

import numpy as np
import pytest
import torch
from torch import nn

from skae.engine.backprop import autograd_step, manual_step
from skae.engine.inference import lean_forward
from skae.engine.networks import ACTIVATIONS

from .helpers import ESTIMATORS, tiny


def _fitted_model(cls, X, **params):
    est = tiny(cls, max_iter=1, hidden_layer_sizes=(7, 5), n_components=3, **params)
    est.fit(X)
    return est._engine_model_for(est.encoder_, est.decoder_, est.reconstruction_loss)


def _gradients(step, model, batch, seed):
    total = step(batch, torch.Generator().manual_seed(seed))
    return total, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_manual_step_matches_autograd(cls, loss, activation, digits):
    X, _ = digits
    extra = {"beta": 0.3} if cls.__name__ == "VAETransformer" else {}
    model = _fitted_model(cls, X[:50], reconstruction_loss=loss, activation=activation, **extra)
    batch = torch.as_tensor(X[50:63], dtype=torch.float32)
    manual = manual_step(model)
    assert manual is not None
    total, grads = _gradients(manual, model, batch, seed=5)
    expected_total, expected_grads = _gradients(autograd_step(model), model, batch, seed=5)
    torch.testing.assert_close(total, expected_total, rtol=1e-5, atol=1e-5)
    for grad, expected in zip(grads, expected_grads):
        assert grad.abs().sum() > 0
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_manual_step_passes_no_gradient_through_clamped_log_variance(digits):
    from skae import VAETransformer

    X, _ = digits
    model = _fitted_model(VAETransformer, X[:50])
    last = model.encoder[-1].body[-1]
    with torch.no_grad():
        last.bias[-1] = 100.0  # the last code's log-variance sits far above its clamp
    batch = torch.as_tensor(X[50:63], dtype=torch.float32)
    total, grads = _gradients(manual_step(model), model, batch, seed=1)
    expected_total, expected_grads = _gradients(autograd_step(model), model, batch, seed=1)
    torch.testing.assert_close(total, expected_total, rtol=1e-5, atol=1e-5)
    for grad, expected in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)
    bias_grad = dict(model.named_parameters())["encoder.1.body.4.bias"].grad
    assert bias_grad[-1] == 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_networks_without_a_hand_written_form_fall_back_to_autograd(digits):
    from skae import AutoencoderTransformer

    X, _ = digits
    model = _fitted_model(AutoencoderTransformer, X[:50])
    assert manual_step(model) is not None

    handle = model.decoder.register_forward_hook(lambda module, args, out: out)
    assert manual_step(model) is None
    handle.remove()

    model.encoder.append(nn.Dropout(0.0))
    assert manual_step(model) is None
    total = autograd_step(model)(torch.as_tensor(X[:8], dtype=torch.float32), torch.Generator())
    assert total.shape == () and all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_lean_inference_matches_the_modules(cls, loss, activation, digits):
    X, _ = digits
    model = _fitted_model(cls, X[:50], reconstruction_loss=loss, activation=activation)
    x = torch.as_tensor(X[50:63], dtype=torch.float32)
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    x_before, z_before = x.clone(), z.clone()
    with torch.inference_mode():
        for network, data in ((model.encoder, x), (model.decoder, z)):
            lean = lean_forward(network)
            assert lean is not None
            expected, got = network(data), lean(data)
            if isinstance(expected, tuple):
                for e, g in zip(expected, got):
                    torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
            else:
                torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # activations work in place on the layers' outputs, never on the caller's data
    assert torch.equal(x, x_before) and torch.equal(z, z_before)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_lean_inference_leaves_hooked_or_unknown_networks_to_the_modules(digits):
    from skae import AutoencoderTransformer

    X, _ = digits
    model = _fitted_model(AutoencoderTransformer, X[:50])
    calls = []
    handle = model.encoder.register_forward_hook(lambda *args: calls.append(1))
    assert lean_forward(model.encoder) is None
    with torch.inference_mode():
        model.encode(torch.as_tensor(X[:4], dtype=torch.float32))
    assert calls == [1]
    handle.remove()
    assert lean_forward(nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.1))) is None


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_training_by_hand_and_by_autograd_follow_the_same_path(cls, digits):
    import copy

    from skae.engine.trainer import make_optimizer, train

    X, _ = digits
    model = _fitted_model(cls, X[:50])
    twin = copy.deepcopy(model)
    # A no-op hook sends the twin through autograd and optimizer.step.
    twin.register_forward_hook(lambda module, args, out: None)
    data = torch.as_tensor(X, dtype=torch.float32)
    histories = []
    for m in (model, twin):
        optimizer = make_optimizer(m.parameters(), 1e-3, data.device)
        generator = torch.Generator().manual_seed(0)
        histories.append(train(m, optimizer, data, n_epochs=3, batch_size=32, generator=generator))
    assert manual_step(model) is not None and manual_step(twin) is None
    np.testing.assert_allclose(histories[0].losses, histories[1].losses, rtol=1e-4)
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)
