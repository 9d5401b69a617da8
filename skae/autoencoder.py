"""AutoencoderTransformer: deterministic codes and a density fitted to them."""

import numpy as np
from sklearn.base import clone
from sklearn.mixture import GaussianMixture
from sklearn.utils._param_validation import StrOptions

from ._base import _COMMON_ATTRIBUTES, _COMMON_PARAMETERS, _BaseAutoencoder
from .engine.autoencoders import Autoencoder

_LATENT_SAMPLER_PARAMETER = """
    latent_sampler : {"gaussian", "gmm", "normal"} or GaussianMixture, default="gaussian"
        Density of the codes that :meth:`sample` decodes.
        ``"gaussian"``: one full-covariance Gaussian fitted to the training
        codes. ``"gmm"``: a :class:`~sklearn.mixture.GaussianMixture` with
        ``min(10, n_samples)`` full-covariance components, which follows
        lopsided code spaces much more closely. A ``GaussianMixture`` instance
        is cloned and fitted as given (its ``random_state`` is set from
        ``random_state`` when None). ``"normal"``: the standard normal N(0, I),
        fitted to nothing: the naive sampler that treats an autoencoder like a
        VAE, for seeing what a fitted density buys (nothing in an
        autoencoder's training puts its codes where N(0, I) puts its mass;
        see :func:`skae.metrics.latent_coverage`).
"""


_PATIENCE_REASON = """An autoencoder's training loss is smooth from epoch to
        epoch, so a few epochs without progress mark a plateau (the VAE's
        noisier loss waits 30 epochs)."""


class AutoencoderTransformer(_BaseAutoencoder):
    __doc__ = f"""Autoencoder as a scikit-learn transformer.

    An encoder network maps each row to a point in a ``n_components``-dimensional
    code space and a mirrored decoder maps it back; both are trained to minimise
    the reconstruction error. :meth:`transform` returns the codes,
    :meth:`inverse_transform` decodes them, and :meth:`sample` decodes draws from
    a density fitted to the training codes: a full-covariance Gaussian or a
    Gaussian mixture (an autoencoder's code space has no prior, and is often
    lopsided with holes, so it is sampled where the data actually lies). With
    ``latent_sampler="normal"`` it decodes standard-normal draws instead, as if
    it were a VAE, which shows those holes.

    Parameters
    ----------
{_COMMON_PARAMETERS.format(extra=_LATENT_SAMPLER_PARAMETER, n_iter_no_change=5,
                           n_iter_no_change_reason=_PATIENCE_REASON)}
    Attributes
    ----------
{_COMMON_ATTRIBUTES}
    latent_mean_ : ndarray of shape (n_components,)
        Mean of the training codes (from the last ``fit`` or ``partial_fit``
        call's data).

    latent_covariance_ : ndarray of shape (n_components, n_components)
        Covariance of the training codes.

    latent_weights_ : ndarray of shape (n_mixture,)
        Mixture weights of the code density :meth:`sample` draws from (one
        component of weight 1 for ``latent_sampler="gaussian"``, and for
        ``"normal"``, whose one component has mean 0 and covariance I).

    latent_means_ : ndarray of shape (n_mixture, n_components)
        Means of the mixture components.

    latent_covariances_ : ndarray of shape (n_mixture, n_components, n_components)
        Covariances of the mixture components.

    See Also
    --------
    VAETransformer : Variational autoencoder with a N(0, I) prior.
    sklearn.decomposition.PCA : The linear counterpart.

    Notes
    -----
    :meth:`score_samples` is minus each row's reconstruction loss, summed over
    features: minus the squared error for ``"mse"`` (in the data's units
    squared), minus the binary cross-entropy in nats for ``"bce"``. It is not a
    log-likelihood and bounds none: an autoencoder defines no density. Scores
    of autoencoders with different ``n_components`` compare reconstruction
    only; they cannot be compared with a VAE's or PCA's scores, which are
    log-likelihoods (bounds).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X = load_digits().data / 16
    >>> ae = AutoencoderTransformer(n_components=2, max_iter=5, random_state=0)
    >>> ae.fit_transform(X).shape
    (1797, 2)
    """

    _parameter_constraints: dict = {
        **_BaseAutoencoder._parameter_constraints,
        "latent_sampler": [StrOptions({"gaussian", "gmm", "normal"}), GaussianMixture],
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
        latent_sampler="gaussian",
        batch_size="auto",
        learning_rate_init=1e-3,
        max_iter=2000,
        tol=1e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
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
        self.latent_sampler = latent_sampler

    def _engine_model_for(self, encoder, decoder, reconstruction_loss):
        # Squared errors grow with the square of the data's units; dividing the
        # gradient by it keeps Adam's epsilon (and float32's range) equally
        # harmless for data in any units. The VAE's calibrated loss needs no such
        # factor: its gradient is already scale-free.
        scale = self._data_scale**-2 if reconstruction_loss == "mse" else 1.0
        return Autoencoder(encoder, decoder, reconstruction_loss, gradient_scale=scale)

    def _fit_latent_summary(self, statistics, n_features):
        codes = statistics[0].numpy().astype(np.float64)
        self.latent_mean_ = codes.mean(axis=0)
        self.latent_covariance_ = np.atleast_2d(np.cov(codes, rowvar=False, bias=True))
        if isinstance(self.latent_sampler, str) and self.latent_sampler == "gaussian":
            self.latent_weights_ = np.ones(1)
            self.latent_means_ = self.latent_mean_[np.newaxis]
            self.latent_covariances_ = self.latent_covariance_[np.newaxis]
            return
        if isinstance(self.latent_sampler, str) and self.latent_sampler == "normal":
            n_components = codes.shape[1]
            self.latent_weights_ = np.ones(1)
            self.latent_means_ = np.zeros((1, n_components))
            self.latent_covariances_ = np.eye(n_components)[np.newaxis]
            return
        mixture = self._latent_mixture(len(codes)).fit(codes)
        covariances = mixture.covariances_
        # Other covariance types are expanded to full matrices, so sampling has one path.
        if mixture.covariance_type == "tied":
            covariances = np.repeat(covariances[np.newaxis], mixture.n_components, axis=0)
        elif mixture.covariance_type == "diag":
            covariances = np.stack([np.diag(c) for c in covariances])
        elif mixture.covariance_type == "spherical":
            eye = np.eye(codes.shape[1])
            covariances = np.stack([c * eye for c in covariances])
        self.latent_weights_ = mixture.weights_
        self.latent_means_ = mixture.means_
        self.latent_covariances_ = covariances

    def _latent_mixture(self, n_codes):
        seed = self._random_state.randint(np.iinfo(np.int32).max)
        if isinstance(self.latent_sampler, str):
            return GaussianMixture(min(10, n_codes), covariance_type="full", random_state=seed)
        mixture = clone(self.latent_sampler)
        if mixture.n_components > n_codes:
            raise ValueError(
                f"latent_sampler has n_components={mixture.n_components}, more than the "
                f"{n_codes} training codes it is fitted to."
            )
        if mixture.random_state is None:
            mixture.set_params(random_state=seed)
        return mixture

    def _draw_latent(self, n_samples, rng):
        counts = rng.multinomial(n_samples, self.latent_weights_ / self.latent_weights_.sum())
        draws = [
            rng.multivariate_normal(mean, covariance, size=count, check_valid="ignore")
            for mean, covariance, count in zip(
                self.latent_means_, self.latent_covariances_, counts
            )
        ]
        # Shuffle so the rows do not come grouped by mixture component.
        return rng.permutation(np.concatenate(draws))
