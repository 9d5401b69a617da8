"""AutoencoderTransformer: deterministic codes and a Gaussian fitted to them."""

import numpy as np

from ._base import _COMMON_ATTRIBUTES, _COMMON_PARAMETERS, _BaseAutoencoder
from .engine.autoencoders import Autoencoder
from .engine.inference import apply_in_chunks, chunk_rows_for


class AutoencoderTransformer(_BaseAutoencoder):
    __doc__ = f"""Autoencoder as a scikit-learn transformer.

    An encoder network maps each row to a point in a ``n_components``-dimensional
    code space and a mirrored decoder maps it back; both are trained to minimise
    the reconstruction error. :meth:`transform` returns the codes,
    :meth:`inverse_transform` decodes them, and :meth:`sample` decodes draws from
    a full-covariance Gaussian fitted to the training codes (an autoencoder's
    code space has no prior, and is often lopsided, so it is sampled where the
    data actually lies).

    Parameters
    ----------
{_COMMON_PARAMETERS.format(extra="")}
    Attributes
    ----------
{_COMMON_ATTRIBUTES}
    latent_mean_ : ndarray of shape (n_components,)
        Mean of the training codes (from the last ``fit`` or ``partial_fit``
        call's data).

    latent_covariance_ : ndarray of shape (n_components, n_components)
        Covariance of the training codes, used by :meth:`sample`.

    See Also
    --------
    VAETransformer : Variational autoencoder with a N(0, I) prior.
    sklearn.decomposition.PCA : The linear counterpart.

    Notes
    -----
    :meth:`score_samples` is the negative per-row reconstruction loss, summed
    over features: minus the squared error for ``"mse"``, minus the binary
    cross-entropy for ``"bce"``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skae import AutoencoderTransformer
    >>> X = load_digits().data / 16
    >>> ae = AutoencoderTransformer(n_components=2, max_iter=5, random_state=0)
    >>> ae.fit_transform(X).shape
    (1797, 2)
    """

    def _engine_model_for(self, encoder, decoder, reconstruction_loss):
        return Autoencoder(encoder, decoder, reconstruction_loss)

    def _fit_latent_summary(self, model, X):
        codes = apply_in_chunks(model.encode, X, self.device_, chunk_rows_for(X.shape[1]))
        codes = codes.numpy().astype(np.float64)
        self.latent_mean_ = codes.mean(axis=0)
        self.latent_covariance_ = np.atleast_2d(np.cov(codes, rowvar=False, bias=True))

    def _draw_latent(self, n_samples, rng):
        return rng.multivariate_normal(
            self.latent_mean_, self.latent_covariance_, size=n_samples, check_valid="ignore"
        )
