"""The plain-data state behind pickle, joblib, copy, skops and .skae files (skae._state)."""

import ast
import copy
import copyreg
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.mixture import GaussianMixture

import skae
from skae import AutoencoderTransformer, VAETransformer
from skae._state import STATE_VERSION, InvalidStateError

from .helpers import ESTIMATORS, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_PLAIN = (type(None), bool, int, float, str)


def _assert_plain(value, where="state"):
    """Only dicts with string keys, lists, plain scalars and numeric NumPy arrays."""
    if type(value) is dict:
        for key, item in value.items():
            assert type(key) is str, f"{where} has key {key!r}"
            _assert_plain(item, f"{where}[{key!r}]")
    elif type(value) is list:
        for i, item in enumerate(value):
            _assert_plain(item, f"{where}[{i}]")
    elif type(value) is np.ndarray:
        assert value.dtype.kind in "biuf", f"{where} is an array of {value.dtype}"
    else:
        assert type(value) in _PLAIN, f"{where} is a {type(value).__name__}"


def _assert_same_outputs(loaded, est, X):
    assert type(loaded) is type(est) and loaded.get_params().keys() == est.get_params().keys()
    Z = est.transform(X)
    assert_array_equal(loaded.transform(X), Z)
    assert_array_equal(loaded.inverse_transform(Z), est.inverse_transform(Z))
    assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    assert_array_equal(loaded.sample(5, random_state=1), est.sample(5, random_state=1))


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("params", [{}, dict(architecture="conv", conv_channels=(2,), image_shape=(1, 8, 8))])
def test_state_is_plain_data_and_restores_exactly(cls, params, digits, tmp_path):
    X = digits[0][:80]
    est = tiny(cls, random_state=np.random.RandomState(3), **params).fit(X)
    state = est.__getstate__()
    _assert_plain(state)
    assert state["skae_state"] == STATE_VERSION
    assert set(state) == {"skae_state", "params", "attributes", "networks", "optimizer"}
    assert state["params"].keys() == est.get_params().keys()
    assert all(isinstance(weights, np.ndarray) for net in state["networks"].values() for weights in net.values())
    assert state["attributes"]["device_"] == {"__skae__": "device", "value": "cpu"}
    # The state is a copy: training the estimator further leaves it as it was.
    before = copy.deepcopy(state)
    est.partial_fit(X)
    assert_array_equal(state["networks"]["encoder_"]["0.mean"], before["networks"]["encoder_"]["0.mean"])
    joblib.dump(est, tmp_path / "m.joblib")
    for route in ("pickle", "joblib", "joblib memmap", "deepcopy", "copy"):
        if route == "pickle":
            loaded = pickle.loads(pickle.dumps(est))
        elif route.startswith("joblib"):
            # With mmap_mode, joblib hands the arrays over as read-only memmaps.
            loaded = joblib.load(tmp_path / "m.joblib", mmap_mode="r" if "memmap" in route else None)
        else:
            loaded = getattr(copy, route)(est)
        _assert_same_outputs(loaded, est, X)
        assert loaded._random_state is loaded.random_state  # one object, as in the original
        assert loaded.encoder_ is not est.encoder_
        # Training continues identically from the restored optimiser and random state.
        twin = copy.deepcopy(est)
        twin.partial_fit(X)
        loaded.partial_fit(X)
        assert_array_equal(loaded.transform(X), twin.transform(X))
        assert loaded.loss_curve_ == twin.loss_curve_


def test_unfitted_state_has_no_networks():
    est = VAETransformer(n_components=3, hidden_layer_sizes=[5], device=torch.device("cpu"))
    state = est.__getstate__()
    _assert_plain(state)
    assert state["networks"] is None and state["optimizer"] is None and state["attributes"] == {}
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.get_params() == est.get_params() and loaded.device == torch.device("cpu")


def test_values_with_tags_round_trip(X_small):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_small, columns=list("abcde"))
    est = tiny(
        AutoencoderTransformer, hidden_layer_sizes=(np.int64(7),), device=torch.device("cpu"),
        latent_sampler=GaussianMixture(2, covariance_type="diag", random_state=4),
    ).set_output(transform="pandas").fit(frame)
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.hidden_layer_sizes == (7,) and type(loaded.hidden_layer_sizes[0]) is np.int64
    assert loaded.latent_sampler.get_params() == est.latent_sampler.get_params()
    assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    assert loaded.feature_names_in_.dtype == est.feature_names_in_.dtype
    assert list(loaded.transform(frame).columns) == list(est.get_feature_names_out())
    assert_array_equal(loaded.sample(4, random_state=0), est.sample(4, random_state=0))


def test_float64_networks_keep_their_dtype(X_small):
    est = tiny(AutoencoderTransformer).fit(X_small)
    est.encoder_.double()
    est.decoder_.double()
    loaded = pickle.loads(pickle.dumps(est))
    assert next(loaded.encoder_.parameters()).dtype == torch.float64
    _assert_same_outputs(loaded, est, X_small)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_user_networks_keep_working_with_pickle_and_say_what_else_cannot(cls, X_small, tmp_path):
    n_out = 4 if cls is VAETransformer else 2
    encoder = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, n_out))
    est = tiny(cls, encoder=encoder).fit(X_small)
    state = est.__getstate__()
    assert type(state["networks"]["encoder_"]).__name__ == "PickleOnly"
    assert isinstance(state["networks"]["decoder_"]["0.0.weight"], np.ndarray)  # skae's own decoder
    loaded = pickle.loads(pickle.dumps(est))
    _assert_same_outputs(loaded, est, X_small)
    assert isinstance(loaded.encoder, torch.nn.Sequential) and loaded.encoder is not est.encoder
    with pytest.raises(TypeError, match="parameter 'encoder' holds a user-supplied torch module.*only pickle"):
        est.save(tmp_path / "m.skae")


def test_gpu_trained_state_restores_on_the_cpu(X_small):
    est = tiny(VAETransformer).fit(X_small)
    state = est.__getstate__()
    state["attributes"]["device_"] = {"__skae__": "device", "value": "cuda:0"}
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    loaded = VAETransformer.__new__(VAETransformer)
    loaded.__setstate__(state)
    assert loaded.device_ == torch.device("cpu")
    _assert_same_outputs(loaded, est, X_small)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s.clear(), "not a skae VAETransformer's.*refit"),
        (lambda s: s.update(skae_state=STATE_VERSION + 1), "layout version 2"),
        (lambda s: s["params"].update(beta=-1.0), "invalid parameters.*beta"),
        (lambda s: s["attributes"].update(fit=1), "attribute 'fit' is not"),
        (lambda s: s["attributes"].update(n_iter_=object()), "attribute 'n_iter_' holds a object"),
        (lambda s: s["attributes"].update(n_iter_=np.array(["x"], dtype=object)), "array of dtype object"),
        (lambda s: s["networks"]["decoder_"].update({"0.0.weight": np.zeros((3, 3))}), "does not match"),
        (lambda s: s["networks"]["encoder_"].update({"0.mean": np.zeros(5, np.int64)}), "not float32"),
        (lambda s: s.update(optimizer=[1]), "optimizer state must be a dict"),
        (lambda s: s["attributes"].update(device_="cuda"), "'device_' must be a torch.device"),
        # Arrays where a plain value belongs: checked by type before any comparison.
        (lambda s: s["optimizer"]["param_groups"][0].update(fused=np.ones(2)), "fused=array"),
        (lambda s: s["optimizer"]["param_groups"][0].update(eps=np.ones(2)), "eps=array"),
        (lambda s: s["optimizer"]["param_groups"][0].update(params=[np.ones(2)] * 8), "parameters in order"),
        (lambda s: s["attributes"].update(best_validation_score_=np.ones(2)), "best_validation_score_"),
        (lambda s: s["networks"]["encoder_"].update({1: np.zeros(5, np.float32)}), "weights named 1"),
        (lambda s: s["optimizer"]["state"].update(items={"ab": 1}), "not a list of \\(key, value\\) pairs"),
        # Values that reach native code or fail deep inside: checked against the network.
        (
            lambda s: s["optimizer"]["state"]["items"][0][1]["exp_avg"].update(array=np.zeros(0, np.float32)),
            r"entry 0 has 'exp_avg' of shape \(0,\)",
        ),
        (lambda s: s["optimizer"]["state"]["items"][1][1]["step"].update(array=np.array(-2, np.float32)), "entry 1"),
        (lambda s: s["optimizer"]["param_groups"][0].update(amsgrad=True), "amsgrad=True"),
        (
            lambda s: s["attributes"]["_random_state"]["state"]["state"].update(pos=10**6),
            r"\['pos'\] must be an integer in \[0, 624\]",
        ),
        (lambda s: s["attributes"].update(n_features_in_=10**12), "declares n_features_in_ = 1000000000000"),
        (lambda s: s["attributes"].update(_data_scale=0.0), "'_data_scale' must be positive"),
        (lambda s: s["attributes"].update(observation_variance_=None), "'observation_variance_' must be a finite"),
        (lambda s: s["attributes"].update(n_iter_=7), "'loss_curve_' has 5 entries, but n_iter_=7"),
        (lambda s: s["attributes"].pop("loss_curve_"), "lacks the fitted attribute 'loss_curve_'"),
        (lambda s: s["attributes"].update(_payload="cos\nsystem\n"), "'_payload' is not an attribute skae stores"),
        (lambda s: s["attributes"].update(n_iter_=_nested(40)), "nests values more than 32 levels deep"),
        (lambda s: s.update(networks=None, optimizer=None), "not an attribute skae stores for an unfitted"),
    ],
)
def test_invalid_states_are_refused(edit, match, X_small):
    state = tiny(VAETransformer).fit(X_small).__getstate__()
    edit(state)
    target = VAETransformer(n_components=7)
    with pytest.raises(InvalidStateError, match=match):
        target.__setstate__(state)
    assert target.n_components == 7 and not hasattr(target, "encoder_")  # left as it was


def _nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


class _Tampered:
    """Pickles as a VAETransformer whose state is ``state``: what a crafted pickle would hold."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return (copyreg._reconstructor, (VAETransformer, object, None), self.state)


def test_pickle_and_joblib_check_the_state_they_restore(X_small, tmp_path):
    state = tiny(VAETransformer).fit(X_small).__getstate__()
    state["optimizer"]["state"]["items"][0][1]["exp_avg_sq"]["array"] = np.zeros((5, 16), np.float32)
    data = pickle.dumps(_Tampered(state))
    with pytest.raises(InvalidStateError, match="'exp_avg_sq' of shape \\(5, 16\\)"):
        pickle.loads(data)
    joblib.dump(_Tampered(state), tmp_path / "m.joblib")
    with pytest.raises(InvalidStateError, match="'exp_avg_sq' of shape \\(5, 16\\)"):
        joblib.load(tmp_path / "m.joblib")


def test_a_state_with_input_checks_but_no_networks_restores(X_small):
    """An estimator that knows its input but has no networks yet (what validate_data leaves
    mid-fit) still pickles; a fit that fails is undone whole, so it leaves no such state."""
    est = tiny(AutoencoderTransformer, reconstruction_loss="bce")
    with pytest.raises(ValueError, match="needs data in"):
        est.fit(X_small * 2)
    assert not hasattr(est, "n_features_in_")
    est.n_features_in_ = 5
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.n_features_in_ == 5 and not hasattr(loaded, "encoder_")


def _module_level_imports(path, package):
    """The skae modules that ``path`` imports when it loads (imports inside functions excluded)."""
    here = path.relative_to(package.parent).with_suffix("").parts
    if here[-1] == "__init__":
        here = here[:-1]
    targets = set()
    for node in ast.parse(path.read_text()).body:
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = here[: len(here) - node.level + (path.name == "__init__.py")]
        if node.module:
            targets.add(".".join((*base, node.module)))
        else:
            targets |= {".".join((*base, alias.name)) for alias in node.names}
    return targets


def test_no_import_circle_between_the_estimators_and_their_state():
    """No skae module imports itself through others (the circle _state replaced), and _state
    never needs the estimator modules."""
    package = Path(skae.__file__).parent
    modules = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = _module_level_imports(path, package)
    assert not modules["skae._state"] & {"skae._base", "skae.autoencoder", "skae.vae"}
    assert "skae.autoencoder" in modules["skae.persistence"]  # the walk sees imports

    def reaches(start, goal, seen):
        for target in modules.get(start, ()):
            if target == goal or (target not in seen and not seen.add(target)
                                  and reaches(target, goal, seen)):
                return True
        return False

    circles = [name for name in modules if reaches(name, name, set())]
    assert not circles, circles

class _UsersAutoencoder(AutoencoderTransformer):
    """A user's subclass (module level, so that pickle can find it)."""


class _UsersVAE(VAETransformer):
    """A user's subclass (module level, so that pickle can find it)."""


@pytest.mark.parametrize("cls", [_UsersAutoencoder, _UsersVAE])
def test_a_users_subclass_pickles_and_copies_once_fitted(cls, X_small):
    est = tiny(cls).fit(X_small)
    for copied in (pickle.loads(pickle.dumps(est)), copy.deepcopy(est)):
        assert type(copied) is cls
        assert_array_equal(copied.transform(X_small), est.transform(X_small))
