"""
=====================================================
Saving and loading a fitted model
=====================================================

``model.save(path)`` (or ``skae.save(model, path)``) writes a fitted
estimator to a single safetensors file: weights and numeric fitted attributes
as raw tensors, everything else as JSON. ``skae.load(path)`` reads it back
without unpickling anything, so loading never runs code from the file. The
loaded model gives bit-identical results on the CPU.
"""

# %%
# Fit, save, load
# ---------------
# A short fit (``max_iter=20``) is enough to show the round trip; its
# ``ConvergenceWarning`` is silenced.
import tempfile
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import skae
from skae import VAETransformer

X = load_digits().data / 16.0
vae = VAETransformer(n_components=4, max_iter=20, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    vae.fit(X)

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "vae.skae"
    vae.save(path)
    print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB")
    loaded = skae.load(path)

# %%
# The same model
# --------------
# Same class and parameters, and the same numbers from ``transform``,
# ``inverse_transform``, ``score_samples`` and ``sample``.
print(type(loaded).__name__, loaded.get_params() == vae.get_params())
Z = vae.transform(X)
print("transform identical:", np.array_equal(Z, loaded.transform(X)))
print("inverse_transform identical:", np.array_equal(vae.inverse_transform(Z), loaded.inverse_transform(Z)))
print("score_samples identical:", np.array_equal(vae.score_samples(X), loaded.score_samples(X)))
print("sample identical:", np.array_equal(vae.sample(5, random_state=0), loaded.sample(5, random_state=0)))

# %%
# ``partial_fit`` continues from the loaded model exactly as it would have from
# the original, because the optimiser state is saved too.
vae.partial_fit(X)
loaded.partial_fit(X)
print("after one more pass:", np.array_equal(vae.transform(X), loaded.transform(X)))
