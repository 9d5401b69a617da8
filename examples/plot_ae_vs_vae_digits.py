"""
=========================================================
Autoencoder vs variational autoencoder on digits, in 2-D
=========================================================

Both models get the same convolutional encoder and decoder
(``architecture="conv"``, 8x8 images, binary cross-entropy) and the same
training images; only the objective differs. The autoencoder is trained on
reconstruction error alone; the VAE adds a KL term that pulls every posterior
towards the N(0, I) prior. We compare their 2-D codes, their reconstructions
and the images they generate.
"""

# %%
# Data and models
# ---------------
# The digits are scaled to [0, 1], as binary cross-entropy needs. Training is
# capped at 100 epochs (``max_iter=100``) so the example runs quickly; the
# models have not fully converged then, so the ``ConvergenceWarning`` this
# gives is silenced.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer, VAETransformer
from skae.plotting import LatentSpaceDisplay, ReconstructionDisplay, SampleDisplay

X, y = load_digits(return_X_y=True)
X_train, X_test, _, y_test = train_test_split(X / 16.0, y, test_size=0.3, stratify=y, random_state=0)

settings = dict(
    architecture="conv",
    image_shape=(8, 8),
    n_components=2,
    reconstruction_loss="bce",
    max_iter=100,
    random_state=0,
)
models = {
    "Autoencoder": AutoencoderTransformer(**settings),
    "VAE": VAETransformer(**settings),
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for model in models.values():
        model.fit(X_train)

for name, model in models.items():
    codes = model.transform(X_test)
    mse = np.mean((model.inverse_transform(codes) - X_test) ** 2)
    print(
        f"{name:11s} test MSE {mse:.4f}; codes: mean {np.round(codes.mean(axis=0), 2)}, "
        f"std {np.round(codes.std(axis=0), 2)}"
    )

# %%
# Latent spaces
# -------------
# The test images' codes, coloured by digit. Nothing in the autoencoder's loss
# shapes its code space, so it is lopsided, stretched along a few directions,
# with empty gaps between the digit clusters. The VAE's codes sit in a compact
# blob around the origin (the dashed circles mark 1 and 2 prior standard
# deviations), with the digits as neighbouring regions of it.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    LatentSpaceDisplay.from_estimator(model, X_test, y_test, ax=ax)
    ax.set_title(f"{name} codes of the test digits")
for radius in (1, 2):
    axes[1].add_patch(plt.Circle((0, 0), radius, fill=False, linestyle="--", color="0.4"))
axes[1].set_aspect("equal")

# %%
# Reconstructions
# ---------------
# Test images (top) and their reconstructions (bottom). Two numbers per image
# are few: both models blur, and the VAE, whose codes are noisy by design,
# usually a little more.
fig, axes = plt.subplots(2, 1, figsize=(8, 3.2), layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    ReconstructionDisplay.from_estimator(model, X_test, n_samples=12, ax=ax)
    ax.set_title(f"{name}: test digits (top) and reconstructions (bottom)")

# %%
# Samples
# -------
# The VAE decodes draws from its N(0, I) prior, which is where its codes are.
# The autoencoder has no prior: ``sample`` decodes draws from a Gaussian fitted
# to its lopsided codes, and some of them land in the gaps between clusters,
# where the decoder was never trained, and can come out as blends of several
# digits. With two numbers per image, samples of both models are blurry.
fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    SampleDisplay.from_estimator(model, n_samples=25, random_state=1, ax=ax)
    ax.set_title(f"{name}: 25 random samples")
plt.show()
