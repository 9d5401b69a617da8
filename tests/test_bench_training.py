"""The training benchmark's functions still run (on minuscule sizes; nothing is timed)."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_training", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def work(bench):
    X = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    return bench.Workload("tiny", X, (5,), 2, 16, 2)


def test_workloads_have_the_documented_shapes(bench):
    digits = bench.digits_workload(1)
    assert digits.X.shape == (1257, 64) and digits.X.dtype == np.float32
    assert digits.batch_size == 64 and digits.hidden_layer_sizes == (128, 64)
    synthetic = bench.synthetic_workload(1, n_samples=300)
    assert synthetic.X.shape == (300, 100) and synthetic.batch_size == 256
    assert synthetic.hidden_layer_sizes == (256, 128)


def test_fit_comparison_reports_every_contender(bench, work):
    with_skorch = bench.skorch_available()
    results = bench.compare_fit(work, "cpu", repeats=1, with_skorch=with_skorch)
    expected = {"skae", "hand-written"} | ({"skorch"} if with_skorch else set())
    if torch.get_num_threads() > 1:
        expected.add(f"skae, n_threads={torch.get_num_threads()}")
    assert set(results) == expected
    for row in results.values():
        assert row["samples_per_s"] > 0 and math.isfinite(row["final_loss"])


def test_hand_written_loop_trains_the_same_network_as_skae(bench, work):
    _, _, est = bench.fit_skae(work, "cpu")
    model = bench.plain_autoencoder(6, work.hidden_layer_sizes, work.n_components)
    networks = (est.encoder_, est.decoder_)
    skae_shapes = sorted(tuple(p.shape) for net in networks for p in net.parameters())
    assert sorted(tuple(p.shape) for p in model.parameters()) == skae_shapes
    _, loss = bench.fit_hand_written(work, "cpu")
    assert math.isfinite(loss) and loss > 0


def test_transform_comparison_and_memory_check_run(bench, work):
    rates = bench.compare_transform(work, "cpu", rounds=1, round_seconds=0)
    assert set(rates) == {"transform", "bare encoder", "bare, NumPy in/out"}
    assert min(rates.values()) > 0
    memory = bench.measure_memory(500, 4, "cpu")
    assert memory["data"] == 500 * 4 * 4 and memory["ratio"] > 0


@pytest.fixture
def conv_work(bench):
    X = np.random.default_rng(0).uniform(size=(20, 36)).astype(np.float32)
    return bench.ConvWorkload("tiny images", X, (1, 6, 6), 8, 1, conv_channels=(2, 3), hidden_layer_sizes=(4,))


def test_conv_workloads_have_the_documented_shapes(bench):
    digits = bench.conv_digits_workload(1)
    assert digits.X.shape == (1257, 64) and digits.image_shape == (1, 8, 8) and digits.batch_size == 128
    large = bench.images28_workload(1)
    assert large.X.shape == (1257, 784) and large.image_shape == (1, 28, 28) and large.batch_size == 128
    assert 0 <= large.X.min() and large.X.max() <= 1


def test_conv_comparison_trains_the_same_network_as_skae(bench, conv_work):
    results = bench.compare_conv_fit(conv_work, "cpu", repeats=1)
    assert {"skae", "hand-written"} <= set(results)
    for row in results.values():
        assert row["samples_per_s"] > 0 and math.isfinite(row["final_loss"])
    _, _, est = bench.fit_skae_conv(conv_work, "cpu")
    networks = bench.plain_conv_vae(conv_work)
    shapes = sorted(tuple(p.shape) for net in networks for p in net.parameters())
    assert shapes == sorted(tuple(p.shape) for net in (est.encoder_, est.decoder_) for p in net.parameters())


def test_busy_comparison_starts_and_stops_its_busy_process(bench):
    calls = []

    def fit(n_threads="auto"):
        calls.append(n_threads)

    results = bench.compare_busy({"a fit": fit}, repeats=1, baseline=True)
    assert calls == ["auto", "auto", "auto", torch.get_num_threads()]
    assert set(results["a fit"]) == {
        "quiet_s", "busy_s", "quiet_cpu_s", "busy_cpu_s", "busy_torch_threads_s", "busy_torch_threads_cpu_s"
    }
    with bench.BusyProcess() as busy:
        assert busy._process.poll() is None
    assert busy._process.poll() is not None


def test_thread_sweep_times_both_counts(bench):
    before = torch.get_num_threads()
    rows = bench.thread_sweep(sizes=((4, 3),), reps=1)
    assert torch.get_num_threads() == before
    assert set(rows[0]) == {"flops", "quiet_1", "quiet_2", "busy_1", "busy_2"} and rows[0]["flops"] == 72
