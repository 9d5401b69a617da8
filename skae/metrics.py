"""How good are a generator's samples, and where do its latent draws fall?

Measures that need no pretrained network, so they work on tabular data as well
as on images:

- :func:`sample_quality`: k-nearest-neighbour precision and recall
  (Kynkäänniemi et al., 2019), density and coverage (Naeem et al., 2020) and
  the Fréchet distance, in the data's own features or in a feature space of
  your choice (a fitted transformer, or a fitted ``MLPClassifier``'s last
  hidden layer).
- :func:`frechet_distance`: the Fréchet distance between Gaussians fitted to
  two sets of rows.
- :func:`latent_coverage`: the share of a skae estimator's latent draws that
  fall in holes of its training codes, far from every one of them, and the
  share of the codes its draws reach.
"""

import inspect
from numbers import Integral, Real

import numpy as np
from scipy.spatial.distance import cdist
from scipy.special import expit
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["frechet_distance", "latent_coverage", "sample_quality"]

# Distances are computed in blocks of about this many float64 values (32 MiB).
_BLOCK_VALUES = 4 * 1024 * 1024

_MLP_ACTIVATIONS = {
    "identity": lambda a: a,
    "logistic": expit,
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0.0),
}


def _check_rows(X, name):
    X = check_array(X, dtype=np.float64, input_name=name, ensure_min_samples=0)
    if len(X) == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}): there are no rows to compare.")
    return X


def _check_pair(X_real, X_generated):
    real = _check_rows(X_real, "X_real")
    generated = _check_rows(X_generated, "X_generated")
    if real.shape[1] != generated.shape[1]:
        raise ValueError(
            f"X_real has {real.shape[1]} features but X_generated has {generated.shape[1]}: "
            "both must be rows of the same width."
        )
    return real, generated


def _hidden_layer(mlp, X):
    """Activations of a fitted scikit-learn MLP's last hidden layer."""
    if len(mlp.coefs_) < 2:
        raise ValueError(f"features={type(mlp).__name__} has no hidden layer to use as features.")
    activation = _MLP_ACTIVATIONS[mlp.activation]
    hidden = X
    for weights, bias in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1]):
        hidden = activation(hidden @ weights + bias)
    return hidden


def _feature_map(features, X, name):
    """``X`` in the feature space ``features`` names, checked to be finite."""
    if features is None:
        return X
    if hasattr(features, "coefs_") and hasattr(features, "intercepts_"):
        mapped = _hidden_layer(features, X)
    elif hasattr(features, "transform"):
        mapped = features.transform(X)
    elif callable(features):
        mapped = features(X)
    else:
        raise TypeError(
            "features must be None, a fitted transformer, a fitted MLPClassifier or "
            f"MLPRegressor, or a callable; got {type(features).__name__}."
        )
    mapped = check_array(mapped, dtype=np.float64, input_name=f"features of {name}")
    if len(mapped) != len(X):
        raise ValueError(
            f"features mapped the {len(X)} rows of {name} to {len(mapped)} rows; "
            "it must keep one row per input row."
        )
    return mapped


def _row_blocks(n_rows, n_columns):
    step = max(1, _BLOCK_VALUES // max(1, n_columns))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _kth_neighbour_distances(X, k):
    """Distance from each row of ``X`` to its ``k``-th nearest other row."""
    radii = np.empty(len(X))
    for block in _row_blocks(len(X), len(X)):
        distances = cdist(X[block], X)
        rows = np.arange(block.stop - block.start)
        distances[rows, rows + block.start] = np.inf  # a row is not its own neighbour
        radii[block] = np.partition(distances, k - 1, axis=1)[:, k - 1]
    return radii


def _neighbourhood_counts(real, generated, k):
    """The four k-NN measures, from one pass over the real-by-generated distances."""
    real_radii = _kth_neighbour_distances(real, k)
    generated_radii = _kth_neighbour_distances(generated, k)
    # For each generated row: in how many real rows' k-NN balls it lies.
    balls_per_generated = np.zeros(len(generated), dtype=np.int64)
    real_is_covered = np.zeros(len(real), dtype=bool)
    real_is_recalled = np.zeros(len(real), dtype=bool)
    for block in _row_blocks(len(real), len(generated)):
        distances = cdist(real[block], generated)
        inside_real_ball = distances <= real_radii[block, np.newaxis]
        balls_per_generated += inside_real_ball.sum(axis=0)
        real_is_covered[block] = inside_real_ball.any(axis=1)
        real_is_recalled[block] = (distances <= generated_radii[np.newaxis]).any(axis=1)
    return {
        "precision": float(np.mean(balls_per_generated > 0)),
        "recall": float(np.mean(real_is_recalled)),
        "density": float(balls_per_generated.sum() / (k * len(generated))),
        "coverage": float(np.mean(real_is_covered)),
    }


def _frechet(real, generated):
    mean_difference = real.mean(axis=0) - generated.mean(axis=0)
    cov_real = np.atleast_2d(np.cov(real, rowvar=False))
    cov_generated = np.atleast_2d(np.cov(generated, rowvar=False))
    # Tr((S1 S2)^(1/2)) as the trace of the symmetric S1^(1/2) S2 S1^(1/2)'s square root:
    # symmetric eigendecompositions only, which stay real where scipy's sqrtm can turn complex.
    eigenvalues, eigenvectors = np.linalg.eigh(cov_real)
    root_real = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    product = root_real @ cov_generated @ root_real
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    distance = mean_difference @ mean_difference + np.trace(cov_real) + np.trace(cov_generated)
    return float(max(distance - 2 * cross, 0.0))


@validate_params(
    {"X_real": ["array-like"], "X_generated": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def frechet_distance(X_real, X_generated):
    """Fréchet distance between Gaussians fitted to two sets of rows.

    ``||m1 - m2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` for the means ``m`` and
    covariances ``S`` (with ``n - 1`` in the denominator) of the two sets: 0
    for sets with the same mean and covariance, and in the features' units
    squared. On an image classifier's features it is the FID; use
    :func:`sample_quality` with ``features=`` for other feature spaces.

    Parameters
    ----------
    X_real : array-like of shape (n_real, n_features)
        Reference rows.
    X_generated : array-like of shape (n_generated, n_features)
        Rows to compare with them.

    Returns
    -------
    distance : float
        The Fréchet distance, never negative.

    See Also
    --------
    sample_quality : This distance and four nearest-neighbour measures.

    Examples
    --------
    >>> import numpy as np
    >>> from skae.metrics import frechet_distance
    >>> a = np.array([[0.0], [2.0]])
    >>> round(frechet_distance(a, a + 3), 6)
    9.0
    """
    real, generated = _check_pair(X_real, X_generated)
    for rows, name in ((real, "X_real"), (generated, "X_generated")):
        if len(rows) < 2:
            raise ValueError(f"{name} has {len(rows)} row; a covariance needs at least 2.")
    return _frechet(real, generated)


@validate_params(
    {
        "X_real": ["array-like"],
        "X_generated": ["array-like"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def sample_quality(X_real, X_generated, *, n_neighbors=5, features=None):
    """Precision, recall, density, coverage and Fréchet distance of generated rows.

    Every real row gets a ball reaching to its ``n_neighbors``-th nearest
    other real row, and every generated row one reaching to its
    ``n_neighbors``-th nearest other generated row (Euclidean distance, balls
    closed). Then:

    - **precision**: the share of generated rows inside at least one real
      row's ball: how many samples look like some real data (Kynkäänniemi et
      al., 2019, "Improved Precision and Recall Metric for Assessing
      Generative Models").
    - **recall**: the share of real rows inside at least one generated row's
      ball: how much of the real data the samples reach (same paper).
    - **density**: how many real rows' balls a generated row lies in, on
      average, divided by ``n_neighbors``: about 1 for samples distributed
      like the real data, more where samples crowd into dense regions (Naeem
      et al., 2020, "Reliable Fidelity and Diversity Metrics for Generative
      Models").
    - **coverage**: the share of real rows whose ball holds at least one
      generated row; unlike recall it is not fooled by a few outlying
      samples (same paper).
    - **frechet_distance**: see :func:`frechet_distance`.

    Precision, recall and coverage lie in [0, 1], higher is better; density
    is at least 0. Recall and coverage grow with the number of generated
    rows: compare generators with the same number of samples. All pairwise
    distances are computed (in blocks, so memory stays small): the time grows
    with ``n_real * (n_real + n_generated) + n_generated ** 2``; subsample
    sets of many tens of thousands of rows.

    Parameters
    ----------
    X_real : array-like of shape (n_real, n_features)
        Real rows, for instance held-out data.
    X_generated : array-like of shape (n_generated, n_features)
        Generated rows, from any generator.
    n_neighbors : int, default=5
        The ``k`` of the k-nearest-neighbour balls; both sets need more rows
        than this.
    features : None, transformer, MLP or callable, default=None
        Feature space in which all five measures are computed. None: the
        rows as they are (scale them so that Euclidean distance means
        something, as for any k-NN method). A fitted transformer: its
        ``transform``. A fitted :class:`~sklearn.neural_network.MLPClassifier`
        or :class:`~sklearn.neural_network.MLPRegressor`: the activations of
        its last hidden layer (an MLP trained to classify the real data gives
        a feature space that, like the Inception features of the FID, tells
        classes apart). A callable: ``features(X)``.

    Returns
    -------
    measures : dict of str to float
        With the keys ``"precision"``, ``"recall"``, ``"density"``,
        ``"coverage"`` and ``"frechet_distance"``.

    See Also
    --------
    frechet_distance : The Fréchet distance alone.
    latent_coverage : Where a skae estimator's latent draws fall.

    Examples
    --------
    >>> import numpy as np
    >>> from skae.metrics import sample_quality
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(500, 2))
    >>> good = sample_quality(real, rng.normal(size=(500, 2)))
    >>> bad = sample_quality(real, rng.normal(0.5, 0.2, size=(500, 2)))
    >>> good["coverage"] > 0.9 > 0.3 > bad["coverage"]
    True
    """
    real, generated = _check_pair(X_real, X_generated)
    for rows, name in ((real, "X_real"), (generated, "X_generated")):
        if len(rows) <= n_neighbors:
            raise ValueError(
                f"n_neighbors={n_neighbors} needs more than {n_neighbors} rows in {name}, "
                f"which has {len(rows)}: lower n_neighbors or give more rows."
            )
    real = _feature_map(features, real, "X_real")
    generated = _feature_map(features, generated, "X_generated")
    if real.shape[1] != generated.shape[1]:
        raise ValueError(
            f"features mapped X_real to {real.shape[1]} columns but X_generated to "
            f"{generated.shape[1]}."
        )
    return {
        **_neighbourhood_counts(real, generated, n_neighbors),
        "frechet_distance": _frechet(real, generated),
    }


def _latent_neighbourhoods(codes, draws, quantile):
    """``(in_hole, reached)``: draws far from every code, codes near some draw.

    "Far" and "near" are measured against the ``quantile`` of the codes'
    distances to their nearest other code.
    """
    threshold = np.quantile(_kth_neighbour_distances(codes, 1), quantile)
    nearest_code = np.empty(len(draws))
    nearest_draw = np.full(len(codes), np.inf)
    for block in _row_blocks(len(draws), len(codes)):
        distances = cdist(draws[block], codes)
        nearest_code[block] = distances.min(axis=1)
        np.minimum(nearest_draw, distances.min(axis=0), out=nearest_draw)
    return nearest_code > threshold, nearest_draw <= threshold


def _latent_codes_and_draws(estimator, X, n_draws, random_state):
    """The codes of ``X`` and ``n_draws`` (None: as many) codes drawn as ``sample`` does."""
    if not hasattr(estimator, "_draw_latent"):
        raise TypeError(
            "latent_coverage needs a skae AutoencoderTransformer or VAETransformer, "
            f"got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    codes = np.asarray(estimator.transform(X), dtype=np.float64)
    if len(codes) < 2:
        raise ValueError(f"X has {len(codes)} row; the holes between codes need at least 2.")
    n_draws = len(codes) if n_draws is None else int(n_draws)
    draws = estimator._draw_latent(n_draws, check_random_state(random_state))
    return codes, np.asarray(draws, dtype=np.float64)


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "n_draws": [None, Interval(Integral, 1, None, closed="left")],
        "quantile": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def latent_coverage(estimator, X, *, n_draws=None, quantile=0.95, random_state=None):
    """Where a skae estimator's latent draws fall, against the codes of its data.

    Draws codes the way :meth:`sample` does (the autoencoder's
    ``latent_sampler``, the VAE's N(0, I) prior) and compares them with the
    codes of ``X`` (:meth:`transform`: the VAE's posterior means). A distance
    counts as "near" up to the ``quantile`` of the codes' distances to their
    nearest other code. Two shares come out:

    - ``"holes"``: the share of draws with no code near them. The decoder
      never saw anything like these codes in training; a sampler that puts
      its mass where the codes are scores about ``1 - quantile``, one that
      draws in the gaps between clusters or beyond them scores more.
    - ``"reached"``: the share of codes with a draw near them. A sampler that
      crowds into one region (N(0, I) draws on an autoencoder whose codes
      spread far wider) misses most codes and scores little, even with no
      draw in a hole.

    Parameters
    ----------
    estimator : fitted AutoencoderTransformer or VAETransformer
        The model whose sampler is checked.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Rows whose codes are the reference, typically the training rows.
    n_draws : int or None, default=None
        Latent draws; None draws as many as ``X`` has rows, so that
        ``"reached"`` compares like with like across data sets.
    quantile : float, default=0.95
        Which of the codes' nearest-neighbour distances separates near from
        far, in (0, 1).
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.

    Returns
    -------
    shares : dict of str to float
        ``{"holes": ..., "reached": ...}``, each in [0, 1].

    See Also
    --------
    skae.plotting.LatentSpaceDisplay : Shows the draws and the holes, with ``holes=True``.
    sample_quality : How good the decoded samples are.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> from skae.metrics import latent_coverage
    >>> X = load_digits().data / 16
    >>> ae = AutoencoderTransformer(latent_sampler="normal", max_iter=5, random_state=0).fit(X)
    >>> sorted(latent_coverage(ae, X, random_state=0))
    ['holes', 'reached']
    """
    codes, draws = _latent_codes_and_draws(estimator, X, n_draws, random_state)
    in_hole, reached = _latent_neighbourhoods(codes, draws, quantile)
    return {"holes": float(in_hole.mean()), "reached": float(reached.mean())}


# compare_reducers measures sampling on at most this many rows: the measures' cost
# grows with the square of the rows.
_MAX_SAMPLING_ROWS = 2000


def _sampling_scores(model, X_train, X_held_out, *, random_state=None):
    """Sample precision, recall and coverage against held-out rows, and latent shares.

    For :func:`skae.compare_reducers`: NaN for what ``model`` cannot do (PCA
    cannot sample; only skae's estimators have latent draws) or what the data
    is too small for. As many samples as held-out rows, so that recall and
    coverage compare like with like across models; at most
    ``_MAX_SAMPLING_ROWS`` rows of each set, drawn at random.
    """
    scores = dict.fromkeys(
        ("sample_precision", "sample_recall", "sample_coverage", "latent_holes", "latent_reached"),
        np.nan,
    )
    n_neighbors = 5
    if not hasattr(model, "sample") or len(X_held_out) <= n_neighbors:
        return scores
    rng = check_random_state(random_state)
    X_train, X_held_out = (
        X[rng.choice(len(X), _MAX_SAMPLING_ROWS, replace=False)]
        if len(X) > _MAX_SAMPLING_ROWS else X
        for X in (X_train, X_held_out)
    )
    if "random_state" in inspect.signature(model.sample).parameters:
        samples = model.sample(len(X_held_out), random_state=rng)
    else:
        samples = model.sample(len(X_held_out))
    if isinstance(samples, tuple):  # scikit-learn's mixtures return (X, labels)
        samples = samples[0]
    quality = sample_quality(X_held_out, samples, n_neighbors=n_neighbors)
    scores["sample_precision"] = quality["precision"]
    scores["sample_recall"] = quality["recall"]
    scores["sample_coverage"] = quality["coverage"]
    if hasattr(model, "_draw_latent") and len(X_train) >= 2:
        shares = latent_coverage(model, X_train, random_state=rng)
        scores["latent_holes"], scores["latent_reached"] = shares["holes"], shares["reached"]
    return scores
