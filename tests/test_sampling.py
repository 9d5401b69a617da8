"""The autoencoder's naive latent_sampler="normal": N(0, I) draws, stored and loaded like the others."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import skae
from skae import AutoencoderTransformer

from .helpers import tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_normal_sampler_decodes_standard_normal_draws(digits):
    X, _ = digits
    normal = tiny(AutoencoderTransformer, n_components=3, latent_sampler="normal").fit(X)
    gaussian = tiny(AutoencoderTransformer, n_components=3).fit(X)
    assert_array_equal(normal.transform(X), gaussian.transform(X))  # training is the same
    assert_array_equal(normal.latent_weights_, [1.0])
    assert_array_equal(normal.latent_means_, np.zeros((1, 3)))
    assert_array_equal(normal.latent_covariances_, np.eye(3)[np.newaxis])
    # The codes' own summary is still there, whatever the sampler.
    assert_allclose(normal.latent_mean_, gaussian.latent_mean_)
    draws = normal._draw_latent(20_000, np.random.RandomState(0))
    assert np.all(np.abs(draws.mean(axis=0)) < 0.03)
    assert_allclose(np.cov(draws, rowvar=False), np.eye(3), atol=0.05)
    expected = normal.inverse_transform(normal._draw_latent(4, np.random.RandomState(5)))
    assert_allclose(normal.sample(4, random_state=5), expected)


def test_normal_sampler_round_trips_through_a_skae_file(digits, tmp_path):
    X = digits[0][:120]
    est = tiny(AutoencoderTransformer, latent_sampler="normal", max_iter=3).fit(X)
    est.save(tmp_path / "normal.skae")
    loaded = skae.load(tmp_path / "normal.skae")
    assert loaded.get_params()["latent_sampler"] == "normal"
    assert_array_equal(loaded.sample(5, random_state=2), est.sample(5, random_state=2))
    unfitted = AutoencoderTransformer(latent_sampler="normal")
    unfitted.save(tmp_path / "unfitted.skae")
    assert skae.load(tmp_path / "unfitted.skae").latent_sampler == "normal"
