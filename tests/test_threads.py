"""Threads chosen for the work: the choice, the scopes that restore the user's setting, n_threads."""

import contextlib
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from skae import AutoencoderTransformer, VAETransformer
from skae.engine import threads
from skae.engine.threads import (
    choose_threads,
    fit_threads,
    inference_threads,
    layer_work,
    thread_limit,
    threads_scope,
)

from .helpers import ESTIMATORS, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def user_threads():
    """Torch at 2 threads, as a user might have set it; the previous value restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


class Recorder(nn.Module):
    """Records torch's thread count whenever the network runs (a module skae cannot lower)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.seen = []

    def forward(self, x):
        self.seen.append(torch.get_num_threads())
        return self.linear(x)


# ---------------------------------------------------------------- the choice


def test_one_thread_per_share_of_work_between_one_and_the_limit():
    assert choose_threads(10, 100, 4) == 1
    assert choose_threads(250, 100, 4) == 2
    assert choose_threads(1e12, 100, 4) == 4
    assert choose_threads(float("inf"), 100, 4) == 1
    assert choose_threads(1e12, 100, 0) == 1


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_work_estimate_counts_what_torch_counts(cls, architecture):
    X = np.random.RandomState(0).uniform(size=(20, 64))
    est = tiny(cls, architecture=architecture, image_shape=(1, 8, 8), conv_channels=(3, 5),
               hidden_layer_sizes=(9,), max_iter=1).fit(X)
    for network, n_inputs in ((est.encoder_, 64), (est.decoder_, est.n_components)):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            network(torch.zeros(1, n_inputs))
        flops, products = layer_work(network, n_inputs)
        assert flops == counter.get_total_flops()
        assert products == (4 if architecture == "conv" else 2)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), (2, 9, 7)),
        (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (4, 5, 4)),
        (nn.Conv1d(3, 2, 5, padding="same"), (3, 11)),
        (nn.ConvTranspose1d(3, 2, 4, stride=3), (3, 6)),
    ],
)
def test_convolution_work_matches_torch(layer, shape):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        out = layer(torch.zeros(1, *shape))
    flops, out_shape = threads.convolution_work(layer, shape)
    assert out_shape == tuple(out.shape[1:])
    assert flops == counter.get_total_flops()


def test_unknown_modules_count_by_their_parameters():
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(6, 4))

        def forward(self, x):
            return x @ self.weight.t()

    network = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), Custom(), nn.Unflatten(1, (1, 6)), nn.Conv1d(1, 2, 3))
    flops, products = layer_work(network, 3)
    # The Conv1d's input shape comes from the Unflatten, after the unknown module.
    assert (flops, products) == (2 * 12 + 2 * 24 + 2 * 2 * 4 * 3, 3)
    flops, products = layer_work(nn.Sequential(Custom(), nn.Conv1d(6, 2, 1)), None)
    assert products == 2 and flops == 2 * 24 + 2 * (12 + 2)


def test_fit_choice_is_one_thread_for_small_networks_and_more_for_large_ones(user_threads, monkeypatch):
    X = np.random.RandomState(0).uniform(size=(30, 8))
    model = tiny(AutoencoderTransformer).fit(X)._engine_model()
    assert fit_threads(model, 8, 30) == (1, user_threads)
    assert fit_threads(model, 8, 30, n_threads=3) == (3, None)
    monkeypatch.setattr(threads, "FIT_FLOPS_PER_THREAD", 1.0)
    assert fit_threads(model, 8, 30) == (user_threads, user_threads)


def test_inference_choice_follows_rows_and_is_kept_per_network(user_threads, monkeypatch):
    encoder = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    per_product = (2 * 16 * 32 + 2 * 32 * 4) / 2
    monkeypatch.setattr(threads, "INFERENCE_FLOPS_PER_THREAD", 100 * per_product)
    assert inference_threads(encoder, 16, 99) == 1
    assert inference_threads(encoder, 16, 200) == 2
    assert inference_threads(encoder, 16, 10**6) == user_threads
    assert inference_threads(encoder, 16, 10**6, n_threads=1) == 1
    assert threads._ENCODER_WORK[encoder] == (16, per_product)


# ---------------------------------------------------------------- the scopes


def test_a_scope_sets_the_count_and_restores_the_users(user_threads):
    with threads_scope(1):
        assert torch.get_num_threads() == 1
        assert thread_limit() == 1  # work nested in a scope obeys it
        with threads_scope(3):
            assert torch.get_num_threads() == 3
        assert torch.get_num_threads() == 1  # a nested scope restores the one around it
    assert torch.get_num_threads() == user_threads
    with pytest.raises(RuntimeError), threads_scope(1):
        raise RuntimeError("the count is restored on errors too")
    assert torch.get_num_threads() == user_threads
    assert threads._open_scopes == 0


def test_concurrent_scopes_never_restore_each_others_counts(user_threads):
    """Scopes that open and close interleaved in several threads all end at the user's setting."""
    n_workers = 4
    barrier = threading.Barrier(n_workers)
    seen = {}

    def worker(i):
        barrier.wait()
        with threads_scope(1 + i % 3):
            barrier.wait()  # every scope is open now
            seen[i, "limit"] = thread_limit()
            barrier.wait()
        # closing in any order: a fresh thread that only now reads the count gets the user's
        seen[i, "after"] = torch.get_num_threads()

    with ThreadPoolExecutor(n_workers) as pool:
        list(pool.map(worker, range(n_workers)))
    assert {seen[i, "after"] for i in range(n_workers)} == {user_threads}
    assert [seen[i, "limit"] for i in range(n_workers)] == [1 + i % 3 for i in range(n_workers)]
    assert torch.get_num_threads() == user_threads
    fresh = ThreadPoolExecutor(1)
    assert fresh.submit(torch.get_num_threads).result() == user_threads
    fresh.shutdown()


@contextlib.contextmanager
def scope_held_elsewhere(n_threads=1):
    """A scope of ``n_threads`` held open by another thread for the length of the block."""
    opened, release = threading.Event(), threading.Event()

    def fit_like():
        with threads_scope(n_threads):
            opened.set()
            release.wait()

    holder = threading.Thread(target=fit_like)
    holder.start()
    opened.wait()
    try:
        yield release
    finally:
        release.set()
        holder.join()


def test_a_thread_outside_every_scope_sees_the_users_setting_as_its_limit(user_threads):
    with scope_held_elsewhere():
        # A thread that first runs torch now starts from the open scope's count;
        # its limit for "auto" is still the user's setting.
        assert ThreadPoolExecutor(1).submit(thread_limit).result() == user_threads
        assert thread_limit() == user_threads
    assert torch.get_num_threads() == user_threads


def test_a_thread_that_took_a_scopes_count_gets_the_users_back(user_threads):
    X = np.random.RandomState(0).uniform(size=(30, 5))
    with scope_held_elsewhere() as release, ThreadPoolExecutor(1) as pool:

        def work():
            taken = torch.get_num_threads()  # this thread's first torch call: the open scope's count
            release.set()
            tiny(AutoencoderTransformer, n_threads=1).fit(X).transform(X)
            return taken, torch.get_num_threads()

        assert pool.submit(work).result() == (1, user_threads)


# ------------------------------------------------------------ the estimators


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_and_inference_leave_torchs_setting_as_it_was(cls, user_threads, monkeypatch):
    calls = []
    set_num_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), set_num_threads(n)))
    X = np.random.RandomState(0).uniform(size=(40, 6))
    est = tiny(cls).fit(X)
    assert calls[0] == 1 and torch.get_num_threads() == user_threads  # a small fit: one thread
    for method in (est.transform, est.score_samples):
        method(X)
        assert torch.get_num_threads() == user_threads
    est.inverse_transform(est.transform(X))
    est.sample(3, random_state=0)
    assert torch.get_num_threads() == user_threads


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_n_threads_sets_the_count_the_networks_run_with(cls, user_threads):
    X = np.random.RandomState(0).uniform(size=(40, 6))
    n_outputs = 4 if cls is VAETransformer else 2
    for n_threads, expected in (("auto", 1), (3, 3)):
        encoder = Recorder(6, n_outputs)
        est = tiny(cls, encoder=encoder, n_components=2, n_threads=n_threads).fit(X)
        recorder = est.encoder_.body if cls is VAETransformer else est.encoder_
        recorder.seen.clear()
        est.transform(X.astype(np.float32))  # float64 would run a float64 copy of the network
        assert recorder.seen == [expected]
    assert torch.get_num_threads() == user_threads


def test_a_fit_records_the_count_during_training(user_threads):
    X = np.random.RandomState(0).uniform(size=(40, 6))
    seen = []

    class Spy(Recorder):
        def forward(self, x):
            if torch.is_grad_enabled():  # a training step, not the checks and passes around them
                seen.append(torch.get_num_threads())
            return self.linear(x)

    tiny(AutoencoderTransformer, encoder=Spy(6, 2), n_threads=3).fit(X)
    assert set(seen) == {3}
    seen.clear()
    tiny(AutoencoderTransformer, encoder=Spy(6, 2)).fit(X)
    assert set(seen) == {1}


@pytest.mark.parametrize("bad", [0, -1, 1.5, "all", None])
def test_bad_n_threads_is_refused(bad):
    X = np.random.RandomState(0).uniform(size=(20, 4))
    with pytest.raises(InvalidParameterError, match="n_threads"):
        tiny(AutoencoderTransformer, n_threads=bad).fit(X)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "all"])
def test_bad_n_threads_set_after_fit_is_refused_at_inference_and_leaves_no_scope_open(
    bad, user_threads
):
    X = np.random.RandomState(0).uniform(size=(20, 4))
    est = tiny(AutoencoderTransformer).fit(X).set_params(n_threads=bad)
    with pytest.raises(ValueError, match="n_threads"):
        est.transform(X)
    assert threads._open_scopes == 0 and torch.get_num_threads() == user_threads
    with pytest.raises(RuntimeError), threads_scope(0):  # a count torch refuses
        pass
    assert threads._open_scopes == 0 and torch.get_num_threads() == user_threads
    torch.set_num_threads(1)  # the user's own later choice is not undone by skae
    est.set_params(n_threads="auto").transform(X)
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_results_are_bit_identical_for_a_seed_and_a_thread_count(cls, architecture):
    X = np.random.RandomState(0).uniform(size=(60, 16))
    params = dict(architecture=architecture, image_shape=(4, 4), conv_channels=(3,), max_iter=3)
    runs = [tiny(cls, **params, n_threads=n).fit(X) for n in ("auto", "auto", 2, 2)]
    for first, second in (runs[:2], runs[2:]):
        np.testing.assert_array_equal(first.transform(X), second.transform(X))
        assert first.loss_curve_ == second.loss_curve_


def test_estimators_fitting_in_threads_of_one_process_match_sequential_fits(user_threads):
    X = np.random.RandomState(0).uniform(size=(80, 12))
    settings = [
        dict(cls=AutoencoderTransformer, n_threads="auto"),
        dict(cls=VAETransformer, n_threads=2),
        dict(cls=AutoencoderTransformer, n_threads=1),
        dict(cls=VAETransformer, n_threads="auto"),
    ]

    def fit(setting):
        setting = dict(setting)
        est = tiny(setting.pop("cls"), max_iter=4, **setting).fit(X)
        return est.transform(X), torch.get_num_threads()

    sequential = [fit(s)[0] for s in settings]
    with ThreadPoolExecutor(len(settings)) as pool:
        concurrent = list(pool.map(fit, settings))
    for expected, (codes, threads_after) in zip(sequential, concurrent):
        np.testing.assert_array_equal(codes, expected)
        assert threads_after == user_threads
    assert torch.get_num_threads() == user_threads


def test_operations_take_their_own_thread_counts_and_the_fit_restores_the_users(user_threads, monkeypatch):
    from skae.engine.backprop import manual_step
    from skae.engine.chain import set_threads

    X = np.random.RandomState(0).uniform(size=(64, 16))
    est = tiny(VAETransformer, architecture="conv", image_shape=(4, 4), conv_channels=(3, 6),
               hidden_layer_sizes=(40,), max_iter=1).fit(X)
    step = manual_step(est._engine_model())
    products = [op.flops_per_row for chain in step.chains for op in chain if getattr(op, "flops_per_row", None)]
    assert set_threads(step.chains, 64, 1e12, 1, 4) is False
    # Per thread: under half the largest product's work, so that only it gets two.
    assert set_threads(step.chains, 64, 64 * max(products) * 0.45, 1, 4) is True
    counts = [op.threads for chain in step.chains for op in chain if getattr(op, "flops_per_row", None)]
    assert counts == [1 + (flops == max(products)) for flops in products]
    others = {op.threads for chain in step.chains for op in chain if not getattr(op, "flops_per_row", None)}
    assert others == {1}
    # A whole fit whose largest products get a second thread ends at the user's setting.
    monkeypatch.setattr(threads, "FIT_FLOPS_PER_THREAD", 64 * max(products) * 0.45)
    calls = []
    set_num_threads = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), set_num_threads(n)))
    switched = tiny(VAETransformer, architecture="conv", image_shape=(4, 4), conv_channels=(3, 6),
                    hidden_layer_sizes=(40,), max_iter=2).fit(X)
    assert 2 in calls and calls[-1] == user_threads and torch.get_num_threads() == user_threads
    np.testing.assert_allclose(switched.transform(X), est.set_params(max_iter=2).fit(X).transform(X), rtol=1e-5)


# ------------------------------------------------------------- the Dask plugin


def test_the_old_import_of_torch_threads_warns_and_gives_the_same_class():
    with pytest.warns(FutureWarning, match="skae.engine.threads.TorchThreads"):
        from skae.cluster import TorchThreads
    assert TorchThreads is threads.TorchThreads
    assert TorchThreads.__module__ == "skae.engine.threads" and TorchThreads.name == "skae-torch-threads"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        import skae.cluster  # noqa: F401 (importing the module alone does not warn)


def test_torch_threads_without_dask_says_what_is_missing():
    try:
        import distributed  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"skae\[dask\]"):
            threads.TorchThreads(2)
    else:
        plugin = threads.TorchThreads(2)
        assert isinstance(plugin, distributed.WorkerPlugin)
