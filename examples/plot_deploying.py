"""
=====================================================
Deploying a fitted pipeline: skops and ONNX
=====================================================

A pipeline with a skae estimator goes to production like any scikit-learn
pipeline: as a skops file (safe to load, no pickle), or as an ONNX graph that
onnxruntime serves without Python's scikit-learn or torch. Both give back the
pipeline's numbers. The "Deploying" page of the user guide covers MLflow and
pickle too.
"""

# %%
# A pipeline to deploy
# --------------------
# Scale the digits, reduce them to 8 codes with a convolutional autoencoder,
# classify the codes. ``max_iter=15`` keeps the example fast; its
# ``ConvergenceWarning`` is silenced.
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import skl2onnx
import skops.io
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

import skae
import skae.onnx  # registers skae's converters with skl2onnx
from skae import AutoencoderTransformer

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
pipe = Pipeline(
    [
        ("scale", MinMaxScaler()),
        (
            "reduce",
            AutoencoderTransformer(
                n_components=8, architecture="conv", image_shape=(8, 8), conv_channels=(4, 8),
                hidden_layer_sizes=(32,), max_iter=15, random_state=0,
            ),
        ),
        ("classify", LogisticRegression(max_iter=1000)),
    ]
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    pipe.fit(X, y)
print(f"training accuracy: {pipe.score(X, y):.3f}")

# %%
# skops: one call to save, one to load
# ------------------------------------
# skops refuses to load types it does not trust by default. In this pipeline
# that is skae's estimator alone; ``skae.skops_trusted_types()`` names skae's
# classes, and trusting them is safe: skae rebuilds its estimators from plain
# data (numbers, strings, arrays), never from code in the file.
folder = Path(tempfile.mkdtemp())
skops.io.dump(pipe, folder / "pipe.skops")
print("untrusted types in the file:", skops.io.get_untrusted_types(file=folder / "pipe.skops"))
loaded = skops.io.load(folder / "pipe.skops", trusted=skae.skops_trusted_types())
print("predict_proba identical:", np.array_equal(loaded.predict_proba(X), pipe.predict_proba(X)))
print("codes identical:", np.array_equal(loaded[:-1].transform(X), pipe[:-1].transform(X)))

# %%
# ONNX: the whole pipeline as a graph
# -----------------------------------
# ``import skae.onnx`` (at the top) registers skae's converters with skl2onnx;
# the pipeline then exports like any other. ``X[:1]`` fixes the input type
# (float32).
model = skl2onnx.to_onnx(pipe, X[:1], options={"zipmap": False})
session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
labels, probabilities = session.run(None, {session.get_inputs()[0].name: X})
print("labels identical:", np.array_equal(labels, pipe.predict(X)))
print(f"largest probability difference: {np.abs(probabilities - pipe.predict_proba(X)).max():.1e}")

# %%
# The encoder alone gives the codes; the decoder is exported on its own with
# ``skae.onnx.inverse_transform_to_onnx``.
reducer = pipe[:-1]
encoder = skl2onnx.to_onnx(reducer, X[:1])
codes = onnxruntime.InferenceSession(encoder.SerializeToString()).run(None, {"X": X})[0]
expected_codes = reducer.transform(X)
decoder = skae.onnx.inverse_transform_to_onnx(pipe.named_steps["reduce"])
images = onnxruntime.InferenceSession(decoder.SerializeToString()).run(None, {"X": expected_codes})[0]
expected_images = pipe.named_steps["reduce"].inverse_transform(expected_codes)
print(f"codes: largest difference relative to their scale "
      f"{np.abs(codes - expected_codes).max() / np.abs(expected_codes).max():.1e}")
print(f"decoded images: largest difference relative to their scale "
      f"{np.abs(images - expected_images).max() / np.abs(expected_images).max():.1e}")
