"""Behaviour of the public API on small real data."""

import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, VAETransformer
from skae.engine.networks import ACTIVATIONS

from .helpers import ESTIMATORS, reconstruction_mse, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_shapes_and_fitted_attributes(cls, digits):
    X, _ = digits
    est = tiny(cls, n_components=3, max_iter=4).fit(X)
    assert est.transform(X).shape == (len(X), 3)
    assert est.inverse_transform(est.transform(X)).shape == X.shape
    assert est.sample(7, random_state=0).shape == (7, X.shape[1])
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None
    assert est.n_features_in_ == X.shape[1]
    assert isinstance(est.encoder_, torch.nn.Module)
    assert isinstance(est.decoder_, torch.nn.Module)
    assert list(est.get_feature_names_out()) == [f"{cls.__name__.lower()}{i}" for i in range(3)]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_training_reduces_loss_and_beats_pca(cls, digits):
    X, _ = digits
    est = tiny(cls, n_components=2, hidden_layer_sizes=(64,), max_iter=150).fit(X)
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    pca = PCA(2).fit(X)
    assert reconstruction_mse(est, X) < reconstruction_mse(pca, X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_same_random_state_is_bit_identical(cls, digits):
    X, _ = digits
    a = tiny(cls, random_state=3).fit(X)
    b = tiny(cls, random_state=3).fit(X)
    c = tiny(cls, random_state=4).fit(X)
    assert_array_equal(a.transform(X), b.transform(X))
    assert a.loss_curve_ == b.loss_curve_
    assert_array_equal(a.sample(5, random_state=1), b.sample(5, random_state=1))
    assert not np.array_equal(a.transform(X), c.transform(X))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_global_random_state_is_not_touched(cls, digits):
    X, _ = digits
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()
    est = tiny(cls, random_state=0).fit(X)
    est.sample(3, random_state=0)
    est.score_samples(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert_array_equal(np.random.get_state()[1], numpy_state[1])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_sample_is_reproducible(cls, digits):
    X, _ = digits
    est = tiny(cls).fit(X)
    assert_array_equal(est.sample(4, random_state=7), est.sample(4, random_state=7))
    assert not np.array_equal(est.sample(4, random_state=7), est.sample(4, random_state=8))
    rng = np.random.RandomState(0)
    assert not np.array_equal(est.sample(4, random_state=rng), est.sample(4, random_state=rng))


def test_ae_samples_decode_draws_from_the_code_gaussian(digits):
    X, _ = digits
    ae = tiny(AutoencoderTransformer, n_components=2, max_iter=20).fit(X)
    codes = ae.transform(X)
    assert_allclose(ae.latent_mean_, codes.mean(axis=0), rtol=1e-4, atol=1e-5)
    assert_allclose(ae.latent_covariance_, np.cov(codes, rowvar=False, bias=True), rtol=1e-3)
    Z = ae._draw_latent(20_000, np.random.RandomState(0))
    spread = np.sqrt(np.diag(ae.latent_covariance_))
    assert np.all(np.abs(Z.mean(axis=0) - ae.latent_mean_) < 0.05 * spread)
    assert_allclose(np.cov(Z, rowvar=False), ae.latent_covariance_, rtol=0.1, atol=0.05 * spread.max() ** 2)
    expected = ae.inverse_transform(ae._draw_latent(5, np.random.RandomState(3)))
    assert_allclose(ae.sample(5, random_state=3), expected)


def test_ae_gmm_sampler_follows_clustered_codes():
    from sklearn.datasets import make_blobs
    from sklearn.mixture import GaussianMixture

    X, _ = make_blobs(300, n_features=6, centers=3, cluster_std=0.3, random_state=0)
    gaussian = tiny(AutoencoderTransformer, max_iter=60).fit(X)
    gmm = tiny(AutoencoderTransformer, max_iter=60, latent_sampler="gmm").fit(X)
    assert_array_equal(gmm.transform(X), gaussian.transform(X))  # the sampler does not change training
    assert gmm.latent_means_.shape == (10, 2) and gmm.latent_weights_.sum() == pytest.approx(1)
    assert gaussian.latent_means_.shape == (1, 2)
    # Codes drawn from the mixture sit close to real codes; a single Gaussian fills the gaps.
    codes = gmm.transform(X)

    def gap(model):
        Z = model._draw_latent(500, np.random.RandomState(0))
        return np.median(np.min(np.linalg.norm(Z[:, None] - codes[None], axis=2), axis=1))

    assert gap(gmm) < gap(gaussian)
    assert_array_equal(gmm.sample(4, random_state=1), gmm.sample(4, random_state=1))
    custom = tiny(
        AutoencoderTransformer, max_iter=5, latent_sampler=GaussianMixture(3, covariance_type="diag")
    ).fit(X)
    assert custom.latent_covariances_.shape == (3, 2, 2)
    assert custom.latent_sampler.random_state is None  # the parameter is cloned, not mutated
    with pytest.raises(ValueError, match="more than the 5 training codes"):
        tiny(AutoencoderTransformer, latent_sampler=GaussianMixture(8)).fit(X[:5])
    with pytest.raises(ValueError, match="latent_sampler"):
        tiny(AutoencoderTransformer, latent_sampler="kde").fit(X)


def test_vae_samples_decode_prior_draws(digits):
    X, _ = digits
    vae = tiny(VAETransformer, n_components=2).fit(X)
    Z = np.random.RandomState(5).standard_normal((6, 2))
    assert_allclose(vae.sample(6, random_state=5), vae.inverse_transform(Z))


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(cls, dtype, digits):
    X = digits[0].astype(dtype)
    est = tiny(cls).fit(X)
    assert est.transform(X).dtype == dtype
    assert est.inverse_transform(est.transform(X)).dtype == dtype
    assert est.score_samples(X).dtype == np.float64
    assert_allclose(
        est.transform(X.astype(np.float32)), est.transform(X.astype(np.float64)), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bce_reconstructions_are_probabilities(cls, digits):
    X, _ = digits
    est = tiny(cls, reconstruction_loss="bce").fit(X)
    X_rec = est.inverse_transform(est.transform(X))
    assert X_rec.min() >= 0 and X_rec.max() <= 1
    samples = est.sample(20, random_state=0)
    assert samples.min() >= 0 and samples.max() <= 1
    assert np.isfinite(est.score_samples(X)).all()


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_score_samples_is_deterministic_and_batch_invariant(cls, digits):
    X, _ = digits
    est = tiny(cls).fit(X)
    full = est.score_samples(X)
    assert full.shape == (len(X),)
    assert_array_equal(full, est.score_samples(X))
    by_row = np.concatenate([est.score_samples(X[i : i + 1]) for i in range(0, 50)])
    assert_allclose(by_row, full[:50], rtol=1e-9)
    score = est.score(X)
    assert isinstance(score, float)
    assert score == pytest.approx(full.mean())


def test_ae_score_is_negative_reconstruction_error(digits):
    X, _ = digits
    ae = tiny(AutoencoderTransformer).fit(X)
    error = ((ae.inverse_transform(ae.transform(X)) - X) ** 2).sum(axis=1)
    assert_allclose(ae.score_samples(X), -error, rtol=1e-6)


def test_vae_score_prefers_training_like_data(digits):
    X, _ = digits
    vae = tiny(VAETransformer, max_iter=60, hidden_layer_sizes=(32,)).fit(X)
    noise = np.random.RandomState(0).uniform(size=X.shape)
    assert vae.score_samples(X).mean() > vae.score_samples(noise).mean()


def test_vae_posterior(digits):
    X, _ = digits
    vae = tiny(VAETransformer, n_components=3).fit(X)
    mean, variance = vae.posterior(X)
    assert_array_equal(mean, vae.transform(X))
    assert variance.shape == (len(X), 3) and (variance > 0).all()
    assert vae.observation_variance_ > 0
    assert tiny(VAETransformer, reconstruction_loss="bce").fit(X).observation_variance_ is None


def test_vae_mse_is_scale_invariant(digits):
    """The calibrated decoder makes the codes (nearly) independent of the data's units."""
    X, _ = digits
    small = tiny(VAETransformer, max_iter=30).fit(X)
    large = tiny(VAETransformer, max_iter=30).fit(X * 1000)
    rec_small = small.inverse_transform(small.transform(X))
    rec_large = large.inverse_transform(large.transform(X * 1000)) / 1000
    mse_small = np.mean((rec_small - X) ** 2)
    mse_large = np.mean((rec_large - X) ** 2)
    assert mse_large < 1.5 * mse_small


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_partial_fit_continues_training(cls, digits):
    X, _ = digits
    est = tiny(cls)
    for chunk in np.array_split(X, 4):
        est.partial_fit(chunk)
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4
    before = est.transform(X)
    est.partial_fit(X)
    assert est.n_iter_ == 5
    assert not np.array_equal(before, est.transform(X))
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :10])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_partial_fit_rejects_early_stopping(cls, digits):
    with pytest.raises(ValueError, match="early_stopping"):
        tiny(cls, early_stopping=True).partial_fit(digits[0])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_warm_start_continues_and_cold_start_restarts(cls, digits):
    X, _ = digits
    warm = tiny(cls, warm_start=True, max_iter=3).fit(X)
    first_curve = list(warm.loss_curve_)
    warm.fit(X)
    assert warm.n_iter_ == 6 and warm.loss_curve_[:3] == first_curve
    cold = tiny(cls, max_iter=3).fit(X).fit(X)
    assert cold.n_iter_ == 3 and cold.loss_curve_ == first_curve
    warm.set_params(n_components=5)
    with pytest.raises(ValueError, match="warm_start=False"):
        warm.fit(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_early_stopping_keeps_best_epoch(cls, digits):
    X, _ = digits
    est = tiny(cls, early_stopping=True, max_iter=200, n_iter_no_change=3, tol=0.5).fit(X)
    assert est.n_iter_ < 200
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_tolerance_stops_training_without_warning(cls, digits, recwarn):
    X, _ = digits
    est = tiny(cls, max_iter=500, tol=0.5, n_iter_no_change=2).fit(X)
    assert est.n_iter_ < 500
    assert not [w for w in recwarn if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.filterwarnings("default::sklearn.exceptions.ConvergenceWarning")
def test_max_iter_reached_warns(digits):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        tiny(AutoencoderTransformer, max_iter=2).fit(digits[0])


def test_verbose_prints_each_epoch(digits, capsys):
    tiny(AutoencoderTransformer, max_iter=3, verbose=1).fit(digits[0])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2", "Iteration 3"]


@pytest.mark.parametrize("batch_size", ["auto", 1, 32, 10_000])
def test_batch_sizes(batch_size, digits):
    X = digits[0][:100]
    est = tiny(AutoencoderTransformer, batch_size=batch_size, max_iter=2)
    if batch_size == 10_000:
        with pytest.warns(UserWarning, match="clipped"):
            est.fit(X)
    else:
        est.fit(X)
    assert np.isfinite(est.transform(X)).all()


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity", "elu", "gelu"])
def test_activations(activation, digits):
    est = tiny(VAETransformer, activation=activation, hidden_layer_sizes=(8, 4)).fit(digits[0])
    expected = ACTIVATIONS[activation]
    assert any(isinstance(m, expected) for m in est.encoder_.modules())
    assert any(isinstance(m, expected) for m in est.decoder_.modules())
    assert np.isfinite(est.transform(digits[0])).all()


def test_hidden_layer_sizes_forms(digits):
    X = digits[0]
    linear = tiny(AutoencoderTransformer, hidden_layer_sizes=()).fit(X)
    def widths(module):
        return [m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)]

    assert widths(linear.encoder_) == [2] and widths(linear.decoder_) == [64]
    single = tiny(AutoencoderTransformer, hidden_layer_sizes=12).fit(X)
    assert widths(single.encoder_) == [12, 2]
    deep = tiny(AutoencoderTransformer, hidden_layer_sizes=[20, 10]).fit(X)
    assert widths(deep.decoder_) == [10, 20, 64]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_pickle_round_trip(cls, digits):
    X, _ = digits
    est = tiny(cls).fit(X)
    loaded = pickle.loads(pickle.dumps(est))
    assert_array_equal(loaded.transform(X), est.transform(X))
    assert_array_equal(loaded.sample(3, random_state=0), est.sample(3, random_state=0))
    loaded.partial_fit(X)
    assert loaded.n_iter_ == est.n_iter_ + 1


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_set_params_after_fit_does_not_change_the_fitted_model(cls, digits):
    X, _ = digits
    est = tiny(cls).fit(X)
    before = est.inverse_transform(est.transform(X))
    est.set_params(reconstruction_loss="bce", n_components=7)
    assert_array_equal(est.inverse_transform(est.transform(X)), before)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_inference_does_not_mutate_the_estimator(cls, digits):
    X, _ = digits
    est = tiny(cls).fit(X)
    state = {k: v.clone() for k, v in est.encoder_.state_dict().items()}
    clone(est)
    est.transform(X)
    est.transform(X.astype(np.float32))
    est.score_samples(X)
    for key, value in est.encoder_.state_dict().items():
        assert torch.equal(value, state[key]) and value.dtype == torch.float32


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_set_output_pandas(cls, digits):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(digits[0], columns=[f"px{i}" for i in range(64)])
    est = tiny(cls, n_components=2).set_output(transform="pandas").fit(X)
    out = est.transform(X)
    assert list(out.columns) == [f"{cls.__name__.lower()}0", f"{cls.__name__.lower()}1"]
    assert list(est.feature_names_in_) == list(X.columns)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("factor", [1e-8, 1e-3, 1e6, 1e12])
def test_training_does_not_depend_on_the_data_units(cls, factor, digits):
    """Standardising layers, a gradient in standard units and a relative variance
    floor make a fit on ``factor * X`` the fit on ``X`` in other units."""
    X, _ = digits
    reference = tiny(cls, max_iter=15).fit(X)
    scaled = tiny(cls, max_iter=15).fit(X * factor)
    mse = reconstruction_mse(reference, X)
    rec = scaled.inverse_transform(scaled.transform(X * factor)) / factor
    assert np.mean((rec - X) ** 2) == pytest.approx(mse, rel=0.02)
