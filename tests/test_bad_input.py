"""Everything a careless user could pass, on both estimators.

Each bad input must end in a clear ValueError / TypeError / NotFittedError raised
by skae or scikit-learn (never from inside torch), and each merely unusual input
in a correct fit with finite outputs.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from skae import VAETransformer

from .helpers import ESTIMATORS, tiny

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

RNG = np.random.RandomState(0)
X = RNG.uniform(size=(24, 4))


def _not_from_torch(info):
    """The exception was raised by skae or scikit-learn code, not inside torch."""
    path = str(info.traceback[-1].path)
    assert "/torch/" not in path, f"{info.typename} raised inside torch at {path}"
    assert type(info.value).__module__.split(".")[0] != "torch"


def assert_clear_error(fn, exc, match):
    with pytest.raises(exc, match=match) as info:
        fn()
    _not_from_torch(info)


@pytest.fixture(scope="module", params=ESTIMATORS, ids=lambda c: c.__name__)
def fitted(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return tiny(request.param, max_iter=2).fit(X)


# --------------------------------------------------------------- bad data

_with_nan = X.copy()
_with_nan[3, 1] = np.nan
_with_inf = X.copy()
_with_inf[0, 0] = -np.inf
_frame = pd.DataFrame(X, columns=list("abcd"))

BAD_DATA = {
    "nan": (_with_nan, ValueError, "Input X contains NaN"),
    "inf": (_with_inf, ValueError, "Input X contains infinity"),
    "empty_rows": (np.empty((0, 4)), ValueError, "0 sample"),
    "empty_features": (np.empty((24, 0)), ValueError, "0 feature"),
    "strings": (np.array([["a", "b", "c", "d"]] * 3), ValueError, "could not convert string"),
    "complex": (X + 1j, ValueError, "Complex data not supported"),
    "3d": (X.reshape(24, 2, 2), ValueError, r"X has shape \(24, 2, 2\).*expects a 2-D array"),
    "1d": (X[:, 0], ValueError, "Expected 2D array, got 1D"),
    "scalar": (3.0, ValueError, "Expected 2D array, got scalar"),
    "none": (None, ValueError, "Expected 2D array, got scalar"),
    "sparse_nan": (sp.csr_matrix(_with_nan), ValueError, "Input X contains NaN"),
    "sparse_inf": (sp.csc_matrix(_with_inf), ValueError, "Input X contains infinity"),
    "sparse_empty_rows": (sp.csr_matrix((0, 4)), ValueError, "0 sample"),
    "frame_text_column": (_frame.assign(d=["x", "y"] * 12), ValueError, "could not convert string"),
    "frame_categorical": (
        _frame.assign(d=pd.Categorical(["u", "v"] * 12)), ValueError, "could not convert string"
    ),
    "frame_missing": (_frame.astype("Float64").mask(_frame > 0.9), ValueError, "contains NaN"),
    "ragged_list": ([[1.0, 2.0], [3.0]], ValueError, "inhomogeneous|sequence"),
    "object_mixed": (np.array([[1.0, "a"], [2.0, None]], dtype=object), (TypeError, ValueError), "convert|float"),
}


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("name", BAD_DATA)
def test_bad_training_data(cls, name):
    data, exc, match = BAD_DATA[name]
    assert_clear_error(lambda: tiny(cls).fit(data), exc, match)
    assert_clear_error(lambda: tiny(cls).partial_fit(data), exc, match)


@pytest.mark.parametrize("method", ["transform", "score_samples", "score"])
@pytest.mark.parametrize("name", [n for n in BAD_DATA if not n.startswith("empty_features")])
def test_bad_data_after_fit(fitted, method, name):
    data, exc, match = BAD_DATA[name]
    if name.startswith("frame_"):
        # Fitted on an array: scikit-learn warns about the frame's names before it fails.
        with pytest.warns(UserWarning, match="X has feature names, but .* was fitted without"):
            assert_clear_error(lambda: getattr(fitted, method)(data), exc,
                               f"{match}|feature names")
        return
    assert_clear_error(lambda: getattr(fitted, method)(data), exc, match)


@pytest.mark.parametrize("method", ["transform", "score_samples", "partial_fit"])
def test_wrong_number_of_features(fitted, method):
    assert_clear_error(
        lambda: getattr(fitted, method)(X[:, :3]), ValueError, "X has 3 features.*expecting 4"
    )


BAD_CODES = {
    "too_many_columns": (np.zeros((3, 5)), "X has 5 columns.*n_components=2"),
    "too_few_columns": (np.zeros((3, 1)), "X has 1 columns.*n_components=2"),
    "nan": (np.full((3, 2), np.nan), "contains NaN"),
    "inf": (np.full((3, 2), np.inf), "infinity"),
    "1d": (np.zeros(2), "Expected 2D array"),
    "3d": (np.zeros((3, 2, 1)), "dim 3"),
    "empty": (np.zeros((0, 2)), "0 sample"),
    "strings": (np.array([["a", "b"]]), "could not convert string"),
    "sparse": (sp.csr_matrix(np.zeros((3, 2))), "Sparse data"),
}


@pytest.mark.parametrize("name", BAD_CODES)
def test_bad_latent_codes(fitted, name):
    codes, match = BAD_CODES[name]
    exc = TypeError if name == "sparse" else ValueError
    assert_clear_error(lambda: fitted.inverse_transform(codes), exc, match)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bce_needs_data_in_unit_interval(cls):
    for data in (X * 2, X - 0.5):
        assert_clear_error(
            lambda data=data: tiny(cls, reconstruction_loss="bce").fit(data), ValueError,
            r'"bce" needs data in \[0, 1\].*MinMaxScaler',
        )
    model = tiny(cls, reconstruction_loss="bce").fit(X)
    assert_clear_error(lambda: model.score_samples(X * 2), ValueError, r"needs data in \[0, 1\]")
    assert np.isfinite(model.transform(X * 2)).all()  # encoding needs no likelihood


# Sparse input used to be refused with a TypeError; it is now supported (issue 7).
SPARSE_FORMATS = [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.lil_matrix]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("container", SPARSE_FORMATS, ids=lambda c: c.__name__)
def test_sparse_input_works(cls, container):
    sparse = container(np.where(X > 0.5, X, 0.0))
    dense = sparse.toarray()

    # The standardising statistics come from the stored entries, so the two fits
    # agree to rounding rather than bit for bit.
    def same(actual, desired):
        np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-6)

    model = tiny(cls, max_iter=2).fit(sparse)
    reference = tiny(cls, max_iter=2).fit(dense)
    same(model.transform(sparse), reference.transform(dense))
    same(model.score_samples(sparse), reference.score_samples(dense))
    same(model.score(sparse), reference.score(dense))
    np.testing.assert_allclose(model.score_samples(sparse), model.score_samples(dense), rtol=1e-12)
    same(tiny(cls, max_iter=2).fit_transform(sparse), reference.transform(dense))
    model.partial_fit(sparse)
    reference.partial_fit(dense)
    same(model.transform(dense), reference.transform(dense))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sparse_input_range_checks(cls):
    too_large = sp.csr_matrix(np.where(X > 0.5, X, 0.0) * 1e16)
    assert_clear_error(
        lambda: tiny(cls).fit(too_large), ValueError, r"as large as 9.88e\+15.*<= 1e\+15"
    )
    negative = sp.csr_matrix(np.where(X > 0.5, -X, 0.0))
    assert_clear_error(
        lambda: tiny(cls, reconstruction_loss="bce").fit(negative), ValueError,
        r'"bce" needs data in \[0, 1\]',
    )
    model = tiny(cls, reconstruction_loss="bce").fit(sp.csr_matrix(X))
    assert_clear_error(
        lambda: model.score_samples(sp.csr_matrix(X * 2)), ValueError, r"needs data in \[0, 1\]"
    )


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sparse_input_refused_by_convolutions(cls):
    conv = tiny(cls, architecture="conv", conv_channels=(2,), image_shape=(2, 2))
    assert_clear_error(lambda: conv.fit(sp.csr_matrix(X)), TypeError, "Sparse data was passed")
    conv.fit(X)
    assert_clear_error(
        lambda: conv.transform(sp.csr_matrix(X)), TypeError, "Sparse data was passed"
    )


# ------------------------------------------------------------ bad parameters

BAD_PARAMS = [
    ("n_components", 0, "n_components"), ("n_components", 2.5, "n_components"),
    ("n_components", "2", "n_components"), ("hidden_layer_sizes", (0,), "positive integers"),
    ("hidden_layer_sizes", (3.5,), "positive integers"), ("hidden_layer_sizes", (True,), "positive integers"),
    ("hidden_layer_sizes", -2, "hidden_layer_sizes"), ("hidden_layer_sizes", "abc", "hidden_layer_sizes"),
    ("hidden_layer_sizes", (10**12,), "need .* parameters.*smaller hidden layers"),
    ("activation", "swish", "activation"), ("activation", None, "activation"),
    ("reconstruction_loss", "l1", "reconstruction_loss"), ("batch_size", 0, "batch_size"),
    ("batch_size", 2.5, "batch_size"), ("batch_size", "big", "batch_size"),
    ("learning_rate_init", 0, "learning_rate_init"), ("learning_rate_init", -1e-3, "learning_rate_init"),
    ("learning_rate_init", float("nan"), "learning_rate_init"),
    ("learning_rate_init", float("inf"), "learning_rate_init"), ("max_iter", 0, "max_iter"),
    ("max_iter", 1.5, "max_iter"), ("tol", -1, "tol"), ("tol", float("nan"), "tol"),
    ("early_stopping", "yes", "early_stopping"), ("validation_fraction", 0.0, "validation_fraction"),
    ("validation_fraction", 1.0, "validation_fraction"), ("n_iter_no_change", 0, "n_iter_no_change"),
    ("random_state", "seed", "random_state"), ("random_state", -1, "random_state"),
    ("verbose", -1, "verbose"), ("warm_start", "no", "warm_start"),
]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("param, value, match", BAD_PARAMS, ids=lambda v: repr(v)[:20])
def test_bad_parameter_values(cls, param, value, match):
    assert_clear_error(lambda: tiny(cls, **{param: value}).fit(X), ValueError, match)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), "1"])
def test_bad_beta(value):
    assert_clear_error(lambda: tiny(VAETransformer, beta=value).fit(X), ValueError, "beta")


BAD_DEVICES = [
    ("cuda", "CUDA is not available|has 1 CUDA"), ("cuda:7", "CUDA is not available|CUDA device"),
    ("tpu", "not a device name torch understands|not supported"), ("gpu", "not a device name"),
    ("", "not a device name"), (3, "'device' parameter.*str.*torch.device"),
    (None, "'device' parameter"), ("mps", "MPS is not available"),
]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("device, match", BAD_DEVICES, ids=lambda v: repr(v))
def test_unknown_or_unavailable_device(cls, device, match):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    assert_clear_error(lambda: tiny(cls, device=device).fit(X), ValueError, match)


@pytest.mark.parametrize("n_samples", [-1, 0, 2.0, 2.5, True, "3", None, np.float64(4)])
def test_bad_sample_counts(fitted, n_samples):
    assert_clear_error(lambda: fitted.sample(n_samples), ValueError, "n_samples must be a positive integer")


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "call",
    ["transform", "inverse_transform", "score_samples", "score", "sample", "get_feature_names_out"],
)
def test_use_before_fit(cls, call):
    args = {"sample": (), "get_feature_names_out": (), "inverse_transform": (X[:, :2],)}
    assert_clear_error(
        lambda: getattr(cls(), call)(*args.get(call, (X,))), NotFittedError, "not fitted yet"
    )


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_early_stopping_needs_two_samples(cls):
    assert_clear_error(
        lambda: tiny(cls, early_stopping=True).fit(X[:1]), ValueError, "at least 2 samples"
    )
    assert_clear_error(
        lambda: tiny(cls, early_stopping=True).partial_fit(X), ValueError, "early_stopping"
    )


# ----------------------------------------------------- unusual but valid data

_readonly = X.copy()
_readonly.flags.writeable = False
_memmap_like = np.lib.stride_tricks.as_strided(X, writeable=False)

ACCEPTED = {
    "read_only": (_readonly, np.float64),
    "read_only_view": (_memmap_like, np.float64),
    "fortran_order": (np.asfortranarray(X), np.float64),
    "strided_rows": (np.repeat(X, 2, axis=0)[::2], np.float64),
    "strided_columns": (np.repeat(X, 2, axis=1)[:, ::2], np.float64),
    "float32": (X.astype(np.float32), np.float32),
    "float16": (X.astype(np.float16), np.float64),
    "integers": ((X * 10).astype(np.int64), np.float64),
    "uint8_image_like": ((X * 255).astype(np.uint8), np.float64),
    "booleans": (X > 0.5, np.float64),
    "python_list": (X.tolist(), np.float64),
    "tuple_of_tuples": (tuple(map(tuple, X)), np.float64),
    "numeric_frame": (_frame, np.float64),
    "nullable_float_frame": (_frame.astype("Float64"), np.float64),
    "one_sample": (X[:1], np.float64),
    "two_samples": (X[:2], np.float64),
    "one_feature": (X[:, :1], np.float64),
    "constant_features": (np.ones((24, 4)), np.float64),
    "one_constant_feature": (np.c_[X[:, :3], np.full(24, 7.0)], np.float64),
    "all_zero": (np.zeros((24, 4)), np.float64),
    "duplicated_rows": (np.repeat(X[:3], 8, axis=0), np.float64),
    "large_scale": (X * 1e12, np.float64),
    "tiny_scale": (X * 1e-12, np.float64),
    "wide": (RNG.uniform(size=(6, 40)), np.float64),
}


def _check_fitted_finite(est, data, out_dtype):
    n_rows = len(data)
    Z = est.transform(data)
    assert Z.shape == (n_rows, est.n_components_) and Z.dtype == out_dtype
    assert np.isfinite(Z).all()
    X_back = est.inverse_transform(Z)
    assert X_back.shape == (n_rows, est.n_features_in_) and np.isfinite(X_back).all()
    scores = est.score_samples(data)
    assert scores.shape == (n_rows,) and np.isfinite(scores).all()
    assert np.isfinite(est.score(data))
    assert np.isfinite(est.sample(3, random_state=0)).all()
    assert len(est.loss_curve_) == est.n_iter_ and all(np.isfinite(est.loss_curve_))


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("name", ACCEPTED)
def test_unusual_but_valid_data_fits_with_finite_outputs(cls, name):
    data, out_dtype = ACCEPTED[name]
    est = tiny(cls, max_iter=3).fit(data)
    _check_fitted_finite(est, data, out_dtype)
    if name.startswith("read_only"):
        assert not data.flags.writeable


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_batch_size_larger_than_n_samples_is_clipped_with_a_warning(cls):
    with pytest.warns(UserWarning, match="batch_size=100 is larger than the 24 samples"):
        est = tiny(cls, batch_size=100).fit(X)
    _check_fitted_finite(est, X, np.float64)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_more_components_than_features(cls):
    est = tiny(cls, n_components=6).fit(X)
    _check_fitted_finite(est, X, np.float64)


# ------------------------------------------------------- property-based tests

_DTYPES = {"float64": np.float64, "float32": np.float32, "int64": np.int64, "float16": np.float16}


@settings(max_examples=15, deadline=None)
@given(
    cls=st.sampled_from(ESTIMATORS),
    n_samples=st.integers(1, 30),
    n_features=st.integers(1, 6),
    n_components=st.integers(1, 3),
    dtype=st.sampled_from(sorted(_DTYPES)),
    log_scale=st.integers(-8, 12),
    offset=st.floats(-1e3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_any_shape_dtype_and_scale_fits_to_finite_outputs(
    cls, n_samples, n_features, n_components, dtype, log_scale, offset, seed
):
    rng = np.random.RandomState(seed)
    data = rng.standard_normal((n_samples, n_features)) * 10.0**log_scale + offset
    if dtype == "float16":
        data = np.clip(data, -6e4, 6e4)
    data = data.astype(_DTYPES[dtype])
    est = tiny(cls, n_components=n_components, hidden_layer_sizes=(4,), max_iter=2)
    est.fit(data)
    out_dtype = np.float32 if dtype == "float32" else np.float64
    _check_fitted_finite(est, data, out_dtype)
    np.testing.assert_array_equal(est.transform(data), est.transform(data))


@settings(max_examples=15, deadline=None)
@given(
    cls=st.sampled_from(ESTIMATORS),
    shape=st.tuples(st.integers(1, 12), st.integers(1, 5)),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    where=st.tuples(st.integers(0, 11), st.integers(0, 4)),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_any_non_finite_value_is_refused(cls, shape, bad, where, dtype):
    data = np.zeros(shape, dtype=dtype)
    data[where[0] % shape[0], where[1] % shape[1]] = bad
    match = "NaN" if np.isnan(bad) else "infinity"
    assert_clear_error(lambda: tiny(cls).fit(data), ValueError, match)
