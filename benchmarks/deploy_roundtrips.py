"""The largest difference between a fitted model and its saved or exported copy, per route.

Run ``python benchmarks/deploy_roundtrips.py`` (needs the ``onnx`` and
``mlflow`` extras). For both estimators, MLP and convolutional, it fits a
small model on digits, sends it through pickle, joblib, a ``.skae`` file,
skops and MLflow (a Pipeline with a classifier, loaded in a fresh process), and
through ONNX (``transform`` with skl2onnx for every activation,
``inverse_transform`` with :func:`skae.onnx.inverse_transform_to_onnx`). It
prints, per route, the largest absolute difference of ``transform``,
``inverse_transform``, ``score_samples`` and ``sample(random_state=0)``
between the copy and the original (0 means bit-identical), and for ONNX the
largest difference relative to the output's scale, ``max|a - b| / max|b|``.
"""

import io
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import skae
from skae import AutoencoderTransformer, VAETransformer

warnings.simplefilter("ignore")
X, y = load_digits(return_X_y=True)
X, y = (X[:400] / 16).astype(np.float32), y[:400]
FOLDER = Path(tempfile.mkdtemp())
ARCHITECTURES = {"mlp": {}, "conv": dict(architecture="conv", conv_channels=(4, 8), image_shape=(8, 8))}


def fitted(cls, **params):
    defaults = dict(hidden_layer_sizes=(16,), max_iter=10, random_state=0, device="cpu")
    return cls(**{**defaults, **params}).fit(X)


def outputs(est):
    Z = est.transform(X)
    return [Z, est.inverse_transform(Z), est.score_samples(X), est.sample(20, random_state=0)]


def largest_difference(copy, est):
    return max(float(np.abs(a - b).max()) for a, b in zip(outputs(copy), outputs(est)))


def via_skae(est):
    est.save(FOLDER / "model.skae")
    return skae.load(FOLDER / "model.skae")


def via_skops(est):
    import skops.io

    return skops.io.loads(skops.io.dumps(est), trusted=skae.skops_trusted_types())


def via_joblib(est):
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


ROUTES = {
    "pickle": lambda est: pickle.loads(pickle.dumps(est)),
    "joblib": via_joblib,
    ".skae": via_skae,
    "skops": via_skops,
}


def mlflow_difference(est):
    """Largest difference of predict_proba and transform of a Pipeline logged to MLflow, loaded afresh."""
    import mlflow
    import mlflow.sklearn

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{FOLDER / 'mlflow.db'}"
    os.chdir(FOLDER)
    pipe = Pipeline([("scale", StandardScaler()), ("reduce", est), ("classify", LogisticRegression(max_iter=300))])
    pipe.fit(X, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipe, name="model", skops_trusted_types=skae.skops_trusted_types(), pip_requirements=["skops"]
        )
    np.save(FOLDER / "X.npy", X)
    script = (
        "import numpy as np, mlflow.sklearn\n"
        f"pipe = mlflow.sklearn.load_model({info.model_uri!r})\n"
        f"X = np.load({str(FOLDER / 'X.npy')!r})\n"
        f"np.savez({str(FOLDER / 'out.npz')!r}, proba=pipe.predict_proba(X), codes=pipe[:-1].transform(X))\n"
    )
    env = dict(os.environ, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="true")
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True)
    out = np.load(FOLDER / "out.npz")
    return max(
        float(np.abs(out["proba"] - pipe.predict_proba(X)).max()),
        float(np.abs(out["codes"] - pipe[:-1].transform(X)).max()),
    )


def onnx_differences(est):
    """``max|a - b| / max|b|`` of transform (skl2onnx) and inverse_transform (skae.onnx)."""
    import onnxruntime
    import skl2onnx

    import skae.onnx

    def run(model, data):
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: data})[0]

    Z = est.transform(X)
    X_rec = est.inverse_transform(Z)
    encoded = run(skl2onnx.to_onnx(est, X[:1]), X)
    decoded = run(skae.onnx.inverse_transform_to_onnx(est), Z)
    return (
        float(np.abs(encoded - Z).max() / np.abs(Z).max()),
        float(np.abs(decoded - X_rec).max() / np.abs(X_rec).max()),
    )


def main():
    worst = {route: 0.0 for route in [*ROUTES, "mlflow"]}
    onnx_worst = [0.0, 0.0]
    for cls in (AutoencoderTransformer, VAETransformer):
        for name, params in ARCHITECTURES.items():
            est = fitted(cls, **params)
            for route, send in ROUTES.items():
                worst[route] = max(worst[route], largest_difference(send(est), est))
            worst["mlflow"] = max(worst["mlflow"], mlflow_difference(fitted(cls, **params)))
            for activation in ("relu", "tanh", "logistic", "identity", "elu", "gelu"):
                for loss in ("mse", "bce"):
                    model = fitted(cls, activation=activation, reconstruction_loss=loss, **params)
                    onnx_worst = [max(a, b) for a, b in zip(onnx_worst, onnx_differences(model))]
            print(f"{cls.__name__} {name}: done", flush=True)
    print("largest absolute difference, copy vs original (transform, inverse_transform, score_samples, sample):")
    for route in ROUTES:
        print(f"  {route:7s} {worst[route]:.3g}")
    print(f"  mlflow  {worst['mlflow']:.3g}  (Pipeline predict_proba and transform, fresh process)")
    print("ONNX, largest max|onnx - skae| / max|skae| over 2 classes x 2 architectures x 6 activations x 2 losses:")
    print(f"  transform         {onnx_worst[0]:.3g}")
    print(f"  inverse_transform {onnx_worst[1]:.3g}")


if __name__ == "__main__":
    main()
