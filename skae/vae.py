"""VAETransformer: Gaussian encoder, reparameterisation, KL to the N(0, I) prior."""

from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._base import _COMMON_ATTRIBUTES, _COMMON_PARAMETERS, _BaseAutoencoder
from .engine.autoencoders import VariationalAutoencoder, n_score_draws
from .engine.networks import GaussianEncoder


_PATIENCE_REASON = """The VAE's training loss carries the noise of one latent
        draw per row, and on small data sets it can improve only slowly for
        the first hundreds of epochs: less patience stops such fits far from
        their best (the autoencoder's smoother loss waits 5 epochs)."""


class VAETransformer(_BaseAutoencoder):
    __doc__ = f"""Variational autoencoder as a scikit-learn transformer.

    The encoder maps each row to a Gaussian N(mu, diag(sigma^2)) over the
    ``n_components``-dimensional code space; the decoder maps codes back. The
    loss per row is the reconstruction negative log-likelihood plus ``beta``
    times KL(q(z|x) || N(0, I)), summed over features and latent dimensions.
    :meth:`transform` returns the posterior mean mu, :meth:`posterior` also its
    variance, and :meth:`sample` decodes draws from the N(0, I) prior.

    Parameters
    ----------
{_COMMON_PARAMETERS.format(extra='''
    beta : float, default=1.0
        Weight of the KL term. Larger values pack the codes closer to the
        prior (better samples, blurrier reconstructions); ``beta=0`` gives a
        noisy autoencoder.
''', n_iter_no_change=30, n_iter_no_change_reason=_PATIENCE_REASON)}
    Attributes
    ----------
{_COMMON_ATTRIBUTES}
    observation_variance_ : float or None
        For ``"mse"``: the variance of the calibrated Gaussian decoder, the
        mean squared reconstruction error on the training data (from the last
        ``fit`` or ``partial_fit`` call's data). None for ``"bce"``.

    See Also
    --------
    AutoencoderTransformer : Deterministic autoencoder.
    sklearn.decomposition.PCA : The linear counterpart.

    Notes
    -----
    With ``reconstruction_loss="mse"`` the decoder is a Gaussian whose variance
    is set on every batch to its maximum-likelihood value (the "sigma-VAE" of
    Rybkin et al., 2021). A fixed unit variance would let the KL term dominate
    on data scaled to [0, 1] and collapse the codes; the calibrated variance
    makes the model reconstruct well at any data scale.

    :meth:`score_samples` is each row's evidence lower bound (ELBO) in nats,
    with KL weight 1 whatever ``beta``: the expected log-likelihood
    E_q[log p(x|z)] minus KL(q(z|x) || N(0, I)), a lower bound on the row's
    log-likelihood log p(x) under the model. For ``"mse"`` p(x|z) is the
    calibrated Gaussian (variance ``observation_variance_``), so the score is
    a bound on a log-density: it depends on the data's units (multiplying X by
    c subtracts ``n_features * log(c)``) and can be positive. For ``"bce"`` it
    is minus the binary cross-entropy, a bound on a log-probability for binary
    data; for grey levels in [0, 1] it is not a normalised density. The
    expectation over q(z|x) is taken at ``2 * max(4, n_components)`` fixed
    draws with exactly zero mean and identity second moment (antithetic,
    moment-matched; the same draws for every row), so the score is
    deterministic and does not depend on batching; on the digits it is within
    0.05 nats per row of a Monte Carlo estimate with 4,096 draws.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAETransformer
    >>> X = load_digits().data / 16
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (1797, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 64)

    Images, with a convolutional encoder and decoder; outputs are flat rows:

    >>> images = X.reshape(-1, 8, 8)
    >>> conv = VAETransformer(architecture="conv", max_iter=2, random_state=0).fit(images)
    >>> conv.sample(3, random_state=0).reshape(-1, *conv.image_shape_).shape
    (3, 8, 8)
    """

    _parameter_constraints: dict = {
        **_BaseAutoencoder._parameter_constraints,
        # Training runs in float32: a larger beta cannot weight the KL term (torch refused it deep inside).
        "beta": [Interval(Real, 0, float(np.finfo(np.float32).max), closed="both")],
    }

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(128, 64),
        activation="relu",
        architecture="mlp",
        image_shape=None,
        conv_channels=(32, 64),
        encoder=None,
        decoder=None,
        reconstruction_loss="mse",
        beta=1.0,
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=2000,
        tol=1e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=30,
        random_state=None,
        verbose=0,
        warm_start=False,
        device="auto",
        n_threads="auto",
    ):
        super().__init__(
            n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            architecture=architecture,
            image_shape=image_shape,
            conv_channels=conv_channels,
            encoder=encoder,
            decoder=decoder,
            reconstruction_loss=reconstruction_loss,
            batch_size=batch_size,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            tol=tol,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
            device=device,
            n_threads=n_threads,
        )
        self.beta = beta

    def posterior(self, X):
        """Mean and variance of the Gaussian posterior q(z|x) of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        mean : ndarray of shape (n_samples, n_components)
            Posterior means (what :meth:`transform` returns).

        variance : ndarray of shape (n_samples, n_components)
            Posterior variances (diagonal covariance).
        """
        X = self._validate_inference_data(X)
        return self._apply(
            lambda model, batch: model.posterior(batch), X, X.shape[1], "posterior", X
        )

    @property
    def _decoded_rows_per_row(self):
        # The fit pass decodes each training row at every fixed score draw.
        return n_score_draws(self.n_components)

    def _encoder_outputs(self):
        return 2 * self.n_components

    def _wrap_encoder(self, body):
        return GaussianEncoder(body)

    def _prepare_training(self, X, fresh):
        if fresh:
            # A floor on the decoder variance relative to the data's own scale, so
            # that it binds equally for data in any units (training compares it with
            # squared errors in units of that scale, so it needs no float32 floor).
            self._min_observation_variance = 1e-6 * self._data_scale**2

    def _engine_model_for(self, encoder, decoder, reconstruction_loss, observation_variance=None):
        return VariationalAutoencoder(
            encoder,
            decoder,
            reconstruction_loss,
            beta=self.beta,
            observation_variance=observation_variance,
            min_observation_variance=self._min_observation_variance,
            scale=self._data_scale,
        )

    def _engine_model(self):
        return self._engine_model_for(
            self.encoder_,
            self.decoder_,
            self._fitted_architecture[3],
            observation_variance=self.observation_variance_,
        )

    def _latent_summary(self, statistics, n_features, rng):
        if self.reconstruction_loss == "bce":
            return dict(observation_variance_=None)
        squared_errors = statistics[0]  # in units of the data's scale
        total = float(squared_errors.sum(dtype=torch.float64))
        mean_squared_error = total / (squared_errors.shape[0] * n_features) * self._data_scale**2
        return dict(observation_variance_=max(mean_squared_error, self._min_observation_variance))

    def _draw_latent(self, n_samples, rng):
        return rng.standard_normal((n_samples, self.n_components_))
