"""The CUDA path: runs only where a GPU is present (skipped on CPU-only CI)."""

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from .helpers import ESTIMATORS, tiny

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_and_infer_on_cuda(cls, digits):
    X, _ = digits
    est = tiny(cls, device="cuda", max_iter=20).fit(X)
    assert est.device_.type == "cuda"
    assert next(est.encoder_.parameters()).is_cuda
    codes = est.transform(X)
    assert isinstance(codes, np.ndarray) and np.isfinite(codes).all()
    assert est.transform(X.astype(np.float32)).dtype == np.float32
    assert est.inverse_transform(codes).shape == X.shape
    assert np.isfinite(est.score_samples(X)).all()
    assert est.sample(4, random_state=0).shape == (4, X.shape[1])
    est.partial_fit(X)
    assert est.n_iter_ == 21


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_cuda_and_cpu_start_from_the_same_weights(cls, digits):
    X, _ = digits
    on_gpu = tiny(cls, device="cuda", max_iter=1, learning_rate_init=1e-12).fit(X)
    on_cpu = tiny(cls, device="cpu", max_iter=1, learning_rate_init=1e-12).fit(X)
    for a, b in zip(on_gpu.encoder_.parameters(), on_cpu.encoder_.parameters()):
        assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_gpu_pickle_loads_and_transforms_without_cuda(cls, digits, tmp_path):
    X, _ = digits
    est = tiny(cls, device="cuda", max_iter=10).fit(X)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(est))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", est.transform(X))
    script = textwrap.dedent(
        f"""
        import pickle, numpy as np, torch
        assert not torch.cuda.is_available()
        est = pickle.loads(open({str(path)!r}, "rb").read())
        assert est.device_.type == "cpu"
        X = np.load({str(tmp_path / "X.npy")!r})
        np.testing.assert_allclose(est.transform(X), np.load({str(tmp_path / "expected.npy")!r}),
                                   rtol=1e-6, atol=1e-7)
        est.sample(2, random_state=0)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
