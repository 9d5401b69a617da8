"""
=====================================================
A convolutional VAE on image arrays
=====================================================

With ``architecture="conv"`` the encoder is a stack of stride-2 3x3
convolutions and the decoder mirrors it with transposed convolutions. Images
can be given as arrays of shape ``(n, H, W)`` or ``(n, C, H, W)``: the image
shape is then inferred (here 8x8 digits), and ``image_shape_`` records it.
The Displays of :mod:`skae.plotting` draw reconstructions, random samples and
the images decoded over the 2-D code plane.
"""

# %%
# Fit on 8x8 images
# -----------------
# Pixel values are scaled to [0, 1] for the binary cross-entropy loss. For
# speed the model trains for only 100 epochs (``max_iter=100``) and has not
# converged then, so its ``ConvergenceWarning`` is silenced.
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import VAETransformer
from skae.plotting import LatentManifoldDisplay, ReconstructionDisplay, SampleDisplay

images = load_digits().images / 16.0  # shape (1797, 8, 8)
images_train, images_test = train_test_split(images, test_size=0.3, random_state=0)

vae = VAETransformer(
    architecture="conv",
    n_components=2,
    reconstruction_loss="bce",
    max_iter=100,
    random_state=0,
)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    vae.fit(images_train)
print("inferred image shape:", vae.image_shape_, "codes:", vae.transform(images_test).shape)

# %%
# Reconstructions
# ---------------
# The Displays take rows of flattened images; the estimator accepts both forms.
flat_test = images_test.reshape(len(images_test), -1)
fig, ax = plt.subplots(figsize=(8, 2.2), layout="constrained")
display = ReconstructionDisplay.from_estimator(vae, flat_test, n_samples=12, ax=ax)

# %%
# Samples from the prior
# ----------------------
fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
display = SampleDisplay.from_estimator(vae, n_samples=25, random_state=0, ax=ax)

# %%
# The decoded code plane
# ----------------------
# A regular grid over the prior's 5% to 95% quantiles in each direction,
# decoded: neighbouring codes give similar images, and the digits morph into
# each other across the plane.
fig, ax = plt.subplots(figsize=(6, 6), layout="constrained")
display = LatentManifoldDisplay.from_estimator(vae, n_per_side=10, ax=ax)
plt.show()
