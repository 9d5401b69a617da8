"""
=====================================================
Quickstart: PCA vs autoencoder vs VAE on digits
=====================================================

Fits each reducer with 2 latent dimensions on 70% of scikit-learn's digits
(scaled to [0, 1]) and prints the held-out reconstruction error. Run it from
the repository root::

    python examples/quickstart.py

The gallery shows this script without running it.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer, VAETransformer

X, y = load_digits(return_X_y=True)
X_train, X_test = train_test_split(X / 16.0, test_size=0.3, stratify=y, random_state=0)

print("held-out reconstruction MSE with 2 components")
for reducer in (PCA(2), AutoencoderTransformer(2, random_state=0), VAETransformer(2, random_state=0)):
    reducer.fit(X_train)
    X_rec = reducer.inverse_transform(reducer.transform(X_test))
    print(f"  {type(reducer).__name__:24s} {np.mean((X_rec - X_test) ** 2):.4f}")
