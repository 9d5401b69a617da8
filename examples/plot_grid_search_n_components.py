"""
=====================================================
Choosing ``n_components`` with a grid search
=====================================================

skae's transformers are ordinary scikit-learn estimators, so
:class:`~sklearn.model_selection.GridSearchCV` can pick their latent size. We
do it twice on the digits:

* **with labels**: the reducer sits in a
  :class:`~sklearn.pipeline.Pipeline` before a logistic regression, and the
  search swaps PCA, the autoencoder and the VAE and their ``n_components``,
  scored by the classifier's accuracy;
* **without labels**: the VAE's ``score`` is its evidence lower bound (ELBO), a
  bound on the log-likelihood of held-out rows, so the search needs no target.

To keep the example fast it uses 900 digits, three folds and only 20 training
epochs (``max_iter=20``). The networks have not converged then, so the
``ConvergenceWarning`` they give is silenced; scores with longer training are
higher.
"""

# %%
# Supervised: the reducer in a classification pipeline
# ----------------------------------------------------
import warnings

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoencoderTransformer, VAETransformer

X, y = load_digits(return_X_y=True)
X, y = X[:900], y[:900]
n_components = [2, 4, 8]

pipe = Pipeline(
    [
        ("scale", MinMaxScaler()),
        ("reduce", PCA()),
        ("clf", LogisticRegression(max_iter=2000)),
    ]
)
param_grid = {
    "reduce": [
        PCA(random_state=0),
        AutoencoderTransformer(max_iter=20, random_state=0),
        VAETransformer(max_iter=20, random_state=0),
    ],
    "reduce__n_components": n_components,
}
search = GridSearchCV(pipe, param_grid, cv=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X, y)

print("best:", type(search.best_params_["reduce"]).__name__, search.best_params_["reduce__n_components"])
print(f"accuracy {search.best_score_:.3f}")

# %%
# Mean cross-validated accuracy for each reducer and latent size:
results = pd.DataFrame(
    {
        "reducer": [type(r).__name__ for r in search.cv_results_["param_reduce"]],
        "n_components": search.cv_results_["param_reduce__n_components"].astype(int),
        "accuracy": search.cv_results_["mean_test_score"],
        "std": search.cv_results_["std_test_score"],
    }
)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for name, rows in results.groupby("reducer"):
    ax.errorbar(rows["n_components"], rows["accuracy"], yerr=rows["std"], marker="o", capsize=3, label=name)
ax.set_xlabel("n_components")
ax.set_ylabel("mean test accuracy (3-fold CV)")
ax.set_xticks(n_components)
ax.set_title("Logistic regression on the codes")
ax.legend()
ax.grid(alpha=0.3)

# %%
# Unsupervised: the VAE's evidence lower bound
# --------------------------------------------
# Without labels, ``GridSearchCV`` uses the estimator's own ``score``: for
# :class:`~skae.VAETransformer` the mean ELBO per held-out row (higher is
# better). The data is scaled to [0, 1] first, here by dividing by 16.
vae_search = GridSearchCV(VAETransformer(max_iter=20, random_state=0), {"n_components": n_components}, cv=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    vae_search.fit(X / 16.0)

print("best n_components by ELBO:", vae_search.best_params_["n_components"])

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.errorbar(
    n_components,
    vae_search.cv_results_["mean_test_score"],
    yerr=vae_search.cv_results_["std_test_score"],
    marker="o",
    capsize=3,
)
ax.set_xlabel("n_components")
ax.set_ylabel("mean held-out ELBO (3-fold CV)")
ax.set_xticks(n_components)
ax.set_title("VAETransformer: score without labels")
plt.show()

# %%
# Both searches are ordinary scikit-learn: ``n_jobs`` runs the fits in
# parallel, and ``best_estimator_`` is a fitted pipeline (or VAE), refitted on
# all the rows and ready to ``transform`` new data.
print(vae_search.best_estimator_.transform(X[:3] / 16.0).round(2))
