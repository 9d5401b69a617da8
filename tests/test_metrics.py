"""skae.metrics: sample quality against hand-computed cases, latent coverage, bad input."""

import numpy as np
import pytest
from scipy.linalg import sqrtm
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier

from skae import AutoencoderTransformer, VAETransformer
from skae.metrics import (
    _latent_neighbourhoods,
    _sampling_scores,
    frechet_distance,
    latent_coverage,
    sample_quality,
)

from .helpers import tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# A case small enough to work out by hand, with k = 1 (see test_hand_computed_case).
REAL = np.array([[0.0], [1.0], [2.0], [10.0], [20.0]])
GENERATED = np.array([[0.5], [1.5], [5.0], [6.0]])


def test_hand_computed_case():
    # Real balls (distance to the nearest other real row): 0->1, 1->1, 2->1, 10->8, 20->10.
    # Generated balls: 0.5->1, 1.5->1, 5->1, 6->1.
    measures = sample_quality(REAL, GENERATED, n_neighbors=1)
    # Every generated row lies in some real ball (5 and 6 in the ball of 10).
    assert measures["precision"] == 1.0
    # 0, 1 and 2 lie in generated balls; 10 and 20 do not.
    assert measures["recall"] == pytest.approx(3 / 5)
    # Real balls holding each generated row: 0.5 in {0, 1}, 1.5 in {1, 2}, 5 in {10}, 6 in {10}.
    assert measures["density"] == pytest.approx(6 / 4)
    # Every real ball holds a generated row except that of 20 (nearest sample 6, radius 10).
    assert measures["coverage"] == pytest.approx(4 / 5)
    # In one dimension the Fréchet distance is (m1 - m2)^2 + (s1 - s2)^2.
    real_mean, real_variance = 33 / 5, 287.2 / 4
    generated_mean, generated_variance = 13 / 4, 21.25 / 3
    expected = (real_mean - generated_mean) ** 2 + (
        np.sqrt(real_variance) - np.sqrt(generated_variance)
    ) ** 2
    assert measures["frechet_distance"] == pytest.approx(expected)
    assert frechet_distance(REAL, GENERATED) == pytest.approx(expected)


def test_balls_are_closed_and_count_duplicates():
    # Each real row's nearest other row is at distance 1: a sample exactly 1 away is inside.
    real = np.array([[0.0], [1.0], [3.0], [4.0]])
    measures = sample_quality(real, np.array([[2.0], [5.0]]), n_neighbors=1)
    assert measures["precision"] == 1.0
    assert measures["coverage"] == pytest.approx(3 / 4)  # 0 is 2 away from the nearest sample
    duplicated = np.array([[0.0], [0.0], [7.0], [7.0]])
    assert sample_quality(duplicated, duplicated, n_neighbors=1)["precision"] == 1.0


def test_identical_sets_and_a_shifted_copy():
    X = np.random.default_rng(0).normal(size=(200, 3))
    same = sample_quality(X, X)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["frechet_distance"] == pytest.approx(0.0, abs=1e-9)
    far = sample_quality(X, X + 100.0)
    assert far["precision"] == far["recall"] == far["coverage"] == far["density"] == 0.0
    assert far["frechet_distance"] == pytest.approx(3 * 100.0**2)


def test_frechet_distance_matches_the_matrix_square_root_formula():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))
    b = rng.normal(size=(250, 4)) @ rng.normal(size=(4, 4)) + 0.5
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        cov_a + cov_b - 2 * np.real(sqrtm(cov_a @ cov_b))
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


def test_measures_rank_a_mode_collapsed_generator_below_a_faithful_one():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [20, 0], [40, 0], [0, 20], [20, 20], [40, 20]])
    real = centres[rng.integers(6, size=600)] + rng.normal(size=(600, 2))
    faithful = centres[rng.integers(6, size=600)] + rng.normal(size=(600, 2))
    collapsed = centres[0] + rng.normal(scale=0.3, size=(600, 2))
    good, bad = sample_quality(real, faithful), sample_quality(real, collapsed)
    # The collapsed samples crowd into the middle of one cluster of six.
    assert good["recall"] > 0.8 > 0.25 > bad["recall"]
    assert good["coverage"] > 0.8 > 0.25 > bad["coverage"]
    assert bad["density"] > good["density"]  # crowding shows as density above 1
    assert bad["frechet_distance"] > 10 * good["frechet_distance"]


def test_feature_spaces():
    rng = np.random.default_rng(0)
    real, generated = rng.normal(size=(80, 5)), rng.normal(0.3, 1.0, size=(60, 5))
    pca = PCA(2).fit(real)
    via_transformer = sample_quality(real, generated, features=pca)
    assert via_transformer == sample_quality(pca.transform(real), pca.transform(generated))
    assert sample_quality(real, generated, features=pca.transform) == via_transformer

    labels = (real[:, 0] > 0).astype(int)
    mlp = MLPClassifier(hidden_layer_sizes=(7, 4), activation="tanh", max_iter=50,
                        random_state=0).fit(real, labels)

    def hidden(X):
        return np.tanh(np.tanh(X @ mlp.coefs_[0] + mlp.intercepts_[0]) @ mlp.coefs_[1]
                       + mlp.intercepts_[1])

    assert sample_quality(real, generated, features=mlp) == pytest.approx(
        sample_quality(hidden(real), hidden(generated))
    )
    with pytest.raises(TypeError, match="features must be"):
        sample_quality(real, generated, features="pixels")


@pytest.mark.parametrize(
    "real, generated, message",
    [
        (np.zeros((10, 3)), np.zeros((10, 2)), "X_real has 3 features but X_generated has 2"),
        (np.zeros((0, 3)), np.zeros((10, 3)), "X_real is empty"),
        (np.zeros((10, 3)), np.zeros((0, 3)), "X_generated is empty"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), "X_real contains NaN"),
        (np.zeros((10, 3)), np.full((10, 3), np.inf), "X_generated contains infinity"),
        (np.zeros((5, 3)), np.zeros((10, 3)), "n_neighbors=5 needs more than 5 rows in X_real"),
        (np.zeros((10, 3)), np.zeros((3, 3)), "needs more than 5 rows in X_generated, which has 3"),
        (np.zeros(10), np.zeros((10, 1)), "Expected a 2-dimensional|Expected 2D array"),
    ],
)
def test_bad_input_is_a_clear_value_error(real, generated, message):
    with pytest.raises(ValueError, match=message):
        sample_quality(real, generated)


def test_bad_parameters():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="n_neighbors"):
        sample_quality(X, X, n_neighbors=0)
    with pytest.raises(ValueError, match="X_generated has 1 row"):
        frechet_distance(X, X[:1])
    with pytest.raises(ValueError, match="features mapped the 10 rows"):
        sample_quality(X, X, features=lambda rows: rows[:3])


def test_latent_neighbourhoods_by_hand():
    codes = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # nearest other: 1
    in_hole, reached = _latent_neighbourhoods(codes, np.array([[0.5, 0.5], [5.0, 5.0]]), 0.95)
    assert in_hole.tolist() == [False, True]
    assert reached.all()
    in_hole, reached = _latent_neighbourhoods(codes, np.array([[0.0, 0.0]]), 0.95)
    assert not in_hole.any()
    assert reached.tolist() == [True, True, True, False]  # (1, 1) is sqrt(2) away


def test_latent_coverage_uses_the_estimators_sampler(digits):
    X, _ = digits
    normal = tiny(AutoencoderTransformer, latent_sampler="normal", max_iter=30).fit(X)
    codes = normal.transform(X)
    shares = latent_coverage(normal, X, random_state=0)
    assert set(shares) == {"holes", "reached"}
    in_hole, reached = _latent_neighbourhoods(
        codes, normal._draw_latent(len(X), np.random.RandomState(0)), 0.95
    )
    assert shares == {"holes": in_hole.mean(), "reached": reached.mean()}
    vae = tiny(VAETransformer, max_iter=3).fit(X)
    assert 0 <= latent_coverage(vae, X, n_draws=50, random_state=0)["holes"] <= 1
    with pytest.raises(TypeError, match="skae AutoencoderTransformer or VAETransformer"):
        latent_coverage(PCA(2).fit(X), X)
    with pytest.raises(NotFittedError):
        latent_coverage(AutoencoderTransformer(), X)
    with pytest.raises(ValueError, match="quantile"):
        latent_coverage(vae, X, quantile=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        latent_coverage(vae, X[:1])


def test_sampling_scores_for_compare(digits):
    X, _ = digits
    ae = tiny(AutoencoderTransformer, max_iter=3).fit(X[:300])
    scores = _sampling_scores(ae, X[:300], X[300:], random_state=0)
    assert all(0 <= value <= 1 for value in scores.values())
    blank = _sampling_scores(PCA(2).fit(X), X[:300], X[300:])
    assert all(np.isnan(value) for value in blank.values()) and blank.keys() == scores.keys()
    assert all(np.isnan(value) for value in _sampling_scores(ae, X[:300], X[300:304]).values())


def test_holes_and_reach_tell_a_missing_sampler_from_a_faithful_one():
    # Codes on a ring of radius 10: N(0, I) draws fall inside it, in the hole, and reach
    # none of it; draws on the ring reach most of it.
    angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    codes = 10 * np.column_stack([np.cos(angles), np.sin(angles)])
    rng = np.random.default_rng(0)
    in_hole, reached = _latent_neighbourhoods(codes, rng.normal(size=(400, 2)), 0.95)
    assert in_hole.all() and not reached.any()
    on_ring = codes + rng.normal(scale=0.01, size=codes.shape)
    in_hole, reached = _latent_neighbourhoods(codes, on_ring, 0.95)
    assert not in_hole.any() and reached.mean() > 0.9


def test_sampling_scores_measure_large_data_on_a_subsample(monkeypatch, digits):
    import skae.metrics as metrics

    X, _ = digits
    ae = tiny(AutoencoderTransformer, max_iter=2).fit(X)
    seen = []
    real_quality = metrics.sample_quality
    monkeypatch.setattr(metrics, "_MAX_SAMPLING_ROWS", 50)
    monkeypatch.setattr(metrics, "sample_quality",
                        lambda real, generated, **kw: seen.append((len(real), len(generated)))
                        or real_quality(real, generated, **kw))
    scores = metrics._sampling_scores(ae, X[:300], X[300:], random_state=0)
    assert seen == [(50, 50)] and np.isfinite(list(scores.values())).all()
