"""The fast paths of inference give exactly what the full paths give.

``transform`` skips scikit-learn's ``validate_data`` for plain finite float
arrays, keeps the lean forward pass of each network and the engine model of
each estimator between calls. These tests pin down that none of it changes a
result, an error or a warning, and that every change to a fitted network or
estimator is seen.
"""

import copy
import gc
import warnings
import weakref
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from skae import _base
from skae.engine.inference import lean_forward

from .helpers import ESTIMATORS, tiny

N_FEATURES = 4


@pytest.fixture(scope="module")
def fitted():
    X = np.random.RandomState(0).uniform(size=(40, N_FEATURES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {cls.__name__: tiny(cls, n_components=2).fit(X) for cls in ESTIMATORS}


def _fitted(cls, X, **params):
    """``tiny(cls, **params).fit(X)``, without the warnings a few epochs raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tiny(cls, **params).fit(X)


def _outcome(fn):
    """What ``fn()`` gives: its result or its error, and the warnings it raises."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("result", fn())
        except Exception as error:  # noqa: BLE001 - the error is what is compared
            result = ("error", type(error), str(error))
    return result, [(w.category, str(w.message)) for w in caught]


def _full_path_outcome(fn):
    with mock.patch.object(_base, "_plain_valid_array", return_value=False):
        return _outcome(fn)


def _assert_same_outcome(fast, full):
    (fast_result, fast_warnings), (full_result, full_warnings) = fast, full
    assert fast_warnings == full_warnings
    assert fast_result[0] == full_result[0]
    if fast_result[0] == "error":
        assert fast_result == full_result
    else:
        got, expected = fast_result[1], full_result[1]
        assert type(got) is type(expected) and got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def _inputs():
    """Arrays of every kind validate_data sees: dtypes, layouts, shapes, values."""
    dtypes = st.sampled_from(
        [np.float32, np.float64, ">f8", "<f4", np.float16, np.int64, np.int8, np.bool_, np.complex128, object]
    )
    shapes = st.one_of(
        st.tuples(st.integers(0, 5), st.sampled_from([N_FEATURES, N_FEATURES - 1, 0])),
        st.tuples(st.integers(0, 4)),
        st.tuples(st.integers(1, 3), st.just(N_FEATURES), st.integers(1, 2)),
    )
    elements = st.floats(allow_nan=True, allow_infinity=True, width=32)
    finite = st.floats(-1e3, 1e3, width=32)
    huge = st.sampled_from([3e38, -3e38, 1e308, np.nan, np.inf, -np.inf, 0.5])

    @st.composite
    def arrays(draw):
        dtype = draw(dtypes)
        shape = draw(shapes)
        values = draw(st.sampled_from([elements, finite, huge]))
        if np.dtype(dtype).kind in "fc":
            with np.errstate(over="ignore"):  # 1e308 as float32 is meant to be infinite
                X = draw(hnp.arrays(np.float64, shape, elements=values)).astype(dtype)
        elif np.dtype(dtype).kind == "O":
            X = draw(hnp.arrays(np.float64, shape, elements=finite)).astype(object)
        else:
            X = draw(hnp.arrays(np.int8, shape)).astype(dtype)
        layout = draw(st.sampled_from(["c", "f", "reversed", "strided", "read-only", "list"]))
        if layout == "f":
            X = np.asfortranarray(X)
        elif layout == "reversed" and X.ndim:
            X = X[::-1]
        elif layout == "strided" and X.ndim == 2:
            X = np.repeat(X, 2, axis=1)[:, ::2]
        elif layout == "read-only":
            X.setflags(write=False)
        elif layout == "list":
            X = X.tolist()
        return X

    return arrays()


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(X=_inputs())
def test_fast_validation_matches_validate_data(fitted, name, X):
    estimator = fitted[name]
    _assert_same_outcome(
        _outcome(lambda: estimator.transform(X)),
        _full_path_outcome(lambda: estimator.transform(X)),
    )


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_fast_validation_matches_validate_data_on_other_containers(fitted, name, tmp_path):
    pd = pytest.importorskip("pandas")
    estimator = fitted[name]
    X = np.random.RandomState(1).uniform(size=(6, N_FEATURES))
    memmap = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=X.shape)
    memmap[:] = X
    for candidate in [
        pd.DataFrame(X, columns=[f"f{i}" for i in range(N_FEATURES)]),
        pd.DataFrame(X),
        sp.csr_matrix(X),
        sp.csr_array(X),
        np.asmatrix(X),
        memmap,
        np.ma.masked_array(X),
        X.astype(np.float32)[:, :, np.newaxis],
        torch.as_tensor(X),
    ]:
        _assert_same_outcome(
            _outcome(lambda candidate=candidate: estimator.transform(candidate)),
            _full_path_outcome(lambda candidate=candidate: estimator.transform(candidate)),
        )


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
def test_plain_float_arrays_skip_validate_data(fitted, name):
    estimator = fitted[name]
    for dtype in (np.float32, np.float64):
        X = np.random.RandomState(3).uniform(size=(5, N_FEATURES)).astype(dtype)
        with mock.patch.object(_base, "validate_data", side_effect=AssertionError("full path")):
            Z = estimator.transform(X)
        _assert_same_outcome(_outcome(lambda Z=Z: Z), _full_path_outcome(lambda X=X: estimator.transform(X)))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fast_validation_keeps_the_feature_names_warning(cls):
    pd = pytest.importorskip("pandas")
    X = np.random.RandomState(0).uniform(size=(30, N_FEATURES))
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(N_FEATURES)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = tiny(cls, n_components=2).fit(frame)
    fast = _outcome(lambda: estimator.transform(X))
    assert any("does not have valid feature names" in message for _, message in fast[1])
    _assert_same_outcome(fast, _full_path_outcome(lambda: estimator.transform(X)))


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
@pytest.mark.parametrize("config", [{"assume_finite": True}, {"array_api_dispatch": False}])
def test_fast_validation_follows_the_configuration(fitted, name, config):
    estimator = fitted[name]
    for X in [np.full((2, N_FEATURES), np.nan), np.ones((3, N_FEATURES), dtype=np.float32)]:
        with sklearn.config_context(**config):
            _assert_same_outcome(
                _outcome(lambda X=X: estimator.transform(X)),
                _full_path_outcome(lambda X=X: estimator.transform(X)),
            )


@pytest.mark.parametrize("name", ["AutoencoderTransformer", "VAETransformer"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_output_dtype_and_layouts(fitted, name, dtype):
    estimator = fitted[name]
    X = np.random.RandomState(2).uniform(size=(7, N_FEATURES)).astype(dtype)
    Z = estimator.transform(X)
    assert Z.dtype == dtype and Z.shape == (7, 2)
    # Other layouts of the same rows (reversed views are copied for torch).
    np.testing.assert_allclose(estimator.transform(X[::-1]), Z[::-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(estimator.transform(np.asfortranarray(X)), Z, rtol=1e-5, atol=1e-6)
    # One reversed row: flagged C-contiguous by NumPy, yet with a negative stride torch refuses.
    np.testing.assert_allclose(estimator.transform(X[:1][::-1]), Z[:1], rtol=1e-5, atol=1e-6)
    # A field of a structured array: strides that are not a multiple of the item size.
    record = np.zeros(X.shape, dtype=[("x", dtype), ("flag", np.uint8)])
    record["x"] = X
    assert record["x"].strides[1] % record["x"].itemsize != 0
    np.testing.assert_allclose(estimator.transform(record["x"]), Z, rtol=1e-5, atol=1e-6)


def _general_path_codes(estimator, X):
    """``transform``'s result by validate_data and the chunked path, never the shortcut."""
    with mock.patch.object(_base._BaseAutoencoder, "_transform_plain_array", return_value=None):
        return estimator.transform(X)


def _converted_copy_codes(estimator, X):
    """The codes by the module's own forward on a copy of the encoder converted to X's dtype."""
    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    encoder = copy.deepcopy(estimator.encoder_).to(dtype)
    with torch.inference_mode():
        out = encoder(torch.from_numpy(X))
    return (out[0] if isinstance(out, tuple) else out).numpy()


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("encoder_dtype", [torch.float32, torch.float64])
def test_plain_float_transform_takes_the_shortcut(cls, dtype, encoder_dtype):
    X = np.random.RandomState(4).uniform(size=(12, N_FEATURES)).astype(dtype)
    estimator = _fitted(cls, X, n_components=2)
    estimator.encoder_.to(encoder_dtype)  # in place: the same parameters, a new dtype
    expected = _general_path_codes(estimator, X)
    with mock.patch.object(_base._BaseAutoencoder, "_apply", side_effect=AssertionError("general path")):
        codes = estimator.transform(X)
    assert codes.dtype == dtype and codes.flags.writeable
    np.testing.assert_array_equal(codes, expected)
    # Computed in X's dtype, as a converted copy of the encoder computes it.
    tolerance = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(codes, _converted_copy_codes(estimator, X), rtol=tolerance, atol=tolerance)


def test_shortcut_returns_the_input_dtype_when_float64_buffers_promote():
    from skae import AutoencoderTransformer
    from skae.engine.networks import Standardize

    X = np.random.RandomState(0).uniform(size=(30, N_FEATURES)).astype(np.float32)
    # A bias-free layer is not folded with the Standardize before it, whose
    # float64 buffers (after .double()) then promote the float32 input.
    encoder = nn.Sequential(Standardize(np.zeros(N_FEATURES), 1.0), nn.Linear(N_FEATURES, 2, bias=False))
    estimator = _fitted(AutoencoderTransformer, X, n_components=2, encoder=encoder)
    estimator.encoder_.double()
    codes = estimator.transform(X)
    assert codes.dtype == np.float32
    np.testing.assert_array_equal(codes, _general_path_codes(estimator, X))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_float64_inference_needs_no_converted_copy_of_the_model(cls):
    X = np.random.RandomState(6).uniform(size=(15, N_FEATURES))
    estimator = _fitted(cls, X, n_components=2)
    model = estimator._engine_model()
    copied = copy.deepcopy(model).to(torch.float64)
    with torch.inference_mode():
        tensor = torch.from_numpy(X)
        expected = {
            "transform": copied.encode(tensor).numpy(),
            "score_samples": copied.score_samples(tensor).numpy(),
        }
        expected["inverse_transform"] = copied.decode(torch.from_numpy(expected["transform"])).numpy()
    with mock.patch("skae.engine.inference.copy.deepcopy", side_effect=AssertionError("converted copy")):
        got = {
            "transform": estimator.transform(X),
            "score_samples": estimator.score_samples(X),
        }
        got["inverse_transform"] = estimator.inverse_transform(got["transform"])
    for method, values in got.items():
        assert values.dtype == np.float64, method
        np.testing.assert_allclose(values, expected[method], rtol=1e-10, atol=1e-12, err_msg=method)


def _more_rows_than_a_chunk(estimator, X, monkeypatch):
    monkeypatch.setattr(_base, "chunk_rows_for", lambda n_features: 4)
    return X


def _codes_overflow_float32(estimator, X, monkeypatch):  # finite in float64, which the general path retries
    layers = [m for m in estimator.encoder_.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        layers[0].weight.fill_(3e38)
        layers[-1].weight.fill_(1e-38)
    return X


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "case", [_more_rows_than_a_chunk, _codes_overflow_float32], ids=lambda case: case.__name__.strip("_")
)
def test_shortcut_leaves_other_cases_to_the_general_path(cls, case, monkeypatch):
    """Inputs and estimator states the shortcut must leave to the general path."""
    X = np.random.RandomState(5).uniform(size=(10, N_FEATURES)).astype(np.float32)
    estimator = _fitted(cls, X, n_components=2)
    X = case(estimator, X, monkeypatch)
    expected = _general_path_codes(estimator, X)
    with mock.patch.object(_base._BaseAutoencoder, "_apply", wraps=estimator._apply) as general:
        codes = estimator.transform(X)
    general.assert_called_once()
    assert np.isfinite(codes).all()
    np.testing.assert_array_equal(codes, expected)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_shortcut_tries_then_leaves_codes_that_overflow_float32(cls, monkeypatch):
    X = np.random.RandomState(5).uniform(size=(10, N_FEATURES)).astype(np.float32)
    estimator = _fitted(cls, X, n_components=2)
    X = _codes_overflow_float32(estimator, X, monkeypatch)
    with mock.patch.object(_base, "lean_forward", wraps=_base.lean_forward) as shortcut:
        codes = estimator.transform(X)
    shortcut.assert_called_once()  # the input passed the shortcut's checks; its codes did not
    assert codes.dtype == np.float32 and np.isfinite(codes).all()


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_transform_runs_global_forward_hooks(cls):
    X = np.random.RandomState(0).uniform(size=(20, N_FEATURES)).astype(np.float32)
    estimator = _fitted(cls, X, n_components=2)
    before = estimator.transform(X)  # builds and keeps the lean forward pass
    calls = []
    handle = nn.modules.module.register_module_forward_hook(lambda module, args, out: calls.append(module))
    try:
        np.testing.assert_allclose(estimator.transform(X), before, rtol=1e-5, atol=1e-6)
    finally:
        handle.remove()
    assert calls  # the modules ran their own forward, hooks and all
    calls.clear()
    estimator.transform(X)
    assert not calls


def _expected_codes(estimator, X):
    with torch.inference_mode():
        out = estimator.encoder_(torch.as_tensor(X, dtype=torch.float32))
    return (out[0] if isinstance(out, tuple) else out).numpy()


def _edits():
    """Changes a user can make to a fitted encoder, each as a function of the encoder."""

    def first_linear(encoder):
        return next(m for m in encoder.modules() if isinstance(m, nn.Linear))

    def standardize(encoder):
        return next(m for m in encoder.modules() if hasattr(m, "scale"))

    def in_place(encoder):
        with torch.no_grad():
            first_linear(encoder).weight.mul_(1.5)

    def through_data(encoder):
        first_linear(encoder).weight.data.add_(0.25)  # invisible to torch's version counters

    def swap_data(encoder):
        layer = first_linear(encoder)
        layer.weight.data = layer.weight.data * -1.0

    def new_parameter(encoder):
        layer = first_linear(encoder)
        layer.bias = nn.Parameter(layer.bias.detach() + 1.0)

    def new_buffer(encoder):
        module = standardize(encoder)
        module.mean = module.mean + 0.5

    def buffer_in_place(encoder):
        standardize(encoder).scale.data.mul_(3.0)

    def load_state(encoder):
        state = {key: value * 0.5 for key, value in encoder.state_dict().items()}
        encoder.load_state_dict(state)

    def new_activation(encoder):
        for module in encoder.modules():
            if isinstance(module, nn.Sequential):
                for index, child in enumerate(module):
                    if isinstance(child, nn.ReLU):
                        module[index] = nn.ELU(alpha=0.5)

    def activation_setting(encoder):
        new_activation(encoder)
        for module in encoder.modules():
            if isinstance(module, nn.ELU):
                module.alpha = 2.0

    def extra_layer(encoder):
        for module in encoder.modules():
            if isinstance(module, nn.Sequential) and isinstance(module[-1], nn.Linear):
                module.insert(len(module) - 1, nn.Tanh())
                return

    return [
        in_place,
        through_data,
        swap_data,
        new_parameter,
        new_buffer,
        buffer_in_place,
        load_state,
        new_activation,
        activation_setting,
        extra_layer,
    ]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("edit", _edits(), ids=lambda edit: edit.__name__)
def test_transform_sees_every_change_to_the_encoder(cls, edit):
    X = np.random.RandomState(0).uniform(size=(30, N_FEATURES)).astype(np.float32)
    estimator = _fitted(cls, X, n_components=2, hidden_layer_sizes=(8, 6))
    before = estimator.transform(X)  # builds and keeps the lean forward pass
    edit(estimator.encoder_)
    after = estimator.transform(X)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, _expected_codes(estimator, X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_transform_runs_hooks_added_after_a_call(cls):
    X = np.random.RandomState(0).uniform(size=(20, N_FEATURES)).astype(np.float32)
    estimator = _fitted(cls, X, n_components=2)
    before = estimator.transform(X)
    linear = next(m for m in estimator.encoder_.modules() if isinstance(m, nn.Linear))
    handle = linear.register_forward_hook(lambda module, args, out: out * 2)
    assert not np.allclose(estimator.transform(X), before)
    handle.remove()
    np.testing.assert_array_equal(estimator.transform(X), before)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_inference_sees_new_attributes_and_refits(cls):
    X = np.random.RandomState(0).uniform(size=(30, N_FEATURES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = tiny(cls, n_components=2).fit(X)
        first = estimator.transform(X), estimator.score_samples(X)
        other = tiny(cls, n_components=2, random_state=1).fit(X)
        estimator.encoder_, estimator.decoder_ = other.encoder_, other.decoder_
        if cls.__name__ == "VAETransformer":
            estimator.observation_variance_ = other.observation_variance_
        np.testing.assert_array_equal(estimator.transform(X), other.transform(X))
        np.testing.assert_array_equal(estimator.score_samples(X), other.score_samples(X))
        estimator.set_params(random_state=2).fit(X)
        refit = tiny(cls, n_components=2, random_state=2).fit(X)
        np.testing.assert_array_equal(estimator.transform(X), refit.transform(X))
        estimator.partial_fit(X)
        assert not np.array_equal(estimator.transform(X), refit.transform(X))
    assert not np.array_equal(first[0], estimator.transform(X))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_inference_caches_keep_nothing_alive(cls):
    X = np.random.RandomState(0).uniform(size=(20, N_FEATURES))
    estimator = _fitted(cls, X, n_components=2)
    estimator.transform(X)
    estimator.inverse_transform(estimator.transform(X))
    references = [weakref.ref(estimator), weakref.ref(estimator.encoder_), weakref.ref(estimator.decoder_)]
    del estimator
    gc.collect()
    assert all(reference() is None for reference in references)


def test_lean_forward_is_kept_per_network_and_rebuilt_on_change():
    network = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.inference_mode():
        first = lean_forward(network)
        assert lean_forward(network) is first
        network.append(nn.Tanh())
        second = lean_forward(network)
        assert second is not first
        x = torch.randn(5, 3)
        torch.testing.assert_close(second(x), network(x))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_float64_inference_survives_a_hook_registered_between_checks(cls, monkeypatch):
    """Another thread may register a forward hook after the model was kept in float32."""
    X = np.random.RandomState(7).uniform(size=(12, N_FEATURES))
    estimator = _fitted(cls, X, n_components=2)
    expected = estimator.score_samples(X), estimator.transform(X)
    real = _base.apply_in_chunks

    def register_then_apply(*args, **kwargs):
        handle = nn.modules.module.register_module_forward_hook(lambda module, args, out: None)
        try:
            return real(*args, **kwargs)
        finally:
            handle.remove()

    monkeypatch.setattr(_base, "apply_in_chunks", register_then_apply)
    np.testing.assert_allclose(estimator.score_samples(X), expected[0], rtol=1e-10, atol=1e-12)
    with mock.patch.object(_base._BaseAutoencoder, "_transform_plain_array", return_value=None):
        np.testing.assert_allclose(estimator.transform(X), expected[1], rtol=1e-10, atol=1e-12)


def test_structure_check_compares_settings_by_identity():
    class Custom(nn.Module):  # an attribute named like an activation setting, of any type
        def __init__(self):
            super().__init__()
            self.alpha = torch.tensor([1.0, 2.0])

        def forward(self, x):
            return x

    network = nn.Sequential(nn.Linear(3, 2), Custom())
    assert lean_forward(network) is None
    network[1].alpha = torch.tensor([1.0, 3.0])  # compared with == this would raise
    assert lean_forward(network) is None
    elu = nn.Sequential(nn.Linear(3, 2), nn.ELU(alpha=0.5))
    assert lean_forward(elu) is not None  # kept with alpha=0.5
    elu[1].alpha = 2.0
    x = torch.randn(4, 3) - 3
    with torch.inference_mode():
        torch.testing.assert_close(lean_forward(elu)(x), elu(x))


def test_lean_pass_returns_once_backward_hooks_are_removed():
    network = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    handle = network.register_full_backward_hook(lambda *args: None)
    assert lean_forward(network) is None
    handle.remove()
    assert lean_forward(network) is not None
    parameter_hook = network[0].weight.register_hook(lambda grad: grad)
    assert lean_forward(network) is not None  # parameter hooks do not act at inference
    parameter_hook.remove()


def test_lean_pass_skips_modules_with_their_own_forward():
    network = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    assert lean_forward(network) is not None
    network[1].forward = lambda x: x * 100
    assert lean_forward(network) is None
    x = torch.randn(4, 3)
    from skae.engine.autoencoders import _infer

    with torch.inference_mode():
        torch.testing.assert_close(_infer(network, x), network(x))


def test_containers_that_are_not_dicts_get_the_module_path():
    import collections.abc

    class Mapping(collections.abc.MutableMapping):
        def __init__(self, items):
            self.data = dict(items)

        def __getitem__(self, key):
            return self.data[key]

        def __setitem__(self, key, value):
            self.data[key] = value

        def __delitem__(self, key):
            del self.data[key]

        def __iter__(self):
            return iter(self.data)

        def __len__(self):
            return len(self.data)

    from skae.engine.autoencoders import _infer

    network = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    assert lean_forward(network) is not None
    network._modules = Mapping(network._modules)  # replaced after the pass was kept
    x = torch.randn(4, 3)
    with torch.inference_mode():
        assert lean_forward(network) is None
        torch.testing.assert_close(_infer(network, x.double()), network.double()(x.double()))
