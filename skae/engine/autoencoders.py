"""The two models as torch modules: what they compute, how they are trained and scored.

Both wrap an encoder and a decoder that map flat batches ``(n, n_features)`` to
codes and back. The decoder's raw output is the reconstruction itself for
``"mse"`` and Bernoulli logits for ``"bce"``; :meth:`decode` always returns
data in input space.
"""

import functools
import math

import torch
from torch import nn

from .inference import lean_forward, parameters_dtype, with_dtype
from .losses import bernoulli_nll, gaussian_kl, gaussian_nll, squared_error

__all__ = ["Autoencoder", "VariationalAutoencoder", "n_score_draws", "score_noise"]


def n_score_draws(n_components):
    """Latent draws per row in the VAE's score: ``2 * max(4, n_components)``.

    Antithetic pairs can have an identity second moment only when there are at
    least ``n_components`` pairs.
    """
    return 2 * max(4, int(n_components))


@functools.lru_cache(maxsize=16)
def score_noise(n_components):
    """Fixed latent draws for the VAE's score, float64 of shape ``(n_score_draws, n_components)``.

    Standard-normal draws from a fixed seed, made exact in their first two
    moments: whitened so that their second moment is the identity, then paired
    with their negatives, so the mean is exactly zero (and so are all odd
    moments). On the digits these are within 0.05 nats per row of a Monte
    Carlo estimate with 4,096 draws, where the 8 plain draws skae used before
    were 0.29 to 0.55 nats low, and other plain draws of that size err by up to
    1.1 nats either way (``benchmarks/bench_scores.py``).
    """
    half = torch.randn(
        (n_score_draws(n_components) // 2, n_components),
        generator=torch.Generator().manual_seed(0),
        dtype=torch.float64,
    )
    eigenvalues, eigenvectors = torch.linalg.eigh(half.T @ half / len(half))
    # The symmetric inverse square root: the whitened draws stay near the originals.
    whitening = eigenvectors @ torch.diag(eigenvalues.rsqrt()) @ eigenvectors.T
    half = half @ whitening
    # Shared by every caller (hence cached): callers never change it in place.
    return torch.cat([half, -half])


def _infer(network, x):
    """``network(x)``, by the leaner inference path when no gradient is recorded."""
    if not torch.is_grad_enabled():
        lean = lean_forward(network)
        if lean is not None:
            return lean(x)
        # for_dtype kept the model in another dtype than x's because this network
        # had a lean pass; a forward hook registered since (by another thread)
        # needs the module's own call, on weights of x's dtype.
        network = with_dtype(network, x.dtype)
    return network(x)


class _EncoderDecoder(nn.Module):
    def __init__(self, encoder, decoder, reconstruction_loss, scale=1.0):
        super().__init__()
        if reconstruction_loss not in ("mse", "bce"):
            raise ValueError(f"unknown reconstruction_loss {reconstruction_loss!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction_loss = reconstruction_loss
        # Squared errors are taken in units of the data's scale ("bce" data are in [0, 1]).
        self.scale = float(scale) if reconstruction_loss == "mse" else 1.0

    def _scaled_squared_error(self, raw, x):
        """Per-row squared error of ``raw`` against ``x``, in units of ``scale``."""
        return squared_error(raw / self.scale, x / self.scale)

    def for_dtype(self, dtype):
        """This model, ready for inference on input of ``dtype``.

        Itself when its parameters have ``dtype`` or when both networks have
        lean forward passes, which compute in their input's dtype (see
        :func:`~skae.engine.inference.lean_forward`); else a converted copy,
        which takes about a millisecond for a small MLP.
        """
        if parameters_dtype(self) in (None, dtype):
            return self
        if lean_forward(self.encoder) is not None and lean_forward(self.decoder) is not None:
            return self
        return with_dtype(self, dtype)

    def decode(self, z):
        """Decode codes to data in input space (probabilities for ``"bce"``)."""
        raw = _infer(self.decoder, z)
        return torch.sigmoid(raw) if self.reconstruction_loss == "bce" else raw


class Autoencoder(_EncoderDecoder):
    """Deterministic autoencoder: ``x -> z = encoder(x) -> decoder(z)``.

    Its loss per row is the reconstruction error summed over features: squared
    error for ``"mse"``, binary cross-entropy for ``"bce"``.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
    reconstruction_loss : {"mse", "bce"}
    scale : float, default=1.0
        The data's scale. For ``"mse"`` the training loss is the squared error
        of ``(output - x) / scale``, so that it and its gradient stay of order
        one (and within float32's range) for data in any units;
        :meth:`loss_in_input_units` converts it back.
    """

    def __init__(self, encoder, decoder, reconstruction_loss, *, scale=1.0):
        super().__init__(encoder, decoder, reconstruction_loss, scale)

    def loss_in_input_units(self, loss, n_features):
        """A mean training loss (a Python float) in the data's own units, computed in float64."""
        return loss * self.scale**2

    def encode(self, x):
        return _infer(self.encoder, x)

    def _per_row_loss(self, x):
        raw = _infer(self.decoder, _infer(self.encoder, x))
        if self.reconstruction_loss == "bce":
            return bernoulli_nll(raw, x)
        return squared_error(raw, x)

    def training_loss(self, x, generator):
        """Mean reconstruction loss of the batch, in units of ``scale`` (``generator`` is unused)."""
        raw = self.decoder(self.encoder(x))
        if self.reconstruction_loss == "bce":
            return bernoulli_nll(raw, x).mean()
        return self._scaled_squared_error(raw, x).mean()

    def score_samples(self, x):
        """Negative reconstruction loss per row: higher is better."""
        return -self._per_row_loss(x)

    def fit_statistics(self, x):
        """Per row, what the fitted estimator keeps from its training data: ``(codes, loss)``.

        One pass yields both the codes (for the latent summary) and the
        reconstruction loss (for the check that every output is finite).
        """
        codes = _infer(self.encoder, x)
        raw = _infer(self.decoder, codes)
        if self.reconstruction_loss == "bce":
            return codes, bernoulli_nll(raw, x)
        # In units of scale: in input units it could overflow float32 for large data.
        return codes, self._scaled_squared_error(raw, x)


class VariationalAutoencoder(_EncoderDecoder):
    """Gaussian VAE with a calibrated Gaussian (sigma-VAE) or Bernoulli decoder.

    Parameters
    ----------
    encoder : GaussianEncoder
        Returns ``(mean, log_var)`` of q(z|x).
    decoder : torch.nn.Module
        Maps codes to the decoder mean (``"mse"``) or logits (``"bce"``).
    reconstruction_loss : {"mse", "bce"}
    beta : float
        Weight of the KL term in the training loss.
    observation_variance : float or None
        Variance of the Gaussian decoder used by :meth:`score_samples`; None
        uses the maximum-likelihood value for the batch being scored (while
        training, before a calibrated value exists).
    min_observation_variance : float
        Floor on the per-batch optimal variance during training, so that a
        perfect fit cannot send ``log(variance)`` to minus infinity.
    scale : float, default=1.0
        The data's scale. For ``"mse"`` training and :meth:`fit_statistics`
        work on residuals divided by it, so that squared errors stay within
        float32's range for data in any units; :meth:`loss_in_input_units`
        converts the training loss back.

    Notes
    -----
    For ``"mse"`` the decoder is N(decoder(z), sigma^2 I) with sigma^2 set, on
    each batch, to its maximum-likelihood value: the batch's mean squared error
    (the "optimal sigma" of Rybkin et al., 2021, "Simple and Effective VAE
    Training with Calibrated Decoders"). A fixed unit variance would weight the
    KL term far too strongly on data scaled to [0, 1] and collapse the codes.
    """

    def __init__(
        self,
        encoder,
        decoder,
        reconstruction_loss,
        *,
        beta=1.0,
        observation_variance=None,
        min_observation_variance=1e-12,
        scale=1.0,
    ):
        super().__init__(encoder, decoder, reconstruction_loss, scale)
        self.beta = beta
        self.observation_variance = observation_variance
        self.min_observation_variance = min_observation_variance
        # The floor in units of scale, computed in float64.
        self.min_scaled_variance = min_observation_variance / self.scale**2

    def loss_in_input_units(self, loss, n_features):
        """A mean training loss (a Python float) in the data's own units, computed in float64.

        The Gaussian log-density of data ``scale`` times larger is lower by
        ``log(scale)`` per feature.
        """
        return loss + n_features * math.log(self.scale)

    def encode(self, x):
        return _infer(self.encoder, x)[0]

    def posterior(self, x):
        """Mean and variance of q(z|x)."""
        mean, log_var = _infer(self.encoder, x)
        return mean, log_var.exp()

    def training_loss(self, x, generator):
        """Mean over the batch of reconstruction NLL + beta * KL, one draw of z per row."""
        mean, log_var = self.encoder(x)
        noise = torch.randn(
            mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
        )
        raw = self.decoder(mean + (0.5 * log_var).exp() * noise)
        if self.reconstruction_loss == "bce":
            nll = bernoulli_nll(raw, x)
        else:
            raw, x = raw / self.scale, x / self.scale
            # The optimum's gradient through the variance is zero, so detaching is exact.
            variance = (raw.detach() - x).square().mean().clamp_min(self.min_scaled_variance)
            nll = gaussian_nll(raw, x, variance)
        return (nll + self.beta * gaussian_kl(mean, log_var)).mean()

    def _decode_draws(self, x):
        """Raw decoder outputs for ``z = mean + std * noise[k]``, shape ``(k, n, f)``.

        The ``k`` vectors ``noise`` are :func:`score_noise`'s fixed draws, shared
        by every row, which makes the estimate deterministic and independent of
        how rows are batched.
        """
        mean, log_var = _infer(self.encoder, x)
        noise = score_noise(mean.shape[-1]).to(device=mean.device, dtype=mean.dtype)
        z = mean.unsqueeze(0) + (0.5 * log_var).exp().unsqueeze(0) * noise.unsqueeze(1)
        n_draws, n_rows = z.shape[:2]
        raw = _infer(self.decoder, z.reshape(n_draws * n_rows, -1))
        return raw.reshape(n_draws, n_rows, -1), mean, log_var

    def score_samples(self, x):
        """ELBO per row (KL weight 1), its expectation over :func:`score_noise`'s draws."""
        raw, mean, log_var = self._decode_draws(x)
        target = x.unsqueeze(0).expand_as(raw)
        if self.reconstruction_loss == "bce":
            nll = bernoulli_nll(raw, target)
        else:
            variance = self.observation_variance
            if variance is None:
                variance = (raw - target).square().mean().clamp_min(self.min_observation_variance)
            nll = gaussian_nll(raw, target, variance)
        return -(nll.mean(dim=0) + gaussian_kl(mean, log_var))

    def fit_statistics(self, x):
        """Per row, what the fitted estimator keeps from its training data: ``(fit, kl)``.

        ``fit`` is the squared error summed over the features, in units of
        ``scale`` (``"mse"``: the decoder variance is calibrated from it) or the Bernoulli NLL
        (``"bce"``), averaged over :func:`score_noise`'s draws;
        ``kl`` is the KL term. Both are finite exactly when every output the
        scores read is.
        """
        raw, mean, log_var = self._decode_draws(x)
        if self.reconstruction_loss == "bce":
            fit = bernoulli_nll(raw, x.unsqueeze(0).expand_as(raw)).mean(dim=0)
        else:
            fit = self._scaled_squared_error(raw, x.unsqueeze(0)).mean(dim=0)
        return fit, gaussian_kl(mean, log_var)
