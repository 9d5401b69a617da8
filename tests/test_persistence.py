"""est.save / skae.load: a round trip that is exact, and a loader that runs no code."""

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import safetensors.numpy
import torch
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skae
from skae import AutoencoderTransformer, VAETransformer, _schema, persistence
from skae.persistence import FORMAT_VERSION

from .helpers import ESTIMATORS, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

MARKER_NAME = "payload_ran.txt"


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _header(data):
    size = int.from_bytes(data[:8], "little")
    return size, json.loads(data[8 : 8 + size])


def _with_header(data, header):
    """The file ``data`` with its JSON header replaced (tensor bytes kept)."""
    size, _ = _header(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def _edit_document(data, edit, seal=True):
    """``data`` with ``edit`` applied to its JSON document.

    Sealed (the default), the checksum is computed again, as an attacker can,
    so that the edit reaches the checks behind it; else it is left as it was.
    """
    _, header = _header(data)
    document = json.loads(header["__metadata__"]["skae"])
    edit(document)
    if seal:  # with the arrays the edited document still refers to
        arrays = safetensors.numpy.load(data)
        return persistence._file_bytes(document, {name: arrays[name] for name in _tensor_refs(document)})
    header["__metadata__"]["skae"] = json.dumps(document)
    return _with_header(data, header)


def _tensor_refs(value):
    if type(value) is list:
        return [name for item in value for name in _tensor_refs(item)]
    if type(value) is not dict:
        return []
    if value.get("__skae__") == "ndarray":
        return [value["tensor"]]
    return [name for item in value.values() for name in _tensor_refs(item)]


def _edit_state(data, edit):
    """``data`` with ``edit`` applied to the estimator's state in its JSON document."""
    return _edit_document(data, lambda document: edit(document["state"]))


@pytest.fixture
def fitted_file(tmp_path, X_small):
    def make(cls, **params):
        est = tiny(cls, **params).fit(X_small)
        path = tmp_path / f"{cls.__name__}.skae"
        est.save(path)
        return est, path

    return make


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_round_trip_is_exact(cls, loss, fitted_file, X_small):
    est, path = fitted_file(cls, reconstruction_loss=loss, hidden_layer_sizes=[6, 4])
    loaded = skae.load(path)
    assert type(loaded) is cls
    assert loaded.get_params() == est.get_params()
    assert_array_equal(loaded.transform(X_small), est.transform(X_small))
    assert_array_equal(loaded.transform(X_small.astype(np.float32)), est.transform(X_small.astype(np.float32)))
    Z = est.transform(X_small)
    assert_array_equal(loaded.inverse_transform(Z), est.inverse_transform(Z))
    assert_array_equal(loaded.score_samples(X_small), est.score_samples(X_small))
    assert_array_equal(loaded.sample(6, random_state=3), est.sample(6, random_state=3))
    assert loaded.n_iter_ == est.n_iter_ and loaded.loss_curve_ == est.loss_curve_
    assert loaded.best_loss_ == est.best_loss_ and loaded.n_features_in_ == est.n_features_in_
    assert loaded._fitted_architecture == est._fitted_architecture
    assert loaded.device_ == torch.device("cpu")
    if cls is AutoencoderTransformer:
        assert_array_equal(loaded.latent_mean_, est.latent_mean_)
        assert_array_equal(loaded.latent_covariance_, est.latent_covariance_)
    else:
        assert loaded.observation_variance_ == est.observation_variance_
        assert loaded._min_observation_variance == est._min_observation_variance
    # The optimiser and random state are saved too: training continues identically.
    est.partial_fit(X_small)
    loaded.partial_fit(X_small)
    assert_array_equal(loaded.transform(X_small), est.transform(X_small))
    assert loaded.loss_curve_ == est.loss_curve_


def test_feature_names_params_and_output_config_round_trip(tmp_path, X_small):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X_small, columns=list("abcde"))
    est = tiny(
        VAETransformer, hidden_layer_sizes=(np.int64(7),), device=torch.device("cpu"),
        random_state=np.random.RandomState(2), beta=0.5, early_stopping=True,
    ).set_output(transform="pandas").fit(frame)
    est.save(tmp_path / "m.skae")
    loaded = skae.load(str(tmp_path / "m.skae"))
    assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
    assert loaded.device == torch.device("cpu") and loaded.beta == 0.5
    assert loaded.hidden_layer_sizes == (7,) and type(loaded.hidden_layer_sizes[0]) is np.int64
    assert loaded.validation_scores_ == est.validation_scores_
    assert loaded._random_state is loaded.random_state  # as in the original
    out = loaded.transform(frame)
    assert list(out.columns) == list(est.get_feature_names_out())
    assert_array_equal(out.to_numpy(), est.transform(frame).to_numpy())


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_unfitted_estimator_round_trips_its_parameters(cls, tmp_path):
    est = cls(n_components=3, hidden_layer_sizes=[5], learning_rate_init=0.01)
    est.save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    assert type(loaded) is cls and loaded.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        loaded.transform(np.zeros((2, 3)))


def test_gpu_trained_model_loads_on_the_cpu(fitted_file, monkeypatch, X_small):
    est, path = fitted_file(AutoencoderTransformer)
    data = _edit_state(
        path.read_bytes(),
        lambda state: state["attributes"].update(device_={"__skae__": "device", "value": "cuda:0"}),
    )
    path.write_bytes(data)
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    loaded = skae.load(path)
    assert loaded.device_ == torch.device("cpu")
    assert_array_equal(loaded.transform(X_small), est.transform(X_small))
    with pytest.raises(ValueError, match="CUDA is not available"):
        skae.load(path, device="cuda")


def test_file_records_versions(fitted_file):
    _, path = fitted_file(VAETransformer)
    _, header = _header(path.read_bytes())
    document = json.loads(header["__metadata__"]["skae"])
    assert document["format_version"] == FORMAT_VERSION
    assert document["skae_version"] == skae.__version__
    assert document["torch_version"] == torch.__version__
    assert document["class"] == "VAETransformer"


def test_unstorable_parameter_is_a_clear_error(tmp_path):
    est = AutoencoderTransformer()
    est.device = torch.nn.Linear(2, 2)  # what a user module parameter would look like
    with pytest.raises(TypeError, match="parameter 'device' holds a .*Linear.*only pickle and joblib"):
        est.save(tmp_path / "m.skae")
    assert os.listdir(tmp_path) == []  # nothing half-written left behind


# ------------------------------------------------------------ refused files


def _assert_refused(path, match, marker):
    with pytest.raises(ValueError, match=match):
        skae.load(path)
    assert not marker.exists(), "loading ran code from the file"


def test_plain_pickle_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / MARKER_NAME
    payload = pickle.dumps(_Payload(str(marker)))
    control = tmp_path / "control.txt"
    pickle.loads(pickle.dumps(_Payload(str(control))))
    assert control.exists()  # the payload does run when unpickled
    for name, data in {
        "pickle.skae": payload,
        "torch.skae": _torch_pickle(_Payload(str(marker)), tmp_path),
        "joblib.skae": _joblib_bytes(_Payload(str(marker)), tmp_path),
    }.items():
        (tmp_path / name).write_bytes(data)
        _assert_refused(tmp_path / name, "not a skae model file", marker)


def _torch_pickle(obj, tmp_path):
    torch.save({"weights": obj}, tmp_path / "t.pt")
    return (tmp_path / "t.pt").read_bytes()


def _joblib_bytes(obj, tmp_path):
    joblib.dump(obj, tmp_path / "j.joblib")
    return (tmp_path / "j.joblib").read_bytes()


@pytest.mark.parametrize(
    "plant",
    ["document", "attribute", "parameter", "typed_value", "tensor_bytes", "header_field"],
)
def test_planted_pickle_payload_is_refused_and_runs_nothing(plant, fitted_file, tmp_path):
    marker = tmp_path / MARKER_NAME
    payload = pickle.dumps(_Payload(str(marker)), protocol=0).decode("latin-1")
    _, path = fitted_file(AutoencoderTransformer)
    data = path.read_bytes()
    size, header = _header(data)
    if plant == "document":
        header["__metadata__"]["skae"] = payload
        data = _with_header(data, header)
    elif plant == "attribute":
        data = _edit_state(data, lambda d: d["attributes"].update(latent_mean_=payload.encode("latin-1").hex()))
    elif plant == "parameter":
        data = _edit_state(data, lambda d: d["params"].update(activation=payload))
    elif plant == "typed_value":
        data = _edit_state(
            data, lambda d: d["attributes"].update(n_iter_={"__skae__": "pickle", "data": payload})
        )
    elif plant == "tensor_bytes":
        raw = pickle.dumps(_Payload(str(marker)))
        data = data[: 8 + size] + raw + data[8 + size + len(raw) :]
    else:
        header["payload"] = {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": payload}
        data = _with_header(data, header)
    path.write_bytes(data)
    refused = "not a (valid )?skae model file|corrupted|invalid parameters|unknown type tag"
    with pytest.raises(ValueError, match=refused):
        skae.load(path)
    assert not marker.exists()


def test_missing_truncated_and_corrupted_files(fitted_file, tmp_path):
    with pytest.raises(FileNotFoundError):
        skae.load(tmp_path / "nope.skae")
    with pytest.raises(IsADirectoryError):
        skae.load(tmp_path)
    _, path = fitted_file(VAETransformer)
    data = path.read_bytes()
    cases = {
        "empty": (b"", "only 0 bytes"),
        "truncated": (data[: len(data) - 10], "corrupted"),
        "flipped": (data[:-4] + bytes(b ^ 0xFF for b in data[-4:]), "checksum"),
        "text": (b"hello world, not a model at all", "not a skae model file"),
        "safetensors_without_metadata": (_with_header(data, {"__metadata__": {}}), "no skae metadata"),
    }
    for name, (content, match) in cases.items():
        bad = tmp_path / f"{name}.skae"
        bad.write_bytes(content)
        with pytest.raises(ValueError, match=match):
            skae.load(bad)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), f"reads version {FORMAT_VERSION} only. Upgrade"),
        (lambda d: d.update(format_version=1), f"format version 1; this skae reads version {FORMAT_VERSION}"),
        (lambda d: d.update({"class": "os.system"}), "unknown estimator class 'os.system'"),
        (lambda d: d.update(state=[]), "state is not a skae AutoencoderTransformer's"),
        (lambda d: d["state"].update(skae_state=2), "layout version 2"),
        (lambda d: d["state"].update(extra={}), "unknown sections"),
        (lambda d: d["state"]["params"].update(n_components=-3), "invalid parameters.*n_components"),
        (lambda d: d["state"]["params"].update(not_a_param=1), "invalid parameters.*not_a_param"),
        (lambda d: d["state"]["attributes"].update(transform=1), "attribute 'transform' is not"),
        (lambda d: d["state"]["attributes"].update(__class__=1), "attribute '__class__' is not"),
        (lambda d: d["state"]["attributes"].update(n_iter_={"__skae__": "tuple"}), "'tuple' value with keys"),
        (lambda d: d["state"]["attributes"].update(n_iter_={"__skae__": "eval"}), "unknown type tag 'eval'"),
        (lambda d: d["state"]["networks"].pop("decoder_"), "not the encoder and decoder"),
        (
            lambda d: d["state"]["networks"]["encoder_"].update(
                renamed=d["state"]["networks"]["encoder_"].pop("0.mean")
            ),
            "does not match its architecture",
        ),
        (
            lambda d: d["state"]["attributes"].update(
                _fitted_architecture={"__skae__": "tuple", "items": [9, [4], "relu", "mse"]}
            ),
            "'_fitted_architecture' must be a tuple of 9 entries",
        ),
        (
            lambda d: d["state"]["attributes"]["_fitted_architecture"]["items"].__setitem__(0, 9),
            "'n_components_' is 2, but the fitted architecture has n_components=9",
        ),
    ],
)
def test_tampered_metadata_is_refused(edit, match, fitted_file):
    _, path = fitted_file(AutoencoderTransformer)
    path.write_bytes(_edit_document(path.read_bytes(), edit))
    with pytest.raises(ValueError, match=match):
        skae.load(path)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_pickle_and_joblib_keep_working(cls, fitted_file, tmp_path, X_small):
    est, _ = fitted_file(cls)
    joblib.dump(est, tmp_path / "m.joblib")
    assert_array_equal(joblib.load(tmp_path / "m.joblib").transform(X_small), est.transform(X_small))
    assert_array_equal(pickle.loads(pickle.dumps(est)).transform(X_small), est.transform(X_small))


def test_save_of_a_diverged_then_warned_model_round_trips(tmp_path, X_small, monkeypatch):
    import math

    import skae.engine.trainer as trainer_module

    real = trainer_module._run_epoch
    calls = []

    def nan_on_third(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return math.nan if len(calls) == 3 else loss

    monkeypatch.setattr(trainer_module, "_run_epoch", nan_on_third)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = tiny(AutoencoderTransformer, max_iter=10).fit(X_small)
    assert est._optimizer_state is None
    est.save(tmp_path / "m.skae")
    assert_array_equal(skae.load(tmp_path / "m.skae").transform(X_small), est.transform(X_small))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "cls, params",
    [
        (VAETransformer, dict(architecture="conv", conv_channels=(4,), image_shape=(1, 8, 8))),
        (AutoencoderTransformer, dict(architecture="conv", conv_channels=(4, 8))),
        (AutoencoderTransformer, dict(latent_sampler="gmm")),
    ],
)
def test_conv_and_mixture_models_round_trip(cls, params, tmp_path, digits):
    X = digits[0][:120]
    X_fit = X.reshape(-1, 8, 8) if "image_shape" not in params and "conv_channels" in params else X
    est = cls(hidden_layer_sizes=(8,), max_iter=3, random_state=0, device="cpu", **params)
    est.fit(X_fit)
    path = tmp_path / "model.skae"
    est.save(path)
    loaded = skae.load(path)
    assert loaded.get_params() == est.get_params()
    assert loaded.image_shape_ == est.image_shape_
    np.testing.assert_array_equal(loaded.transform(X_fit), est.transform(X_fit))
    np.testing.assert_array_equal(loaded.sample(5, random_state=2), est.sample(5, random_state=2))


# ------------------------------------------------------------ how save writes


@pytest.fixture
def unfitted():
    return AutoencoderTransformer(n_components=3, hidden_layer_sizes=[5])


@pytest.fixture(params=["O_TMPFILE", "named temporary file"])
def temporary_kind(request, monkeypatch, tmp_path):
    """Both ways save makes its temporary file: unnamed (Linux) and named (elsewhere)."""
    if request.param == "O_TMPFILE":
        try:
            os.close(os.open(tmp_path, os.O_TMPFILE | os.O_WRONLY, 0o600))
        except (AttributeError, OSError):
            pytest.skip("no O_TMPFILE on this system or file system")
    else:
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    return request.param


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_has_the_mode_the_umask_allows(umask, unfitted, tmp_path, temporary_kind):
    previous = os.umask(umask)
    try:
        unfitted.save(tmp_path / "m.skae")
    finally:
        os.umask(previous)
    assert (tmp_path / "m.skae").stat().st_mode & 0o777 == 0o666 & ~umask


def test_replaced_file_keeps_its_mode(unfitted, tmp_path, temporary_kind):
    path = tmp_path / "m.skae"
    path.write_bytes(b"old")
    path.chmod(0o604)
    unfitted.save(path)
    assert path.stat().st_mode & 0o777 == 0o604
    assert skae.load(path).get_params() == unfitted.get_params()


def test_symbolic_link_is_followed_and_kept(unfitted, tmp_path):
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "real.skae"
    target.write_bytes(b"old")
    link = tmp_path / "link.skae"
    link.symlink_to(target)
    unfitted.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert skae.load(target).get_params() == unfitted.get_params()
    dangling = tmp_path / "dangling.skae"
    dangling.symlink_to(tmp_path / "models" / "new.skae")
    unfitted.save(dangling)
    assert dangling.is_symlink() and (tmp_path / "models" / "new.skae").is_file()
    assert sorted(os.listdir(tmp_path / "models")) == ["new.skae", "real.skae"]


def test_what_is_not_a_regular_file_is_not_replaced(unfitted, tmp_path):
    (tmp_path / "folder.skae").mkdir()
    os.mkfifo(tmp_path / "fifo.skae")
    (tmp_path / "null.skae").symlink_to("/dev/null")
    for name, kind in [("folder.skae", "folders"), ("fifo.skae", "FIFOs"), ("null.skae", "character devices")]:
        with pytest.raises(ValueError, match=f"not a regular file; skae.save replaces files, not {kind}"):
            unfitted.save(tmp_path / name)
    assert sorted(os.listdir(tmp_path)) == ["fifo.skae", "folder.skae", "null.skae"]


def test_file_reaches_the_disk_before_it_replaces_the_old_one(unfitted, tmp_path, monkeypatch, temporary_kind):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}"))),
                                                  real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda *a, **k: (calls.append(("replace", None)), real_replace(*a, **k)))
    unfitted.save(tmp_path / "m.skae")
    # The file's data, then the rename, then the folder's entry.
    assert calls == [("fsync", False), ("replace", None), ("fsync", True)]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_interrupted_save_leaves_the_old_file_and_no_temporary_one(
    failing, unfitted, tmp_path, monkeypatch, temporary_kind
):
    path = tmp_path / "m.skae"
    AutoencoderTransformer(n_components=2).save(path)
    before = path.read_bytes()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, failing, interrupt)
    with pytest.raises(KeyboardInterrupt):
        unfitted.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.skae"] and path.read_bytes() == before


def test_killed_save_leaves_no_temporary_file(tmp_path):
    """With O_TMPFILE the file has no name until it is complete: a killed process leaves nothing."""
    try:
        os.close(os.open(tmp_path, os.O_TMPFILE | os.O_WRONLY, 0o600))
    except (AttributeError, OSError):
        pytest.skip("no O_TMPFILE on this system or file system")
    script = f"""
import os, sys, time
import skae
def stall(fd):
    print("writing", flush=True)
    time.sleep(120)
os.fsync = stall
skae.AutoencoderTransformer().save({str(tmp_path / "m.skae")!r})
"""
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait()
    assert os.listdir(tmp_path) == []


def test_state_beyond_the_header_bounds_is_refused_by_save(fitted_file, tmp_path, monkeypatch):
    """save writes nothing load would refuse for its size."""
    est, path = fitted_file(VAETransformer)
    monkeypatch.setattr(persistence, "MAX_JSON_VALUES", 100)
    beyond = r"state does not fit in a .skae file: its header holds .* JSON values, more than 100\. Save it with skops"
    with pytest.raises(ValueError, match=beyond):
        est.save(tmp_path / "big.skae")
    assert not (tmp_path / "big.skae").exists()
    with pytest.raises(ValueError, match="more than 100"):
        skae.load(path)


def test_loss_curve_at_the_documented_size_round_trips_and_beyond_it_save_refuses(fitted_file, tmp_path):
    """README: save refuses a state beyond the bounds, a loss curve of more than about 250,000 epochs."""
    est, _ = fitted_file(VAETransformer)
    for n_epochs, fits in [(250_000, True), (persistence.MAX_JSON_VALUES, False)]:
        est.loss_curve_, est.n_iter_, est.best_loss_ = [0.5] * n_epochs, n_epochs, 0.5
        path = tmp_path / f"{n_epochs}.skae"
        if fits:
            est.save(path)
            assert skae.load(path).loss_curve_ == est.loss_curve_
        else:
            with pytest.raises(ValueError, match="does not fit in a .skae file.*Save it with skops or joblib"):
                est.save(path)
            assert not path.exists()


def _saving_sections():
    """The README's saving section and the user guide's saving page, with lines joined."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    start = readme.index("## Saving and loading models")
    texts = {
        "README.md": readme[start : readme.index("\n## ", start + 1)],
        "docs/saving.md": (root / "docs/saving.md").read_text(),
    }
    return {name: " ".join(text.split()) for name, text in texts.items()}


def test_documented_bounds_are_the_ones_load_applies():
    doc = " ".join(skae.load.__doc__.split())
    assert persistence.MAX_HEADER_BYTES == 16 * 2**20 and "at most 16 MiB" in doc
    assert f"{persistence.MAX_JSON_VALUES:,} JSON values" in doc
    assert f"nested at most {persistence.MAX_JSON_DEPTH} deep" in doc
    assert f"strings of at most {persistence.MAX_STRING_CHARS:,} characters" in doc
    bounds = (
        f"the header may hold at most 16 MiB, {persistence.MAX_JSON_VALUES:,} JSON values, "
        f"{persistence.MAX_JSON_DEPTH} levels of nesting and strings of {persistence.MAX_STRING_CHARS:,} characters"
    )
    for name, text in _saving_sections().items():
        assert bounds in text, name
        assert f"file format version ({FORMAT_VERSION})" in text, name


def test_pickle_text_in_a_feature_name_stays_text(tmp_path, X_small, monkeypatch):
    """README: where skae keeps free text (a feature name), a planted pickle stays text."""
    pd = pytest.importorskip("pandas")
    monkeypatch.chdir(tmp_path)
    payload = pickle.dumps(_Payload(MARKER_NAME), protocol=0).decode("latin-1")
    frame = pd.DataFrame(X_small, columns=[payload, "b", "c", "d", "e"])
    tiny(AutoencoderTransformer).fit(frame).save(tmp_path / "m.skae")
    loaded = skae.load(tmp_path / "m.skae")
    assert loaded.feature_names_in_[0] == payload and type(loaded.feature_names_in_[0]) is str
    assert not (tmp_path / MARKER_NAME).exists()


def _generated_values(cls, name):
    """Valid values of the parameter ``name`` made from its constraints, as scikit-learn's checks make them."""
    from sklearn.utils._param_validation import generate_valid_param, make_constraint

    values = []
    for constraint in cls._parameter_constraints[name]:
        try:
            value = generate_valid_param(make_constraint(constraint))
        except (NotImplementedError, TypeError):
            continue
        if not isinstance(value, torch.nn.Module):  # user modules: pickle only (test_state)
            values.append(value)
    return values


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_every_parameter_the_estimator_has_round_trips(cls, tmp_path):
    """The loader's schema takes its parameters from the class: a new parameter needs no new rule."""
    assert set(cls._parameter_constraints) == set(cls._get_param_names())
    tried = set()
    for name in cls._get_param_names():
        for value in [cls().get_params()[name], *_generated_values(cls, name)]:
            est = cls().set_params(**{name: value})
            try:
                _schema.check_params({name: value})
            except ValueError:
                continue  # a value the class's constraints allow but fit refuses (device="")
            path = tmp_path / "m.skae"
            est.save(path)
            loaded = skae.load(path).get_params()[name]
            if isinstance(value, np.random.RandomState):
                assert_array_equal(loaded.get_state()[1], value.get_state()[1])
            elif isinstance(value, np.ndarray):
                assert_array_equal(loaded, value)
            else:
                assert repr(loaded) == repr(value), name
            tried.add(name)
    assert tried == set(cls._get_param_names())


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_fresh_process_loads_either_class_after_a_bare_import(cls, X_small, tmp_path):
    # ``import skae`` imports no estimator module; the file names its class all the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = tiny(cls).fit(X_small)
    skae.save(est, tmp_path / "m.skae")
    np.save(tmp_path / "X.npy", X_small)
    script = (
        "import numpy as np, skae\n"
        f"model = skae.load({str(tmp_path / 'm.skae')!r})\n"
        f"np.save({str(tmp_path / 'codes.npy')!r}, model.transform(np.load({str(tmp_path / 'X.npy')!r})))\n"
        "print(type(model).__name__)\n"
    )
    root = str(Path(skae.__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": root})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == cls.__name__
    assert_array_equal(np.load(tmp_path / "codes.npy"), est.transform(X_small))
