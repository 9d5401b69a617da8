"""skops: a fitted Pipeline with skae estimators saved safely, and loaded in a fresh process."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

import skae
from skae import AutoencoderTransformer, VAETransformer

from .helpers import ESTIMATORS, tiny

sio = pytest.importorskip("skops.io")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("params", [{}, dict(architecture="conv", conv_channels=(2,), image_shape=(8, 8))])
def test_estimator_round_trip_is_exact(cls, params, digits):
    X = digits[0][:100]
    est = tiny(cls, **params).fit(X)
    data = sio.dumps(est)
    assert sio.get_untrusted_types(data=data) == [f"{cls.__module__}.{cls.__name__}"]
    loaded = sio.loads(data, trusted=skae.skops_trusted_types())
    assert type(loaded) is cls and loaded.get_params() == est.get_params()
    Z = est.transform(X)
    assert_array_equal(loaded.transform(X), Z)
    assert_array_equal(loaded.inverse_transform(Z), est.inverse_transform(Z))
    assert_array_equal(loaded.score_samples(X), est.score_samples(X))
    assert_array_equal(loaded.sample(6, random_state=3), est.sample(6, random_state=3))
    est.partial_fit(X)
    loaded.partial_fit(X)
    assert_array_equal(loaded.transform(X), est.transform(X))


def test_pipeline_lists_only_skae_types_and_loads_in_a_fresh_process(pipeline, digits, tmp_path):
    X, _ = digits
    path = tmp_path / "pipeline.skops"
    sio.dump(pipeline, path)
    # StandardScaler and LogisticRegression are trusted by skops' defaults; only skae's type is not.
    assert sio.get_untrusted_types(file=path) == ["skae.vae.VAETransformer"]
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.load(path)
    np.save(tmp_path / "X.npy", X)
    script = f"""
import numpy as np, skops.io, skae
pipe = skops.io.load({str(path)!r}, trusted=skae.skops_trusted_types())
X = np.load({str(tmp_path / "X.npy")!r})
np.savez({str(tmp_path / "out.npz")!r}, proba=pipe.predict_proba(X), codes=pipe[:-1].transform(X),
         scores=pipe[1].score_samples(pipe[0].transform(X)), samples=pipe[1].sample(4, random_state=0))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    out = np.load(tmp_path / "out.npz")
    assert_array_equal(out["proba"], pipeline.predict_proba(X))
    assert_array_equal(out["codes"], pipeline[:-1].transform(X))
    assert_array_equal(out["scores"], pipeline[1].score_samples(pipeline[0].transform(X)))
    assert_array_equal(out["samples"], pipeline[1].sample(4, random_state=0))


def test_user_networks_cannot_go_to_skops_and_say_so(X_small):
    est = tiny(AutoencoderTransformer, decoder=torch.nn.Linear(2, 5)).fit(X_small)
    with pytest.raises(TypeError, match="parameter 'decoder' holds a user-supplied torch module.*only pickle"):
        sio.dumps(est)


def _edit_schema(data, edit):
    """The skops file ``data`` with ``edit`` applied to its JSON schema."""
    import io

    source = zipfile.ZipFile(io.BytesIO(data))
    target_bytes = io.BytesIO()
    with zipfile.ZipFile(target_bytes, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(content)
                edit(schema)
                content = json.dumps(schema).encode()
            target.writestr(item, content)
    return target_bytes.getvalue()


def _section(schema, name):
    """The skops node of the estimator state's ``name`` dict ("params", "attributes")."""
    return schema["content"]["content"][name]


def _set(dict_node, key, value):
    """Set ``key`` of a skops dict node; a new key also needs its key type."""
    if key not in dict_node["content"]:
        dict_node["key_types"]["content"].append(dict_node["key_types"]["content"][0])
    dict_node["content"][key] = value


def _swap_adam_moments(schema, a, b):
    """Swap the exp_avg arrays of the Adam state's entries ``a`` and ``b`` (of other shapes)."""
    items = schema["content"]["content"]["optimizer"]["content"]["state"]["content"]["items"]["content"]
    first, second = (items[i]["content"][1]["content"]["exp_avg"]["content"] for i in (a, b))
    first["array"], second["array"] = second["array"], first["array"]


def _json_node(value):
    return {"__class__": type(value).__name__, "__module__": "builtins", "__loader__": "JsonNode",
            "content": json.dumps(value), "is_json": True}


@pytest.mark.parametrize(
    "edit, error, match",
    [
        # Values skae would never write: refused by skae's __setstate__, naming the field.
        (
            lambda s: _set(_section(s, "params"), "n_components", _json_node(-4)),
            ValueError,
            "invalid parameters.*n_components",
        ),
        (
            lambda s: _set(_section(s, "attributes"), "transform", _json_node(1)),
            ValueError,
            "attribute 'transform' is not an attribute skae stores",
        ),
        # Checked against the schema, as for pickle and .skae files.
        (
            lambda s: _set(_section(s, "attributes"), "_data_scale", _json_node(0.0)),
            ValueError,
            "attribute '_data_scale' must be positive",
        ),
        (
            lambda s: _set(_section(s, "attributes"), "_payload", _json_node("cos\nsystem\n")),
            ValueError,
            "attribute '_payload' is not an attribute skae stores",
        ),
        (
            lambda s: _set(_section(s, "attributes"), "n_features_in_", _json_node(10**12)),
            ValueError,
            "declares n_features_in_ = 1000000000000",
        ),
        (lambda s: _swap_adam_moments(s, 0, 1), ValueError, r"entry 0 has 'exp_avg' of shape \(16,\)"),
        # A type nobody trusts: refused by skops before anything is built.
        (
            lambda s: _set(
                _section(s, "attributes"),
                "n_iter_",
                {"__class__": "system", "__module__": "os", "__loader__": "FunctionNode",
                 "content": {"module_path": "os", "function": "system"}},
            ),
            sio.exceptions.UntrustedTypesFoundException,
            "os.system",
        ),
    ],
)
def test_tampered_skops_file_is_refused(edit, error, match, X_small):
    data = _edit_schema(sio.dumps(tiny(VAETransformer).fit(X_small)), edit)
    with pytest.raises(error, match=match):
        sio.loads(data, trusted=skae.skops_trusted_types())
