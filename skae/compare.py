"""compare_reducers: PCA, AE and VAE side by side on held-out data, as one table."""

import time
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.manifold import trustworthiness
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_array, column_or_1d

from .autoencoder import AutoencoderTransformer
from .metrics import _sampling_scores
from .vae import VAETransformer

__all__ = ["compare_reducers", "resolve_task"]

COLUMNS = [
    "reducer",
    "n_components",
    "reconstruction_mse",
    "mse_vs_mean",
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
    "note",
]

TASKS = ("auto", "classification", "regression")

# An integer-valued numeric target is taken for class labels when it has at most
# this many distinct values, or at most this share of the rows as distinct
# values (the shares and the cap are AutoGluon's; the floor of 10 keeps a small
# table with a handful of labels a classification).
_FEW_CLASSES = 10
_MAX_CLASSES = 1000
_CLASS_SHARE_SMALL, _CLASS_SHARE_LARGE, _LARGE_DATA = 0.1, 0.05, 1000

# A model is flagged when its held-out error is not below the mean's by this
# many standard errors of the paired per-row difference.
_FLAG_STANDARD_ERRORS = 2.0

NOT_BETTER_THAN_MEAN = "no better than the mean"
STOPPED_AT_MAX_ITER = "stopped at max_iter"
DIVERGED = "diverged"


def resolve_task(y, task="auto"):
    """Decide whether a target is for classification or regression.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or None
        The target.
    task : {"auto", "classification", "regression"}, default="auto"
        ``"auto"`` decides from the values, as a careful user would: text,
        booleans and two distinct values are classes; numbers with a
        fractional part are a regression; whole numbers (also stored as
        floats, such as 151.0) are classes when they have few distinct values
        (at most 10, or at most 10% of the rows, 5% beyond 1,000 rows, and
        never more than 1,000), else a regression: the diabetes data's
        target, 214 distinct values in 442 rows, is a regression.

    Returns
    -------
    task : {"classification", "regression"} or None
        None when ``y`` is None.

    Raises
    ------
    ValueError
        If ``task`` is unknown, is given without a target, or says
        regression for a target that is not numeric, or if ``y`` is not
        one-dimensional or holds missing values.

    See Also
    --------
    compare_reducers : Uses it to score the codes with a classifier or a
        regressor.
    sklearn.utils.multiclass.type_of_target : Calls any whole numbers
        classes, however many.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes, load_wine
    >>> from skae.compare import resolve_task
    >>> resolve_task(load_diabetes().target)
    'regression'
    >>> resolve_task(load_wine().target.astype(float))
    'classification'
    >>> resolve_task(load_diabetes().target, task="classification")
    'classification'
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, TASKS))}; got {task!r}.")
    if y is None:
        if task != "auto":
            raise ValueError(f"task={task!r} needs a target y; none was given.")
        return None
    y = np.asarray(y)
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise ValueError(f"y must be one-dimensional, got an array of shape {y.shape}.")
    y = y.ravel()
    numeric = np.issubdtype(y.dtype, np.number)
    if numeric and not np.isfinite(y).all():
        raise ValueError("y contains NaN or infinity; drop or impute those rows first.")
    if not numeric and y.dtype.kind == "O" and any(v is None or v != v for v in y):
        raise ValueError("y contains missing values; drop or impute those rows first.")
    if task == "regression" and not numeric:
        raise ValueError(
            f"task='regression' needs a numeric target, got values such as {y[:1].tolist()[0]!r}."
        )
    if task != "auto":
        return task
    if not numeric:
        return "classification"
    n_distinct = len(np.unique(y))
    if n_distinct <= 2:
        return "classification"
    if not np.array_equal(y, np.round(y)):
        return "regression"
    share = _CLASS_SHARE_LARGE if len(y) > _LARGE_DATA else _CLASS_SHARE_SMALL
    few = n_distinct <= _FEW_CLASSES or n_distinct <= share * len(y)
    return "classification" if few and n_distinct <= _MAX_CLASSES else "regression"


def sizes_to_compare(n_components, n_features):
    """Split latent sizes into those to fit and those skipped for every reducer.

    A code with as many components as there are features (or more) is no
    reduction, and PCA cannot fit it: such sizes are skipped for every
    reducer alike, so each row of the table has its PCA baseline.

    Parameters
    ----------
    n_components : sequence of int
        Latent sizes asked for.
    n_features : int
        Number of features of the data.

    Returns
    -------
    kept, skipped : list of int
        Sizes smaller than ``n_features`` (in the order given, without
        repeats), and the others.
    """
    sizes = list(dict.fromkeys(int(k) for k in n_components))
    return [k for k in sizes if k < n_features], [k for k in sizes if k >= n_features]


class HeldOut(NamedTuple):
    """The split a comparison fits on (``*_train``) and scores on (``*_test``)."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray = None
    y_test: np.ndarray = None
    task: str = None


def held_out_split(X, y=None, *, task="auto", test_size=0.3, random_state=None):
    """The train/test split :func:`compare_reducers` uses, with the target's task.

    Class labels stratify the split when every class has at least two rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data.
    y : array-like of shape (n_samples,) or None, default=None
        Optional target.
    task : {"auto", "classification", "regression"}, default="auto"
        See :func:`resolve_task`.
    test_size : float, default=0.3
        Held-out fraction.
    random_state : int or None, default=None
        Seeds the split.

    Returns
    -------
    held_out : HeldOut
        ``(X_train, X_test, y_train, y_test, task)``; the targets are None
        without ``y``.
    """
    X = check_array(X, dtype=[np.float64, np.float32])
    task = resolve_task(y, task)
    if y is None:
        X_train, X_test = train_test_split(X, test_size=test_size, random_state=random_state)
        return HeldOut(X_train, X_test)
    y = column_or_1d(np.asarray(y), warn=False)
    if len(y) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}.")
    stratify = None
    if task == "classification" and np.unique(y, return_counts=True)[1].min() > 1:
        stratify = y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state, stratify=stratify
    )
    return HeldOut(X_train, X_test, y_train, y_test, task)


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


def _downstream(task, codes_train, y_train, codes_test, y_test):
    if task == "classification":
        # As class indices: scikit-learn's classifiers take fractional numbers
        # (0.5 and 1.5, or any target the user called classes) for a regression.
        labels = np.unique(np.concatenate([y_train, y_test]), return_inverse=True)[1]
        y_train, y_test = labels[: len(y_train)], labels[len(y_train) :]
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


def _reconstruction(model, codes_test, held_out):
    """``(held-out MSE, MSE / the training mean's, whether it is no better than the mean)``.

    "No better" is a paired comparison over held-out rows: the mean's squared
    error minus the model's, per row, must be positive by more than
    ``_FLAG_STANDARD_ERRORS`` standard errors.
    """
    if not hasattr(model, "inverse_transform"):
        return np.nan, np.nan, False
    X_test = held_out.X_test
    model_errors = ((np.asarray(model.inverse_transform(codes_test)) - X_test) ** 2).sum(axis=1)
    mean_errors = ((held_out.X_train.mean(axis=0) - X_test) ** 2).sum(axis=1)
    n_features = X_test.shape[1]
    mse = float(model_errors.mean() / n_features)
    ratio = float(model_errors.mean() / mean_errors.mean()) if mean_errors.mean() > 0 else np.nan
    gain = mean_errors - model_errors
    standard_error = gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else np.inf
    return mse, ratio, not gain.mean() > _FLAG_STANDARD_ERRORS * standard_error


def score_fitted(model, held_out):
    """The table's metric columns for one fitted reducer, scored on held-out rows.

    Parameters
    ----------
    model : fitted transformer
        Fitted on ``held_out.X_train``.
    held_out : HeldOut
        The split, from :func:`held_out_split`.

    Returns
    -------
    row : dict
        ``reconstruction_mse``, ``mse_vs_mean``, ``trustworthiness``,
        ``transform_time_s``, ``downstream_metric``, ``downstream_score`` and
        ``notes`` (a list of flags for the ``note`` column).
    """
    start = time.perf_counter()
    codes_test = np.asarray(model.transform(held_out.X_test))
    transform_time = time.perf_counter() - start
    mse, ratio, no_better = _reconstruction(model, codes_test, held_out)
    score = np.nan
    if held_out.task is not None:
        codes_train = np.asarray(model.transform(held_out.X_train))
        score = _downstream(held_out.task, codes_train, held_out.y_train, codes_test,
                            held_out.y_test)
    return {
        "reconstruction_mse": mse,
        "mse_vs_mean": ratio,
        "trustworthiness": _trustworthiness(held_out.X_test, codes_test),
        "transform_time_s": transform_time,
        "downstream_metric": {"classification": "accuracy", "regression": "r2"}.get(
            held_out.task
        ),
        "downstream_score": score,
        "notes": [NOT_BETTER_THAN_MEAN] if no_better else [],
    }


def _fit(model, X_train):
    """Fit; return ``(seconds, flags for the note column)``.

    A fit that a Ctrl-C stopped keeps its last epoch and warns; a comparison
    stops there instead (``KeyboardInterrupt``), since its rows would mix
    finished and cut-short models.
    """
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X_train)
    seconds = time.perf_counter() - start
    flags = []
    for warning in caught:
        message = str(warning.message)
        if message.startswith("Training was interrupted"):
            raise KeyboardInterrupt(message)
        if issubclass(warning.category, ConvergenceWarning) and "Maximum iterations" in message:
            flags.append(STOPPED_AT_MAX_ITER)
        elif issubclass(warning.category, ConvergenceWarning) and "diverged" in message:
            flags.append(DIVERGED)
        else:  # anything else reaches the caller as it came
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return seconds, flags


def _progress_bar(progress, total):
    """``(bar or None, whether this call owns it)`` for ``progress``."""
    if progress is True:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="fitting reducers", unit="fit"), True
    if progress is False or progress is None:
        return None, False
    return progress, False


def compare_reducers(
    X,
    y=None,
    *,
    reducers=None,
    n_components=(2, 8, 16),
    task="auto",
    test_size=0.3,
    random_state=None,
    progress=False,
    return_estimator=False,
    **estimator_params,
):
    """Fit reducers at several latent sizes and score them on held-out data.

    Each reducer is cloned, given each ``n_components``, fitted once on the
    training part of ``X`` and scored on the held-out part.

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
        Latent sizes to try. Sizes not smaller than the number of features
        are skipped for every reducer, with one warning; a size one reducer
        cannot fit (PCA beyond the number of training rows, say) is skipped
        for that reducer, with a warning.
    task : {"auto", "classification", "regression"}, default="auto"
        What ``y`` is; ``"auto"`` decides from its values (see
        :func:`skae.compare.resolve_task`: whole numbers with many distinct
        values, such as the diabetes target, are a regression).
    test_size : float, default=0.3
        Held-out fraction.
    random_state : int or None, default=None
        Seeds the split, and the skae estimators unless ``estimator_params``
        sets their own.
    progress : bool or tqdm progress bar, default=False
        True shows a tqdm progress bar over the fits; a tqdm bar (or anything
        with ``update`` and ``set_postfix_str``) is advanced by one per fit
        instead, so a caller can show one bar for more work.
    return_estimator : bool, default=False
        Add a column ``estimator`` holding each fitted reducer, and the split
        they were fitted and scored on as ``table.attrs["held_out"]`` (a
        ``HeldOut`` from :func:`held_out_split`).
    **estimator_params : dict
        Parameters of the default AutoencoderTransformer and VAETransformer
        (for instance ``max_iter=50`` or ``device="cpu"``).

    Returns
    -------
    table : pandas.DataFrame
        One row per reducer and latent size, with the columns ``reducer``,
        ``n_components``, ``reconstruction_mse`` (held out, NaN without
        ``inverse_transform``), ``mse_vs_mean`` (that error over the error of
        predicting the training mean for every row: 1 is no better than the
        mean), ``trustworthiness`` (of the held-out codes), ``fit_time_s``
        (the first torch model fitted in a process also pays torch's one-time
        start-up, a second or more), ``transform_time_s``,
        ``downstream_metric`` (``"accuracy"``, ``"r2"`` or None),
        ``downstream_score``; for reducers that can ``sample`` (NaN for the
        others, such as PCA): ``sample_precision``, ``sample_recall`` and
        ``sample_coverage`` of as many samples as held-out rows, against the
        held-out rows (at most 2,000, drawn at random;
        :func:`skae.metrics.sample_quality`), and for skae's estimators
        ``latent_holes`` and ``latent_reached``, where their latent draws fall
        against the training rows' codes (:func:`skae.metrics.latent_coverage`);
        and ``note``: ``"no better than the mean"`` when
        the held-out error is not below the mean's by two standard errors (of
        the per-row difference), ``"stopped at max_iter"`` or ``"diverged"``
        when the fit ended with that ConvergenceWarning (which is not
        repeated), several flags joined by ``"; "``, else empty.

    Raises
    ------
    KeyboardInterrupt
        When a Ctrl-C stops one of the fits: skae's estimators keep the last
        completed epoch and warn, but a comparison does not go on with a
        model cut short.

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
    >>> table["downstream_metric"].iloc[0]
    'accuracy'
    """
    import pandas as pd

    held_out = held_out_split(X, y, task=task, test_size=test_size, random_state=random_state)
    sizes, skipped = sizes_to_compare(n_components, held_out.X_train.shape[1])
    if skipped:
        warnings.warn(
            f"n_components={', '.join(map(str, skipped))} skipped for every reducer: not "
            f"smaller than the {held_out.X_train.shape[1]} features.",
            UserWarning,
            stacklevel=2,
        )
    estimator_params = {"random_state": random_state, **estimator_params}
    named = _named_reducers(reducers, estimator_params)
    jobs = [(name, reducer, k) for name, reducer in named.items() for k in sizes]
    bar, own_bar = _progress_bar(progress, len(jobs))
    rows = []
    try:
        for name, reducer, k in jobs:
            if bar is not None:
                bar.set_postfix_str(f"{name} n_components={k}")
            model = clone(reducer).set_params(n_components=k)
            try:
                fit_time, fit_flags = _fit(model, held_out.X_train)
            except ValueError as error:
                warnings.warn(f"{name} with n_components={k} was skipped: {error}", UserWarning,
                              stacklevel=2)
                continue
            finally:
                if bar is not None:
                    bar.update(1)
            metrics = score_fitted(model, held_out)
            notes = metrics.pop("notes") + fit_flags
            rows.append({
                "reducer": name,
                "n_components": k,
                **metrics,
                "fit_time_s": fit_time,
                **_sampling_scores(model, held_out.X_train, held_out.X_test,
                                   random_state=random_state),
                "note": "; ".join(notes),
                "estimator": model,
            })
    finally:
        if own_bar:
            bar.close()
    columns = COLUMNS + (["estimator"] if return_estimator else [])
    table = pd.DataFrame(rows, columns=columns)
    if return_estimator:
        table.attrs["held_out"] = held_out
    return table
