"""
=====================================================
Anomaly scores with ``score_samples``
=====================================================

A model trained on normal data only reconstructs (or explains) normal rows
well and unusual rows badly. ``score_samples`` measures this per row: for
:class:`~skae.AutoencoderTransformer` it is the negative reconstruction error,
for :class:`~skae.VAETransformer` the evidence lower bound (ELBO). Low scores
flag anomalies.

We train on benign tumours of scikit-learn's breast cancer data (30 features)
and score held-out benign tumours against the malignant ones, which the models
never saw.
"""

# %%
# Train on normal rows only
# -------------------------
# The models sit behind a :class:`~sklearn.preprocessing.StandardScaler` in a
# pipeline; :class:`~sklearn.pipeline.Pipeline` passes ``score_samples``
# through to its last step. Training is kept short (``max_iter=100``), so the
# ``ConvergenceWarning`` this may give is silenced.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer, VAETransformer

X, y = load_breast_cancer(return_X_y=True)
benign, malignant = X[y == 1], X[y == 0]
benign_train, benign_test = train_test_split(benign, test_size=0.3, random_state=0)

models = {
    "Autoencoder": make_pipeline(
        StandardScaler(), AutoencoderTransformer(n_components=4, max_iter=100, random_state=0)
    ),
    "VAE": make_pipeline(StandardScaler(), VAETransformer(n_components=4, max_iter=100, random_state=0)),
}
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for model in models.values():
        model.fit(benign_train)

# %%
# Score held-out normal rows and anomalies
# ----------------------------------------
# The anomaly score is minus ``score_samples``; the ROC AUC is the chance that
# a random malignant tumour scores higher than a random held-out benign one.
X_eval = np.vstack([benign_test, malignant])
is_anomaly = np.r_[np.zeros(len(benign_test)), np.ones(len(malignant))]

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for ax, (name, model) in zip(axes, models.items()):
    anomaly_score = -model.score_samples(X_eval)
    auc = roc_auc_score(is_anomaly, anomaly_score)
    print(f"{name:11s} ROC AUC {auc:.3f}")
    bins = np.histogram_bin_edges(np.log10(anomaly_score - anomaly_score.min() + 1), bins=30)
    for label, mask in [("held-out benign", is_anomaly == 0), ("malignant", is_anomaly == 1)]:
        ax.hist(np.log10(anomaly_score[mask] - anomaly_score.min() + 1), bins=bins, alpha=0.6, label=label)
    ax.set_xlabel("log10(1 + anomaly score - its minimum)")
    ax.set_ylabel("rows")
    ax.set_title(f"{name}: ROC AUC {auc:.3f}")
    ax.legend()
plt.show()

# %%
# To flag rows in practice, pick a threshold on the training rows' scores, for
# instance their 1% quantile: ``np.quantile(model.score_samples(benign_train),
# 0.01)``.
