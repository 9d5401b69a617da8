"""
=====================================================
Comparing the autoencoder and the VAE with PCA
=====================================================

:func:`skae.compare_reducers` fits PCA, :class:`~skae.AutoencoderTransformer`
and :class:`~skae.VAETransformer` at several latent sizes on one part of the
data and scores them on the held-out rest: reconstruction error,
trustworthiness of the codes (how well they keep each row's neighbours), fit
and transform times, and, given labels, the accuracy of a logistic regression
trained on the codes. Here on scikit-learn's digits (1,797 images of 8x8
pixels, flattened to 64 features).
"""

# %%
# One call gives the whole table
# ------------------------------
# ``compare_reducers`` takes the data as the reducers should see it: here the
# pixels scaled to [0, 1]. ``max_iter=60`` and ``random_state=0`` go to both
# skae estimators; 60 epochs keep the example fast, and instead of a
# ``ConvergenceWarning`` per model the table's ``note`` column says "stopped
# at max_iter". 30% of the rows are held out; ``mse_vs_mean`` is the held-out
# error over that of predicting the training mean (1 would be no better).
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from skae import compare_reducers

X, y = load_digits(return_X_y=True)
table = compare_reducers(X / 16.0, y, n_components=(2, 4, 8), max_iter=60, random_state=0)
table.round(4)

# %%
# Reconstruction error and downstream accuracy
# --------------------------------------------
# At every latent size the autoencoder and the VAE reconstruct the held-out
# digits with less error than PCA, and a logistic regression on their codes
# is more accurate. The price is the fit time: seconds instead of
# milliseconds.
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for ax, column, label in zip(
    axes,
    ["reconstruction_mse", "downstream_score"],
    ["held-out reconstruction MSE", "held-out accuracy on the codes"],
):
    table.pivot(index="n_components", columns="reducer", values=column).plot.bar(ax=ax, rot=0)
    ax.set_ylabel(label)
axes[1].get_legend().remove()
plt.show()
