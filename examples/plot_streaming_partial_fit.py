"""
=====================================================
Training on chunks with ``partial_fit``
=====================================================

When the data does not fit in memory, read it a chunk at a time and call
``partial_fit`` on each chunk: every call makes one pass over its chunk and
keeps the weights and the optimiser's state. Here 5 chunks of the digits
stand in for files on disk; 30 passes over them are compared with one
``fit(max_iter=30)`` on all the training rows, by the reconstruction error on
held-out digits after each pass.
"""

# %%
# Stream the chunks
# -----------------
# The first ``partial_fit`` call sets up the network, including its input
# standardisation, from the first chunk, so that chunk should be
# representative: the rows are shuffled before splitting.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer
from skae.plotting import LossCurveDisplay

X = load_digits().data / 16.0
X_train, X_test = train_test_split(X, test_size=0.3, random_state=0)
chunks = np.array_split(X_train, 5)


def held_out_mse(model):
    return np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2)


n_passes = 30
streamed = AutoencoderTransformer(n_components=8, random_state=0)
streamed_errors = []
for _ in range(n_passes):
    for chunk in chunks:
        streamed.partial_fit(chunk)
    streamed_errors.append(held_out_mse(streamed))

# %%
# The same number of epochs with ``fit``
# --------------------------------------
# ``fit`` stops at ``max_iter=30`` before meeting its tolerance, which gives a
# ``ConvergenceWarning``, silenced here on purpose.
full = AutoencoderTransformer(n_components=8, max_iter=n_passes, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    full.fit(X_train)
print(f"held-out MSE after {n_passes} passes: partial_fit {streamed_errors[-1]:.4f}, fit {held_out_mse(full):.4f}")

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.plot(range(1, n_passes + 1), streamed_errors, marker=".", label="partial_fit, 5 chunks per pass")
ax.axhline(held_out_mse(full), color="black", linestyle="--", label=f"fit(max_iter={n_passes})")
ax.set_xlabel("pass over the training data")
ax.set_ylabel("held-out reconstruction MSE")
ax.legend()
ax.set_yscale("log")

# %%
# The training loss of a ``fit``
# ------------------------------
# ``fit`` records the loss of every epoch in ``loss_curve_``;
# :class:`~skae.plotting.LossCurveDisplay` draws it (with the validation score
# too when ``early_stopping=True``).
display = LossCurveDisplay.from_estimator(full)
plt.show()
