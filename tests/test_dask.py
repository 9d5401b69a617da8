"""Grid search over skae estimators on a dask.distributed cluster, through joblib."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skae import VAETransformer

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning",
    # The cluster's own shutdown chatter is not ours to test.
    "ignore::DeprecationWarning",
    "ignore::ResourceWarning",
)


def _torch_threads():
    import torch

    return torch.get_num_threads()


def test_grid_search_on_a_local_dask_cluster(digits):
    import joblib

    from skae.engine.threads import TorchThreads

    X = digits[0][:120]
    search = GridSearchCV(
        VAETransformer(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu"),
        {"n_components": [1, 2], "beta": [0.5, 1.0]},
        cv=2,
    )
    local = search.fit(X).cv_results_
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # The nanny starts each worker with OMP_NUM_THREADS=1: one torch thread each.
        assert set(client.run(_torch_threads).values()) == {1}
        client.register_plugin(TorchThreads(2))
        assert set(client.run(_torch_threads).values()) == {2}
        with distributed.get_task_stream(client) as stream:
            with joblib.parallel_config(backend="dask"):
                remote = search.fit(X).cv_results_
        workers = {task["worker"] for task in stream.data}
    assert len(workers) >= 1 and len(stream.data) > 0
    np.testing.assert_allclose(remote["mean_test_score"], local["mean_test_score"], rtol=1e-6)
    assert search.best_params_ in remote["params"]


def test_torch_threads_checks_its_argument():
    from skae.engine.threads import TorchThreads

    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n_threads must be a positive integer"):
            TorchThreads(bad)


def test_dask_ml_incremental_streams_blocks_through_partial_fit():
    wrappers = pytest.importorskip("dask_ml.wrappers")
    da = pytest.importorskip("dask.array")

    X = np.random.RandomState(0).uniform(size=(400, 8))
    blocks = da.from_array(X, chunks=(80, 8))
    incremental = wrappers.Incremental(
        VAETransformer(hidden_layer_sizes=(8,), random_state=0, device="cpu"),
        shuffle_blocks=False,
    ).fit(blocks)
    # One partial_fit per block, in order: the same model as calling it by hand.
    by_hand = VAETransformer(hidden_layer_sizes=(8,), random_state=0, device="cpu")
    for start in range(0, 400, 80):
        by_hand.partial_fit(X[start : start + 80])
    assert incremental.estimator_.n_iter_ == 5
    np.testing.assert_array_equal(incremental.transform(blocks).compute(), by_hand.transform(X))
