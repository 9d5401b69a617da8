"""MLflow: a fitted Pipeline with a skae estimator logged with skops and loaded in a fresh process."""

import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import skae
from skae import VAETransformer

from .helpers import tiny

mlflow = pytest.importorskip("mlflow")
pytest.importorskip("skops")
mlflow_sklearn = pytest.importorskip("mlflow.sklearn")

pytestmark = pytest.mark.filterwarnings("ignore")  # mlflow's deprecation and version notices

# What the docs recommend recording: an installable skae and the torch build it runs on
# (a stand-in wheel here: the test loads the model in this environment, installing nothing).
REQUIREMENTS = ["skae @ file:///srv/wheels/skae-0.1.0-py3-none-any.whl", "torch==2.13.0", "skops"]


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    """A local SQLite tracking store; runs and artifacts stay in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)  # mlflow puts artifacts under the working directory
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_default_log_model_names_the_types_to_trust(tracking, pipeline):
    refusal = r"skops_trusted_types.*skae\.vae\.VAETransformer"
    with mlflow.start_run(), pytest.raises(mlflow.exceptions.MlflowException, match=refusal):
        mlflow_sklearn.log_model(pipeline, name="model")


def test_logged_pipeline_loads_identically_in_a_fresh_process(tracking, pipeline, digits, tmp_path):
    X, _ = digits
    with mlflow.start_run():
        info = mlflow_sklearn.log_model(
            pipeline,
            name="model",
            skops_trusted_types=skae.skops_trusted_types(),
            pip_requirements=REQUIREMENTS,
        )
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "downloaded"))
    assert os.path.exists(os.path.join(local, "model.skops"))  # skops, not a pickle
    with open(os.path.join(local, "requirements.txt")) as file:
        recorded = file.read().splitlines()
    assert set(REQUIREMENTS) <= set(recorded) and not any(line.startswith("skae==") for line in recorded)
    np.save(tmp_path / "X.npy", X)
    script = f"""
import numpy as np, mlflow.sklearn
pipe = mlflow.sklearn.load_model({info.model_uri!r})
X = np.load({str(tmp_path / "X.npy")!r})
np.savez({str(tmp_path / "out.npz")!r}, labels=pipe.predict(X), proba=pipe.predict_proba(X),
         codes=pipe[:-1].transform(X))
"""
    # The fresh process imports the skae under test, not another copy installed in the venv.
    checkout = os.path.dirname(os.path.dirname(skae.__file__))
    path = os.pathsep.join(filter(None, [checkout, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true", PYTHONPATH=path)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=600, env=env)
    out = np.load(tmp_path / "out.npz")
    assert_array_equal(out["labels"], pipeline.predict(X))
    assert_array_equal(out["proba"], pipeline.predict_proba(X))
    assert_array_equal(out["codes"], pipeline[:-1].transform(X))


def test_autolog_records_skae_parameters_of_a_pipeline(tracking, digits):
    X, y = digits
    mlflow_sklearn.autolog(log_models=False, log_datasets=False)
    try:
        reducer = tiny(VAETransformer, n_components=3, beta=0.5)
        Pipeline([("reduce", reducer), ("classify", LogisticRegression())]).fit(X, y)
    finally:
        mlflow_sklearn.autolog(disable=True)
    run = mlflow.last_active_run()
    params = run.data.params
    assert params["reduce__n_components"] == "3" and params["reduce__beta"] == "0.5"
    assert params["reduce__hidden_layer_sizes"] == "(16,)"
