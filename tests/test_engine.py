"""The torch engine on its own: devices, losses, networks, the training loop."""

import math
import weakref

import pytest
import torch

from skae.engine.autoencoders import Autoencoder, VariationalAutoencoder
from skae.engine.device import resolve_device
from skae.engine.inference import apply_in_chunks
from skae.engine.losses import bernoulli_nll, gaussian_kl, gaussian_nll, squared_error
from skae.engine.networks import GaussianEncoder, build_mlp, initialize_parameters
from skae.engine.trainer import make_optimizer, train


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", ""])
def test_resolve_device_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="device="):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_rejects_unavailable_cuda():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resolve_device_rejects_missing_cuda_index():
    with pytest.raises(ValueError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_losses_match_closed_forms():
    x = torch.tensor([[0.0, 1.0, 0.5]])
    out = torch.tensor([[0.5, 0.5, 0.5]])
    assert squared_error(out, x).item() == pytest.approx(0.5)
    logits = torch.zeros(1, 3)
    assert bernoulli_nll(logits, x).item() == pytest.approx(3 * math.log(2))
    nll = gaussian_nll(out, x, 0.25).item()
    assert nll == pytest.approx(0.5 * (0.5 / 0.25 + 3 * math.log(2 * math.pi * 0.25)))
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).tolist() == [0.0, 0.0]
    assert gaussian_kl(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)


def _seeded_mlp(seed):
    with torch.device("meta"):  # building on meta draws nothing from the global generator
        net = build_mlp([5, 4, 3], "relu")
    net.to_empty(device="cpu")
    initialize_parameters(net, torch.Generator().manual_seed(seed))
    return net


def test_initialisation_is_seeded_and_leaves_global_state_alone():
    state = torch.get_rng_state()
    a, b, c = _seeded_mlp(1), _seeded_mlp(1), _seeded_mlp(2)
    assert torch.equal(torch.get_rng_state(), state)
    for p, q, r in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(p, q) and not torch.equal(p, r)
    bound = 1 / math.sqrt(5)
    assert a[0].bias.abs().max() <= bound
    with pytest.raises(TypeError, match="reproducibly"):
        initialize_parameters(torch.nn.Bilinear(2, 2, 2), torch.Generator())


def _toy_autoencoder():
    generator = torch.Generator().manual_seed(0)
    encoder, decoder = build_mlp([6, 8, 2], "tanh"), build_mlp([2, 8, 6], "tanh")
    for net in (encoder, decoder):
        initialize_parameters(net, generator)
    return Autoencoder(encoder, decoder, "mse")


def test_train_reduces_loss_and_reports_history():
    X = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    model = _toy_autoencoder()
    optimizer = make_optimizer(model.parameters(), 1e-2, torch.device("cpu"))
    seen = []
    history = train(
        model, optimizer, X, n_epochs=30, batch_size=16,
        generator=torch.Generator().manual_seed(0),
        on_epoch_end=lambda loss, score: seen.append(loss),
    )
    assert history.stop_reason == "max_epochs"
    assert seen == history.losses and len(seen) == 30
    assert history.losses[-1] < history.losses[0]


def test_train_restores_last_finite_epoch_on_divergence():
    X = torch.randn(32, 6, generator=torch.Generator().manual_seed(0))
    model = _toy_autoencoder()
    optimizer = make_optimizer(model.parameters(), 1e-3, torch.device("cpu"))
    train(model, optimizer, X, n_epochs=2, batch_size=8, generator=torch.Generator())
    good = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e30)  # the next epoch overflows
    poisoned = {k: v.clone() for k, v in model.state_dict().items()}
    history = train(model, optimizer, X * 1e30, n_epochs=3, batch_size=8,
                    generator=torch.Generator())
    assert history.stop_reason == "diverged" and history.losses == []
    for key, value in model.state_dict().items():
        assert torch.equal(value, poisoned[key]) and not torch.equal(value, good[key])


def test_vae_training_loss_uses_the_generator():
    generator = torch.Generator().manual_seed(0)
    body, decoder = build_mlp([4, 6], "relu"), build_mlp([3, 4], "relu")
    for net in (body, decoder):
        initialize_parameters(net, generator)
    vae = VariationalAutoencoder(GaussianEncoder(body), decoder, "mse")
    x = torch.rand(10, 4, generator=generator)
    a = vae.training_loss(x, torch.Generator().manual_seed(5))
    b = vae.training_loss(x, torch.Generator().manual_seed(5))
    c = vae.training_loss(x, torch.Generator().manual_seed(6))
    assert a.item() == b.item() != c.item()


def test_apply_in_chunks_gathers_rows_in_order():
    X = torch.arange(23 * 3, dtype=torch.float32).reshape(23, 3)
    cpu = torch.device("cpu")
    whole, first = apply_in_chunks(lambda x: (x * 2, x[:, 0].long()), X, cpu, 5)
    torch.testing.assert_close(whole, X * 2)
    torch.testing.assert_close(first, X[:, 0].long())
    single = apply_in_chunks(lambda x: x.sum(dim=1), X, cpu, 5)
    torch.testing.assert_close(single, X.sum(dim=1))
    # Gathered results are ordinary tensors, usable in place and by autograd
    # outside inference mode (a single chunk's result is returned as fn made it).
    assert not single.is_inference()
    single.add_(1.0)
    torch.testing.assert_close(apply_in_chunks(lambda x: x + 1, X, cpu, 100), X + 1)
    with pytest.raises(ValueError, match="returned 1 rows for a chunk of 5"):
        apply_in_chunks(lambda x: x.sum().reshape(1), X, cpu, 5)
    with pytest.raises(ValueError, match="at least one row"):
        apply_in_chunks(lambda x: x, X[:0], cpu, 5)


def test_apply_in_chunks_keeps_no_chunk_result_alive():
    # A result kept per chunk is a small allocation that outlives the chunk's
    # large temporaries, which lets glibc's heap grow by about a chunk per
    # chunk (see apply_in_chunks): each result must be freed once copied.
    results = []

    def fn(x):
        assert all(ref() is None for ref in results), "an earlier chunk's result is still alive"
        out = x * 3
        results.append(weakref.ref(out))
        return out

    X = torch.randn(40, 4)
    torch.testing.assert_close(apply_in_chunks(fn, X, torch.device("cpu"), 7), X * 3)
    assert len(results) == 6
