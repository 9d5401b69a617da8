"""skae estimators inside Pipelines and grid searches, next to PCA."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoencoderTransformer, VAETransformer

from .helpers import tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_grid_search_swaps_reducers_in_a_pipeline(digits):
    X, y = digits
    pipe = Pipeline(
        [
            ("scale", MinMaxScaler()),
            ("reduce", PCA()),
            ("clf", LogisticRegression(max_iter=200)),
        ]
    )
    grid = GridSearchCV(
        pipe,
        {
            "reduce": [PCA(), tiny(AutoencoderTransformer), tiny(VAETransformer)],
            "reduce__n_components": [2, 8],
        },
        cv=2,
        n_jobs=2,
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 6
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    # Every candidate was fitted with the latent size the grid asked for.
    reducers = [type(p["reduce"]).__name__ for p in grid.cv_results_["params"]]
    assert sorted(set(reducers)) == ["AutoencoderTransformer", "PCA", "VAETransformer"]
    assert grid.predict(X[:5]).shape == (5,)


def test_unsupervised_grid_search_uses_score(digits):
    X, _ = digits
    grid = GridSearchCV(
        tiny(VAETransformer, max_iter=20), {"n_components": [1, 4]}, cv=2
    ).fit(X)
    scores = grid.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    assert grid.best_params_["n_components"] in (1, 4)
    # A VAE with more latent dimensions explains held-out digits better.
    assert scores[1] > scores[0]
    assert grid.best_estimator_.transform(X).shape[1] == grid.best_params_["n_components"]
