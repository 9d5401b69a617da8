"""Sparse input: rows densified a batch at a time, statistics from the stored entries."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from skae import AutoencoderTransformer
from skae._base import _location_and_scale
from skae._sparse import canonical_csr, location_and_scale, sparse_rows
from skae.engine.batches import SparseRows

from .helpers import ESTIMATORS, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.RandomState(0)
DENSE = np.where(RNG.uniform(size=(30, 7)) > 0.7, RNG.normal(3.0, 2.0, size=(30, 7)), 0.0)
DENSE[:, 4] = 0.0  # a column with no stored entry at all
DENSE[5] = 0.0  # and an empty row


def test_rows_come_out_dense_in_the_requested_order():
    rows = sparse_rows(sp.csr_matrix(DENSE), "cpu", torch.float64)
    order = torch.tensor([5, 0, 29, 3, 3, 17])
    np.testing.assert_array_equal(rows.index_select(0, order).numpy(), DENSE[order.numpy()])
    np.testing.assert_array_equal(rows[4:11].numpy(), DENSE[4:11])
    np.testing.assert_array_equal(rows[25:40].numpy(), DENSE[25:])
    assert rows.shape == DENSE.shape and rows.dtype == torch.float64
    assert rows.nnz == np.count_nonzero(DENSE)


def test_take_keeps_rows_sparse():
    rows = sparse_rows(sp.csc_matrix(DENSE), "cpu", torch.float32)
    order = torch.tensor([9, 5, 2, 2])
    subset = rows.take(order)
    assert isinstance(subset, SparseRows)
    assert subset.nnz == np.count_nonzero(DENSE[order.numpy()])
    np.testing.assert_array_equal(subset[0:4].numpy(), DENSE[order.numpy()].astype(np.float32))


def test_duplicate_entries_are_summed_without_changing_the_input():
    # Row 0 stores column 2 twice (1 + 2): the constructor keeps both entries.
    X = sp.csr_matrix(([1.0, 2.0, 5.0], [2, 2, 0], [0, 2, 3]), shape=(2, 3))
    assert not X.has_canonical_format
    fixed = canonical_csr(X)
    assert len(X.data) == 3  # the caller's matrix is untouched
    np.testing.assert_array_equal(fixed.toarray(), [[0, 0, 3.0], [5.0, 0, 0]])
    rows = sparse_rows(X, "cpu", torch.float64)
    np.testing.assert_array_equal(rows[0:2].numpy(), [[0, 0, 3.0], [5.0, 0, 0]])


def test_statistics_match_the_dense_ones():
    mean, scale = location_and_scale(sp.csr_matrix(DENSE))
    dense_mean, dense_scale = _location_and_scale(DENSE)
    np.testing.assert_allclose(mean, dense_mean, rtol=1e-12, atol=1e-15)
    assert scale == pytest.approx(dense_scale, rel=1e-12)
    assert location_and_scale(sp.csr_matrix((4, 3)))[1] == 1.0  # constant data


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_fit_matches_the_dense_fit(cls, container, dtype):
    # 120 rows in batches of 16: seven full batches and a last one of 8.
    X = np.abs(np.tile(DENSE, (4, 1))).astype(dtype)
    sparse = tiny(cls, batch_size=16, max_iter=3).fit(container(X))
    dense = tiny(cls, batch_size=16, max_iter=3).fit(X)
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-5)
    for method in ("transform", "score_samples"):
        np.testing.assert_allclose(
            getattr(sparse, method)(container(X)), getattr(dense, method)(X), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(getattr(sparse, method)(container(X)), getattr(sparse, method)(X), rtol=1e-12)
    sparse.partial_fit(container(X))
    dense.partial_fit(X)
    np.testing.assert_allclose(sparse.transform(X), dense.transform(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_early_stopping_on_sparse_data(cls):
    X = sp.csr_matrix(np.abs(DENSE))
    model = tiny(cls, early_stopping=True, max_iter=4).fit(X)
    reference = tiny(cls, early_stopping=True, max_iter=4).fit(X.toarray())
    assert len(model.validation_scores_) == len(reference.validation_scores_) == 4
    np.testing.assert_allclose(model.validation_scores_, reference.validation_scores_, rtol=1e-4)


def test_user_encoder_sees_dense_rows():
    encoder = torch.nn.Linear(7, 2)
    model = AutoencoderTransformer(
        encoder=encoder, hidden_layer_sizes=(4,), max_iter=2, random_state=0, device="cpu"
    ).fit(sp.csr_matrix(DENSE))
    assert model.transform(sp.csr_matrix(DENSE)).shape == (30, 2)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sparse_matrix_is_densified_a_batch_at_a_time(cls, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError("the whole sparse matrix was densified")

    for container in (sp.csr_matrix, sp.csc_matrix):
        monkeypatch.setattr(container, "toarray", refuse)
        monkeypatch.setattr(container, "todense", refuse)
    requested = []
    fill = SparseRows._fill  # where every dense block is made

    def recording(self, dense, rows):
        requested.append(int(dense.shape[0]))
        return fill(self, dense, rows)

    monkeypatch.setattr(SparseRows, "_fill", recording)
    # Inference (and the checks after training) in chunks of 50 rows.
    monkeypatch.setattr("skae.engine.inference._ELEMENTS_PER_CHUNK", 7 * 50)
    X = sp.csr_matrix(np.abs(np.tile(DENSE, (4, 1))))  # 120 rows
    model = tiny(cls, batch_size=16, max_iter=2).fit(X)
    model.partial_fit(sp.csc_matrix(X))
    # The pass after training decodes _decoded_rows_per_row rows per row: its chunks are smaller.
    fit_chunk = 50 // model._decoded_rows_per_row  # per instance: it grows with n_components
    assert requested.count(16) == 3 * 7 and fit_chunk in requested
    assert max(requested) == max(16, fit_chunk)
    requested.clear()
    assert model.transform(X).shape == (120, 2)
    assert model.score_samples(X).shape == (120,)
    assert max(requested) == 50 and sum(requested) == 2 * 120
