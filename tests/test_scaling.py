"""Data that does not come as one in-memory array: streamed chunks and memory-mapped files."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from skae import AutoencoderTransformer, VAETransformer

from .helpers import ESTIMATORS, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scaling.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scaling", _BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_streaming_partial_fit_matches_fit(bench, cls):
    # 30 passes of partial_fit over 5 chunks of digits against fit(max_iter=30),
    # default network; held-out reconstruction MSE (see benchmarks/bench_scaling.py).
    result = bench.streaming_comparison(cls, n_passes=30, n_chunks=5)
    assert result["ratio"] < 1.5, result
    untrained = bench.streaming_comparison(cls, n_passes=1, n_chunks=5)
    # The claim has teeth: one pass is clearly worse than thirty.
    assert untrained["partial_fit"] > 1.2 * result["partial_fit"]


@pytest.fixture
def memmapped(tmp_path):
    rng = np.random.RandomState(0)
    path = tmp_path / "X.f32"
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(300, 6))
    X[:] = rng.standard_normal((300, 6))
    X.flush()
    del X
    return path


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_read_only_memmap_trains_without_a_copy(cls, memmapped, monkeypatch):
    X = np.memmap(memmapped, dtype=np.float32, mode="r", shape=(300, 6))
    seen = []
    import skae.engine.trainer as trainer

    train = trainer.train

    def recording(model, optimizer, data, **kwargs):
        seen.append(data)
        return train(model, optimizer, data, **kwargs)

    monkeypatch.setattr("skae._base.train", recording)
    model = tiny(cls, max_iter=2).fit(X)
    # The trainer read the mapped file itself: no copy was made on the way.
    assert seen[0].data_ptr() == X.ctypes.data and seen[0].dtype == torch.float32
    reference = tiny(cls, max_iter=2).fit(np.array(X))
    np.testing.assert_array_equal(model.transform(X), reference.transform(np.array(X)))
    model.partial_fit(X)
    assert model.n_iter_ == 3


def test_memory_benchmarks_run(bench, tmp_path):
    sparse = bench.measure_sparse(2_000, 50, 0.01)
    assert sparse["nnz"] > 0 and sparse["peak_above_imports"] > 0
    memmap = bench.measure_memmap(2_000, 5, directory=tmp_path)
    assert memmap["data"] == 2_000 * 5 * 4 and math.isfinite(memmap["ratio"])
    dense = bench.measure_dense(2_000, 5)
    assert dense["data"] == 2_000 * 5 * 4 and math.isfinite(dense["ratio"])
