"""compare_reducers: PCA, AE and VAE side by side on held-out data, as one table."""

import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.manifold import trustworthiness
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array

from .autoencoder import AutoencoderTransformer
from .metrics import _sampling_scores
from .vae import VAETransformer

__all__ = ["compare_reducers"]

COLUMNS = [
    "reducer",
    "n_components",
    "reconstruction_mse",
    "trustworthiness",
    "fit_time_s",
    "transform_time_s",
    "downstream_metric",
    "downstream_score",
    "sample_precision",
    "sample_recall",
    "sample_coverage",
    "latent_holes",
    "latent_reached",
]


def _default_reducers(estimator_params):
    return {
        "PCA": PCA(),
        "AutoencoderTransformer": AutoencoderTransformer(**estimator_params),
        "VAETransformer": VAETransformer(**estimator_params),
    }


def _named_reducers(reducers, estimator_params):
    if reducers is None:
        return _default_reducers(estimator_params)
    if isinstance(reducers, dict):
        return dict(reducers)
    named = {}
    for reducer in reducers:
        name = type(reducer).__name__
        named[name if name not in named else f"{name}_{len(named)}"] = reducer
    return named


def _task(y):
    """'classification', 'regression' or None, from the target's type."""
    if y is None:
        return None
    kind = type_of_target(y)
    if kind in ("binary", "multiclass"):
        return "classification"
    if kind in ("continuous",):
        return "regression"
    raise ValueError(
        f"y must be class labels or a continuous target, got a {kind!r} target."
    )


def _downstream(task, codes_train, y_train, codes_test, y_test):
    if task == "classification":
        if len(np.unique(y_train)) < 2:
            return np.nan
        model = LogisticRegression(max_iter=1000).fit(codes_train, y_train)
        return accuracy_score(y_test, model.predict(codes_test))
    model = Ridge(alpha=1e-3).fit(codes_train, y_train)
    return r2_score(y_test, model.predict(codes_test)) if len(y_test) > 1 else np.nan


def _trustworthiness(X_test, codes_test):
    # sklearn requires n_neighbors < n_samples / 2.
    n_neighbors = min(5, (len(X_test) - 1) // 2)
    if n_neighbors < 1:
        return np.nan
    return trustworthiness(X_test, codes_test, n_neighbors=n_neighbors)


def compare_reducers(
    X,
    y=None,
    *,
    reducers=None,
    n_components=(2, 8, 16),
    test_size=0.3,
    random_state=None,
    progress=False,
    **estimator_params,
):
    """Fit reducers at several latent sizes and score them on held-out data.

    Each reducer is cloned, given each ``n_components``, fitted on the training
    part of ``X`` and scored on the held-out part.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data, already scaled as the reducers should see it.
    y : array-like of shape (n_samples,) or None, default=None
        Optional target: class labels give a logistic regression's accuracy on
        the codes, a continuous target the R^2 of a ridge regression. Class
        labels also stratify the split.
    reducers : dict of str to estimator, list of estimator or None, default=None
        Transformers with an ``n_components`` parameter. None compares PCA,
        AutoencoderTransformer and VAETransformer.
    n_components : sequence of int, default=(2, 8, 16)
        Latent sizes to try. A size a reducer cannot fit (PCA beyond the number
        of features, say) is skipped with a warning.
    test_size : float, default=0.3
        Held-out fraction.
    random_state : int or None, default=None
        Seeds the split, and the skae estimators unless ``estimator_params``
        sets their own.
    progress : bool, default=False
        Show a tqdm progress bar over the fits.
    **estimator_params : dict
        Parameters of the default AutoencoderTransformer and VAETransformer
        (for instance ``max_iter=50`` or ``device="cpu"``).

    Returns
    -------
    table : pandas.DataFrame
        One row per reducer and latent size, with the columns ``reducer``,
        ``n_components``, ``reconstruction_mse`` (held out, NaN without
        ``inverse_transform``), ``trustworthiness`` (of the held-out codes),
        ``fit_time_s``, ``transform_time_s``, ``downstream_metric``
        (``"accuracy"``, ``"r2"`` or None), ``downstream_score``, and for
        reducers that can ``sample`` (NaN for the others, such as PCA):
        ``sample_precision``, ``sample_recall`` and ``sample_coverage`` of as
        many samples as held-out rows, against the held-out rows (at most
        2,000, drawn at random; :func:`skae.metrics.sample_quality`), and for
        skae's estimators
        ``latent_holes`` and ``latent_reached``, where their latent draws fall
        against the training rows' codes (:func:`skae.metrics.latent_coverage`).

    See Also
    --------
    sklearn.manifold.trustworthiness : How well the codes keep neighbours.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skae import compare_reducers
    >>> X, y = load_iris(return_X_y=True)
    >>> table = compare_reducers(X, y, n_components=[2], max_iter=5, random_state=0)
    >>> list(table["reducer"])
    ['PCA', 'AutoencoderTransformer', 'VAETransformer']
    """
    import pandas as pd

    X = check_array(X, dtype=[np.float64, np.float32])
    task = _task(y)
    estimator_params = {"random_state": random_state, **estimator_params}
    named = _named_reducers(reducers, estimator_params)
    stratify = y if task == "classification" and np.min(np.unique(y, return_counts=True)[1]) > 1 else None
    split = train_test_split(
        X, *([] if y is None else [np.asarray(y)]), test_size=test_size,
        random_state=random_state, stratify=stratify,
    )
    X_train, X_test = split[0], split[1]
    y_train, y_test = (split[2], split[3]) if y is not None else (None, None)

    jobs = [(name, reducer, k) for name, reducer in named.items() for k in n_components]
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="fitting reducers", unit="fit")
    rows = []
    for name, reducer, k in jobs:
        if progress:
            jobs.set_postfix_str(f"{name} n_components={k}")
        model = clone(reducer).set_params(n_components=k)
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train)
        except ValueError as error:
            warnings.warn(f"{name} with n_components={k} was skipped: {error}", UserWarning)
            continue
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        codes_test = np.asarray(model.transform(X_test))
        transform_time = time.perf_counter() - start
        mse = np.nan
        if hasattr(model, "inverse_transform"):
            mse = float(np.mean((np.asarray(model.inverse_transform(codes_test)) - X_test) ** 2))
        score = np.nan
        if task is not None:
            codes_train = np.asarray(model.transform(X_train))
            score = _downstream(task, codes_train, y_train, codes_test, y_test)
        rows.append({
            "reducer": name,
            "n_components": k,
            "reconstruction_mse": mse,
            "trustworthiness": _trustworthiness(X_test, codes_test),
            "fit_time_s": fit_time,
            "transform_time_s": transform_time,
            "downstream_metric": {"classification": "accuracy", "regression": "r2"}.get(task),
            "downstream_score": score,
            **_sampling_scores(model, X_train, X_test, random_state=random_state),
        })
    return pd.DataFrame(rows, columns=COLUMNS)
