"""The scikit-learn face shared by both estimators.

``_BaseAutoencoder`` validates parameters and data, converts the data to one
tensor, hands it to :mod:`skae.engine.trainer`, and stores what comes back as
fitted attributes. Subclasses say which networks to build, which engine model
wraps them, and how to draw latent codes for :meth:`sample`.
"""

import copy
import math
import operator
import warnings
import weakref
from numbers import Integral, Real

import numpy as np
import torch
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from torch import nn

from . import _images, _sparse, _state, _user_networks
from ._finite import all_finite, check_finite_output
from .engine.batches import SparseRows
from .engine.conv import build_conv_decoder, build_conv_encoder
from .engine.device import resolve_device
from .engine.inference import apply_in_chunks, chunk_rows_for, lean_forward
from .engine.networks import (
    ACTIVATIONS,
    Standardize,
    Unstandardize,
    build_mlp,
    initialize_parameters,
)
from .engine.threads import fit_threads, in_threads, inference_threads
from .engine.interrupts import interrupts_deferred
from .engine.trainer import make_optimizer, train

# Training runs in float32 on residuals in units of the data's scale, so any
# scale float32 holds with its full precision trains alike: values up to this
# magnitude (float32's largest is 3.4e38; reconstructions may overshoot the
# data), spreads down to this one (below it, values lose precision in float32
# (its smallest normal number is 1.2e-38) and then become 0).
_MAX_TRAINING_MAGNITUDE = 1e35
_MIN_TRAINING_SCALE = float(np.finfo(np.float32).tiny / np.finfo(np.float32).eps)

_AUTO_BATCH_SIZE = 200

_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

# The parameters that shape the networks, in the order of _architecture().
_ARCHITECTURE_PARAMETERS = (
    "n_components",
    "hidden_layer_sizes",
    "activation",
    "reconstruction_loss",
    "architecture",
    "image_shape",
    "conv_channels",
    "encoder",
    "decoder",
)

_COMMON_PARAMETERS = """\
    n_components : int, default=2
        Size of the latent code: the number of output columns of
        :meth:`transform`.

    hidden_layer_sizes : array-like of int or int, default=(128, 64)
        Widths of the encoder's hidden (dense) layers, from the input towards
        the code; with ``architecture="conv"`` they sit between the
        convolutions and the code. The decoder mirrors them. ``()`` gives a
        linear MLP encoder and decoder.

    activation : {{"relu", "tanh", "logistic", "identity", "elu", "gelu"}}, \
default="relu"
        Activation between hidden layers (names as in MLPRegressor, plus
        ``"elu"`` and ``"gelu"``).

    architecture : {{"mlp", "conv"}}, default="mlp"
        ``"mlp"``: dense layers only. ``"conv"``, for images: one 3x3
        convolution with stride 2 per entry of ``conv_channels`` (each halves
        the height and width, rounding up), then the dense layers; the decoder
        mirrors it with transposed convolutions and rebuilds exactly the input's
        image size, whatever it is. With ``"conv"``, X may also be an array of
        images, ``(n_samples, H, W)`` or ``(n_samples, C, H, W)``.

    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(C, H, W)``: the image each row of 2-D input holds, its
        ``C*H*W`` values in the order ``images.reshape(len(images), -1)`` gives
        (so flattened images fit in a Pipeline after a scaler). None takes the
        shape from image arrays; for 2-D input with ``architecture="conv"``,
        None treats each row as a 1-D signal, ``(1, n_features)``, convolved
        along the features. With ``"mlp"`` a given shape is only checked
        against the number of features. :meth:`inverse_transform` and
        :meth:`sample` return flattened rows; get images back with
        ``X_new.reshape(-1, *est.image_shape_)``.

    conv_channels : array-like of int or int, default=(32, 64)
        Output channels of the convolution layers, from the input towards the
        code; the decoder mirrors them. Used with ``architecture="conv"``.
        The images must be large enough for the depth: a layer may not get a
        1x1 feature map (8x8 images allow up to 3 layers, 28x28 up to 5).

    encoder : torch.nn.Module, default=None
        Your own encoder, in place of the one ``architecture`` builds. It must
        map a float32 tensor of shape ``(n, n_features)`` (the rows of X as
        given: no standardisation) to ``(n, n_components)`` codes for
        :class:`AutoencoderTransformer`, or to ``(n, 2 * n_components)`` for
        :class:`VAETransformer` (posterior means, then log-variances). skae
        trains a float32 deep copy, starting from the module's current
        weights: the module you pass is never changed, and ``clone``, grid
        searches and pickling work as usual.

    decoder : torch.nn.Module, default=None
        Your own decoder, in place of the one ``architecture`` builds. It must
        map ``(n, n_components)`` float32 codes to ``(n, n_features)``: the
        reconstruction for ``"mse"``, logits for ``"bce"`` (skae applies the
        sigmoid). Deep-copied and trained as ``encoder``.

    reconstruction_loss : {{"mse", "bce"}}, default="mse"
        ``"mse"``: squared error, for real-valued data of any scale.
        ``"bce"``: binary cross-entropy for data in [0, 1] (images scaled to
        [0, 1], binary features); the decoder then ends in a sigmoid and
        :meth:`inverse_transform` returns values in [0, 1].
{extra}
    batch_size : int or "auto", default="auto"
        Rows per optimiser step. ``"auto"`` uses ``min(200, n_samples)`` as
        MLPRegressor does; larger values are clipped to ``n_samples`` with a
        warning.

    learning_rate_init : float, default=1e-3
        Step size of the Adam optimiser.

    max_iter : int, default=2000
        Maximum number of epochs (passes over the training data) per
        :meth:`fit`. :meth:`partial_fit` always makes one pass. Reaching it
        gives a ``ConvergenceWarning``. With the default ``tol`` and
        ``n_iter_no_change``, fits on scikit-learn's digits, wine,
        breast_cancer, iris and diabetes data stop well before it
        (``benchmarks/bench_defaults.py``).

    tol : float, default=1e-3
        Relative tolerance: an epoch counts as progress when it improves the
        best training loss (or, with ``early_stopping``, the best validation
        score) by more than ``tol`` times its magnitude. Relative rather than
        absolute as in MLPRegressor, because the loss scales with the data.

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows, score them after
        every epoch with :meth:`score`, stop once the score has not improved for
        ``n_iter_no_change`` epochs, and keep the weights of the best epoch.

    validation_fraction : float, default=0.1
        Fraction of the training rows held out when ``early_stopping=True``.

    n_iter_no_change : int, default={n_iter_no_change}
        Epochs without progress (see ``tol``) after which training stops.
        {n_iter_no_change_reason}

    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, the validation split and the
        VAE's noise, through a local :class:`torch.Generator`; the global
        NumPy and torch random states are never touched. An int gives
        bit-identical results on the CPU.

    verbose : int or bool, default=0
        Print the loss after each epoch.

    warm_start : bool, default=False
        Let :meth:`fit` continue from the previous weights instead of starting
        afresh. The network's shape parameters must not change in between.

    device : str or torch.device, default="auto"
        Where to train and infer: ``"auto"`` (CUDA, then MPS, then the CPU),
        ``"cpu"``, ``"cuda"``, ``"cuda:<index>"``, ``"mps"`` or a
        :class:`torch.device`. Checked at fit time: an unknown or unavailable
        device is a ``ValueError``.

    n_threads : int or "auto", default="auto"
        Threads torch uses for each operation of this estimator's work on the
        CPU (fit, transform and the other inference methods); torch's own
        setting is restored after each call. ``"auto"`` chooses from the size
        of each matrix product and convolution, between 1 and torch's setting
        (``torch.get_num_threads()``, which ``torch.set_num_threads``,
        ``OMP_NUM_THREADS`` and joblib's workers limit): one thread for the
        small products of a typical fit, where a second thread gains little
        on a quiet machine and, on a busy one, makes every step wait for a
        core. An int uses exactly that many. Results are bit-identical on the
        CPU for a given ``random_state`` and thread setting. See the user
        guide's "Threads" section.
"""

_COMMON_ATTRIBUTES = """\
    encoder_ : torch.nn.Module
        The trained encoder. It lives on ``device_`` and works on float32
        tensors of shape ``(n, n_features_in_)``.

    decoder_ : torch.nn.Module
        The trained decoder. Its raw output is the reconstruction for
        ``"mse"`` and logits for ``"bce"``; :meth:`inverse_transform` applies
        the sigmoid.

    n_components_ : int
        Size of the latent code.

    image_shape_ : tuple of int or None
        Shape of one image, ``(H, W)`` or ``(C, H, W)`` as the images or
        ``image_shape`` gave it, ``(1, n_features)`` for 2-D input with
        ``architecture="conv"`` and no ``image_shape``; None for the MLP
        without ``image_shape``. ``X_new.reshape(-1, *est.image_shape_)``
        turns rows back into images.

    device_ : torch.device
        Where the fitted networks live.

    n_iter_ : int
        Number of epochs run, summed over ``warm_start`` fits and
        ``partial_fit`` calls.

    loss_curve_ : list of float
        Mean training loss per epoch (per row, summed over features).

    best_loss_ : float
        Lowest value in ``loss_curve_``.

    validation_scores_ : list of float or None
        Validation score (mean :meth:`score_samples`) per epoch when
        ``early_stopping=True``, else None.

    best_validation_score_ : float or None
        Highest value in ``validation_scores_``, or None.

    n_features_in_ : int
        Number of features seen during ``fit``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``. Defined only when `X`
        has feature names that are all strings.
"""


def _location_and_scale(X, chunk_elements=1 << 22):
    """Per-feature mean and one overall standard deviation (1 for constant data).

    Computed chunk by chunk (Chan et al.'s pairwise update) so that large
    inputs are never copied whole; sparse inputs from their stored entries.
    """
    if _sparse.issparse(X):
        return _sparse.location_and_scale(X)
    count, mean, sum_squares = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    chunk_rows = max(1, chunk_elements // max(1, X.shape[1]))  # 32 MB of float64 per block
    for start in range(0, X.shape[0], chunk_rows):
        block = np.asarray(X[start : start + chunk_rows], dtype=np.float64)
        block_mean = block.mean(axis=0)
        block_count = block.shape[0]
        delta = block_mean - mean
        total = count + block_count
        sum_squares += ((block - block_mean) ** 2).sum(axis=0)
        sum_squares += delta**2 * count * block_count / total
        mean += delta * block_count / total
        count = total
    spread = float(np.sqrt((sum_squares / count).mean()))
    return mean, spread if spread > 0 and np.isfinite(spread) else 1.0


def _check_float32_scale(scale):
    """Refuse data whose spread float32 cannot hold: it would train a constant model."""
    if scale < _MIN_TRAINING_SCALE:
        raise ValueError(
            f"X's values vary by about {scale:.3g} (at most), below "
            "float32's range: skae trains in float32, which holds numbers down to "
            f"{float(np.finfo(np.float32).tiny):.3g} at full precision (to "
            f"{_MIN_TRAINING_SCALE:.3g} for the differences between them), so X would "
            "train a model whose codes are the same for every row. Multiply X by a "
            "constant first, for instance with sklearn.preprocessing.StandardScaler."
        )


def _as_tensor(X, dtype=None):
    """A CPU tensor sharing memory with ``X`` where its layout and ``dtype`` allow."""
    if _sparse.issparse(X):
        raise TypeError("sparse X must go through _rows, not _as_tensor")
    X = np.asarray(X)
    if not _torch_can_share(X):
        X = X.copy()
    if X.flags.writeable:
        tensor = torch.from_numpy(X)
    else:
        with warnings.catch_warnings():
            # Read-only inputs (memmaps) are shared as they are: skae never writes to them.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            tensor = torch.from_numpy(X)
    return tensor if dtype is None or tensor.dtype == dtype else tensor.to(dtype)


def _torch_can_share(X):
    """Whether ``torch.from_numpy`` accepts ``X``'s layout.

    It refuses negative strides (reversed views such as ``X[::-1]``) and strides
    that are not a multiple of the item size (a field of a structured array).
    """
    strides = X.strides  # builtins rather than a generator: this runs on every transform
    return min(strides, default=0) >= 0 and not any(map(X.itemsize.__rmod__, strides))


def _plain_valid_array(X, fitted):
    """Whether ``validate_data(..., reset=False)`` would return ``X`` itself, unchanged and silent.

    True only for the common case: an exact ``np.ndarray``, 2-D, float32 or float64,
    with the fitted number of features, at least one row, all finite, and an
    estimator fitted without feature names. Anything else (including every case
    where validate_data would raise or warn) answers False and goes through the
    full validate_data.
    """
    if (
        type(X) is not np.ndarray
        or X.ndim != 2
        or X.dtype not in _FLOAT_DTYPES
        or X.shape[0] < 1
        or X.shape[1] != fitted.get("n_features_in_")
        or "feature_names_in_" in fitted
    ):
        return False
    config = get_config()
    if config["array_api_dispatch"]:
        return False
    if config["assume_finite"]:
        return True
    # scikit-learn's own first pass: a finite sum means finite entries (a sum that
    # overflows takes the full path, which finds them finite). torch sums several
    # times faster than NumPy; it cannot wrap read-only arrays or every layout.
    if X.flags.writeable and _torch_can_share(X):
        return math.isfinite(torch.from_numpy(X).sum().item())
    with np.errstate(over="ignore", invalid="ignore"):  # silent: the full path warns as it should
        return bool(np.isfinite(X.sum()))


def _rows(X, device, dtype):
    """What the engine reads ``X`` through: a tensor on ``device`` or, for sparse
    ``X``, :class:`SparseRows` there, densified one batch at a time."""
    if _sparse.issparse(X):
        return _sparse.sparse_rows(X, device, dtype)
    return _as_tensor(X).to(device=device, dtype=dtype).contiguous()


# Data whose largest per-feature mean is within this many times its spread train on
# rows cast to float32 as given: the cast then loses less than 2**-14 of a spread,
# and such fits stay what they were, bit for bit.
_CENTRE_BEYOND_OFFSET = 2.0**10


def _location_modules(encoder, decoder):
    """The ``Standardize`` that starts ``encoder`` and the ``Unstandardize`` that ends ``decoder``.

    An empty tuple unless both networks are wrapped so (the networks skae
    builds, for ``"mse"``), share one location, and that location is more than
    :data:`_CENTRE_BEYOND_OFFSET` spreads from zero: only then does training
    read centred rows (see :func:`_centred_rows`) with the location set to zero.
    """
    if not (isinstance(encoder, nn.Sequential) and isinstance(decoder, nn.Sequential)):
        return ()
    if not (len(encoder) and len(decoder)):
        return ()
    standardize, unstandardize = encoder[0], decoder[-1]
    if type(standardize) is not Standardize or type(unstandardize) is not Unstandardize:
        return ()
    if not torch.equal(standardize.mean, unstandardize.mean.to(standardize.mean.device)):
        return ()
    offset = float(standardize.mean.abs().max()) if standardize.mean.numel() else 0.0
    if offset <= _CENTRE_BEYOND_OFFSET * float(standardize.scale):
        return ()
    return standardize, unstandardize


def _centred_rows(X, location, device, chunk_elements=1 << 20):
    """``X - location`` as float32 rows on ``device``, each difference taken in float64.

    Casting ``X`` to float32 first would round away whatever varies below
    float32's precision at the size of its values: float32's step at 1e6 is
    0.0625, so ``1e6 + 1e-3 * x`` would become 1e6 for any x in [0, 31]. The
    difference is taken block by block, so no float64 copy of ``X`` is made.
    """
    location = location.detach().to("cpu", torch.float64).numpy()
    rows = np.empty(X.shape, dtype=np.float32)
    chunk_rows = max(1, chunk_elements // max(1, X.shape[1]))
    for start in range(0, X.shape[0], chunk_rows):
        stop = start + chunk_rows
        np.subtract(X[start:stop], location, out=rows[start:stop], casting="same_kind")
    return torch.from_numpy(rows).to(device)


class _ZeroLocation:
    """Sets the networks' location to zero while training reads centred rows.

    Training on ``X - location`` with the location at zero is the same model
    as training on ``X`` with it: the location enters only through the
    ``Standardize`` / ``Unstandardize`` buffers, changed here in place (so the
    hand-written passes and the lean forward passes, which read the buffers on
    every call, see the change). Leaving the block puts the location back,
    whatever ends it. With no modules, it does nothing.
    """

    def __init__(self, modules):
        self.modules = modules
        self.locations = [module.mean.clone() for module in modules]

    def zero(self):
        """Set the location to zero (again, after weights from before the call were loaded)."""
        with torch.no_grad():
            for module in self.modules:
                module.mean.zero_()

    def __enter__(self):
        self.zero()
        return self

    def __exit__(self, *exc_info):
        with interrupts_deferred(), torch.no_grad():
            for module, location in zip(self.modules, self.locations):
                module.mean.copy_(location)


def _score_rows(model, X):
    """``model.score_samples`` on validation rows ``X`` (a tensor or SparseRows)."""
    if isinstance(X, SparseRows):
        # Densified chunk by chunk; for a VAE not yet calibrated the chunks
        # then each use their own maximum-likelihood decoder variance.
        return apply_in_chunks(model.score_samples, X, X.device, chunk_rows_for(X.shape[1]))
    return model.score_samples(X)


# estimator -> (its attributes when its inference model was built, that model);
# weak, so that the cache never keeps an estimator alive.
_INFERENCE_MODELS = weakref.WeakKeyDictionary()


class _BaseAutoencoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared implementation of :class:`AutoencoderTransformer` and :class:`VAETransformer`."""

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "architecture": [StrOptions({"mlp", "conv"})],
        "image_shape": ["array-like", None],
        "conv_channels": ["array-like", Interval(Integral, 1, None, closed="left")],
        "encoder": [nn.Module, None],
        "decoder": [nn.Module, None],
        "reconstruction_loss": [StrOptions({"mse", "bce"})],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "n_threads": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
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
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.architecture = architecture
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.encoder = encoder
        self.decoder = decoder
        self.reconstruction_loss = reconstruction_loss
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device
        self.n_threads = n_threads

    # ------------------------------------------------------------------ hooks

    def _encoder_outputs(self):
        """Columns of the encoder body's output: the code itself by default."""
        return self.n_components

    def _wrap_encoder(self, body):
        """The encoder the engine model expects, around a body of ``_encoder_outputs()`` columns."""
        return body

    def _engine_model_for(self, encoder, decoder, reconstruction_loss):
        """The engine model (:mod:`skae.engine.autoencoders`) wrapping two networks."""
        raise NotImplementedError

    def _prepare_training(self, X, fresh):
        """Record what training needs from the data before the first epoch."""

    # Rows the decoder runs per training row in the fit pass (see _fit_statistics).
    _decoded_rows_per_row = 1

    def _latent_summary(self, statistics, n_features, rng):
        """What :meth:`sample` and :meth:`score_samples` need from the training data.

        ``statistics`` is the engine model's ``fit_statistics`` of every training
        row (a tuple of CPU tensors, rows first), ``n_features`` the data's width,
        ``rng`` the fit's RandomState. Returns the fitted attributes as a dict:
        the fit assigns them with the others, all at once.
        """
        raise NotImplementedError

    def _draw_latent(self, n_samples, rng):
        """Latent codes for :meth:`sample`, float64 of shape ``(n_samples, n_components_)``."""
        raise NotImplementedError

    # ------------------------------------------------------------- validation

    def _positive_sizes(self, name):
        value = getattr(self, name)
        sizes = [value] if not hasattr(value, "__iter__") else list(value)
        for size in sizes:
            if isinstance(size, (bool, np.bool_)) or not isinstance(size, Integral) or size < 1:
                raise ValueError(f"{name} must contain positive integers, got {value!r}.")
        return tuple(int(size) for size in sizes)

    def _hidden_layer_sizes(self):
        return self._positive_sizes("hidden_layer_sizes")

    def _conv_channels(self):
        channels = self._positive_sizes("conv_channels")
        if not channels:
            raise ValueError(
                f"conv_channels must name at least one layer, got {self.conv_channels!r}; "
                'for no convolutions use architecture="mlp".'
            )
        return channels

    def _architecture(self):
        """What must stay fixed for training to continue from fitted weights.

        In the order of ``_ARCHITECTURE_PARAMETERS``; conv_channels only counts
        for ``architecture="conv"``, the user's networks by their layers.
        """
        return (
            self.n_components,
            self._hidden_layer_sizes(),
            self.activation,
            self.reconstruction_loss,
            self.architecture,
            _images.normalized_image_shape(self.image_shape),
            self._conv_channels() if self.architecture == "conv" else None,
            _user_networks.fingerprint(self.encoder),
            _user_networks.fingerprint(self.decoder),
        )

    def _architecture_changes(self):
        changes = []
        for name, before, after in zip(
            _ARCHITECTURE_PARAMETERS, self._fitted_architecture, self._architecture()
        ):
            if before == after:
                continue
            if name in ("encoder", "decoder"):
                changes.append(f"{name} (a module with other layers)")
            else:
                changes.append(f"{name} from {before!r} to {after!r}")
        return ", ".join(changes)

    def _training_image_shape(self, X, array_shape, fresh):
        """Resolve (fresh fit) or check (continued training) the shape of the images."""
        if not fresh:
            _images.check_image_arrays(self, array_shape)
            return self.image_shape_
        image_shape = _images.resolve_image_shape(self, X.shape[1], array_shape)
        if self.architecture == "conv" and (self.encoder is None or self.decoder is None):
            _images.check_conv_depth(image_shape, self._conv_channels(), X.shape[1])
        return image_shape

    def _accept_sparse(self, architecture):
        # Convolutions need whole images: sparse input is refused for them.
        return False if architecture == "conv" else _sparse.ACCEPTED_FORMATS

    def _validate_training_data(self, X, reset):
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=[np.float64, np.float32],
            accept_sparse=self._accept_sparse(self.architecture),
        )
        # max(-min, max) rather than max(abs(X)): no temporary copy of large data.
        low, high = _sparse.value_range(X) if _sparse.issparse(X) else (X.min(), X.max())
        largest = max(-float(low), float(high))
        if 0 < largest < _MIN_TRAINING_SCALE:
            _check_float32_scale(largest)
        if largest > _MAX_TRAINING_MAGNITUDE:
            raise ValueError(
                f"X contains values as large as {largest:.3g} in magnitude, beyond what "
                f"float32 training handles (|x| <= {_MAX_TRAINING_MAGNITUDE:g}). Scale the "
                "data first, for instance with sklearn.preprocessing.StandardScaler."
            )
        if self.reconstruction_loss == "bce":
            low, high = float(low), float(high)
            if low < 0 or high > 1:
                raise ValueError(
                    'reconstruction_loss="bce" needs data in [0, 1], but X ranges from '
                    f"{low:.4g} to {high:.4g}. Scale it with sklearn.preprocessing."
                    'MinMaxScaler or use reconstruction_loss="mse".'
                )
        return X

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(_AUTO_BATCH_SIZE, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(
                f"batch_size={self.batch_size} is larger than the {n_samples} samples "
                "given; it is clipped to the number of samples.",
                UserWarning,
            )
            return n_samples
        return self.batch_size

    # ---------------------------------------------------------------- fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the networks on ``X`` for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse matrices (CSR or CSC; other formats are
            converted to CSR) are densified one batch of rows at a time, never
            whole; not with ``architecture="conv"``. A float32
            :class:`numpy.memmap` trains on the CPU without being copied.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator.

        Notes
        -----
        Ctrl-C (``KeyboardInterrupt``) stops training and keeps the last
        completed epoch, with a warning: its weights, the optimiser's state,
        ``n_iter_``, ``loss_curve_`` and the latent summary are then exactly
        those an uninterrupted fit of that many epochs leaves. A Ctrl-C in the
        pass over ``X`` that follows the last epoch restarts that pass. A
        second Ctrl-C, or one before a fresh fit completes its first epoch,
        abandons the call: the estimator is left as it was before it and the
        ``KeyboardInterrupt`` propagates. :meth:`partial_fit` behaves alike; one
        interrupted before its epoch completes changes nothing.
        """
        return self._fit(X, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Make one pass over ``X``, continuing from the current weights.

        The first call initialises the networks; later calls keep the weights
        and the optimiser's state, so data read chunk by chunk trains one model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training data (sparse matrices as in :meth:`fit`).

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: there is no held-out "
                "data across calls. Set early_stopping=False or use fit."
            )
        return self._fit(X, incremental=True)

    def _fit(self, X, incremental):
        # Let go of the attributes this fit replaces as soon as it replaces them.
        _INFERENCE_MODELS.pop(self, None)
        undo = _FitUndo(self)
        try:
            return self._fit_or_raise(X, incremental, undo)
        except BaseException:
            # A failed or abandoned call (an error, a second Ctrl-C) leaves the
            # estimator as it was before the call.
            undo()
            raise

    def _fit_or_raise(self, X, incremental, undo):
        fitted = hasattr(self, "encoder_")
        fresh = not fitted or (not incremental and not self.warm_start)
        if not fresh and self._fitted_architecture != self._architecture():
            raise ValueError(
                "The network's shape parameters changed since the last fit: "
                f"{self._architecture_changes()}; continuing training needs the same "
                "network. Set warm_start=False and call fit."
            )
        X, array_shape = _images.flatten_image_arrays(self, X, self.architecture)
        X = self._validate_training_data(X, reset=fresh)
        image_shape = self._training_image_shape(X, array_shape, fresh)
        device = resolve_device(self.device)
        if fresh:
            rng = check_random_state(self.random_state)
            location, self._data_scale = _location_and_scale(X)
            _check_float32_scale(self._data_scale)
            encoder, decoder = self._initial_networks(X, rng, device, image_shape, location)
        else:
            rng = self._random_state
            undo.keep_networks_and_random_state()
            encoder, decoder = self.encoder_.to(device), self.decoder_.to(device)

        # Float64 data far from zero train on float32 rows centred in float64 (see
        # _centred_rows), so that an offset large beside the spread keeps the spread;
        # float32 data train as given (never copied), sparse data densified batch by batch.
        location_modules = (
            ()
            if X.dtype == np.float32 or _sparse.issparse(X)
            else _location_modules(encoder, decoder)
        )
        if location_modules:
            X_all = _centred_rows(X, location_modules[0].mean, device)
        else:
            X_all = _rows(X, device, torch.float32)
        with _ZeroLocation(location_modules) as location:
            self._prepare_training(X_all, fresh)
            X_train, X_val = X_all, None
            if self.early_stopping and not incremental:
                X_train, X_val = self._validation_split(X_all, rng)

            model = self._engine_model_for(encoder, decoder, self.reconstruction_loss)
            optimizer = make_optimizer(model.parameters(), self.learning_rate_init, device)
            if not fresh and getattr(self, "_optimizer_state", None) is not None:
                # A copy: training updates the optimiser's state tensors in place, and
                # the stored state must stay that of the kept weights until committed.
                optimizer.load_state_dict(copy.deepcopy(self._optimizer_state))
                for group in optimizer.param_groups:
                    group["lr"] = self.learning_rate_init
            generator = torch.Generator(device=device).manual_seed(
                int(rng.randint(np.iinfo(np.int32).max))
            )
            validation_score = None
            if X_val is not None:

                def validation_score():
                    with torch.no_grad():
                        return float(_score_rows(model, X_val).mean())

            epochs_before = 0 if fresh else self.n_iter_
            batch_size = self._batch_size(X_train.shape[0])
            threads, operation_threads = (
                fit_threads(model, X_train.shape[1], batch_size, self.n_threads)
                if device.type == "cpu"
                else (None, None)
            )
            history = train(
                model,
                optimizer,
                X_train,
                n_epochs=1 if incremental else self.max_iter,
                batch_size=batch_size,
                generator=generator,
                tol=self.tol,
                n_iter_no_change=None if incremental else self.n_iter_no_change,
                validation_score=validation_score,
                on_epoch_end=_ProgressPrinter(epochs_before) if self.verbose else None,
                threads=threads,
                operation_threads=operation_threads,
            )
            if history.stop_reason == "interrupted" and not history.losses:
                if fresh:
                    raise KeyboardInterrupt("fit was interrupted before its first epoch completed")
                # Nothing of this call is kept: the estimator stays as it was.
                undo()
                self._warn_about_stop(history.stop_reason, incremental)
                return self
            summary = self._statistics_of_kept_weights(
                model, X_train, device, history, undo, rng, location.zero
            )
        previous_losses = [] if fresh else self.loss_curve_
        if history.stop_reason == "diverged" and not (previous_losses or history.losses):
            raise ValueError(
                "Training diverged before any epoch gave usable weights: the loss or the "
                "network's outputs became NaN or infinite. "
                f"Lower learning_rate_init (now {self.learning_rate_init:g}) or scale the "
                "data, for instance with sklearn.preprocessing.StandardScaler."
            )

        # Everything is computed; the new attributes replace the old ones in one
        # step that a Ctrl-C cannot cut in half.
        fitted = dict(
            encoder_=encoder,
            decoder_=decoder,
            n_components_=self.n_components,
            image_shape_=image_shape,
            device_=device,
            _fitted_architecture=self._architecture(),
            _random_state=rng,
            _optimizer_state=None if history.stop_reason == "diverged" else optimizer.state_dict(),
            n_iter_=epochs_before + len(history.losses),
            loss_curve_=previous_losses + history.losses,
        )
        fitted["best_loss_"] = min(fitted["loss_curve_"])
        if self.early_stopping and not incremental:
            previous = [] if fresh else (self.validation_scores_ or [])
            scores = previous + history.validation_scores
            fitted["validation_scores_"] = scores
            fitted["best_validation_score_"] = max(scores) if scores else None
        elif fresh:
            fitted["validation_scores_"] = None
            fitted["best_validation_score_"] = None
        fitted.update(summary)
        with interrupts_deferred():
            vars(self).update(fitted)
            undo.forget()
        self._warn_about_stop(history.stop_reason, incremental)
        return self

    def _statistics_of_kept_weights(self, model, X, device, history, undo, rng, after_restore):
        """The latent summary of ``X`` under the weights that training kept, as a dict.

        Its pass over ``X`` (see :meth:`_fit_statistics`) also checks them:
        weights broken after the last epoch (a non-finite output) count as a
        divergence, the weights from before the call come back (None for a fresh
        fit, which has none) and the summary is of them. A first Ctrl-C during
        this work does not stop it, as the kept weights need their summary: it
        starts again and the fit ends as interrupted. A second Ctrl-C (the first
        may have stopped the training) abandons the call. ``after_restore`` runs
        once the weights from before the call are back (it sets the location to
        zero again for centred rows, see :class:`_ZeroLocation`).
        """
        retried = history.stop_reason == "interrupted"
        while True:
            try:
                statistics, finite = self._fit_statistics(model, X, device)
                if not finite and history.losses:
                    # An epoch's mean loss was finite but its last steps broke the weights.
                    history.stop_reason = "diverged"
                    history.losses, history.validation_scores = [], []
                    if not undo.restore_networks():
                        return None
                    after_restore()
                    continue
                return self._latent_summary(statistics, X.shape[1], rng)
            except KeyboardInterrupt:
                if retried:
                    raise
                retried = True
                history.stop_reason = "interrupted"

    def _fit_statistics(self, model, X, device):
        """``(model.fit_statistics over every row of X, whether all of it is finite)``.

        One pass serves both the check that training left every output finite
        (a finite mean loss in the last epoch does not prove it for the final
        weights) and the summary of the training data that the estimator keeps.
        """
        chunk_rows = chunk_rows_for(X.shape[1] * self._decoded_rows_per_row)
        threads = self._inference_threads(model.encoder, X.shape[1], min(chunk_rows, X.shape[0]), device)
        statistics = apply_in_chunks(model.fit_statistics, X, device, chunk_rows, threads)
        return statistics, all_finite(statistics)

    def _build_networks(self, n_features, hidden_layer_sizes, image_shape=None):
        """Return ``(encoder, decoder)`` for ``n_features`` inputs, as ``architecture`` says."""
        n_outputs = self._encoder_outputs()
        if self.architecture == "conv":
            shape = _images.as_chw(image_shape)
            channels = self._conv_channels()
            body = build_conv_encoder(
                shape, channels, hidden_layer_sizes, n_outputs, self.activation
            )
            decoder = build_conv_decoder(
                self.n_components, hidden_layer_sizes, channels, shape, self.activation
            )
        else:
            body = build_mlp([n_features, *hidden_layer_sizes, n_outputs], self.activation)
            decoder = build_mlp(
                [self.n_components, *reversed(hidden_layer_sizes), n_features], self.activation
            )
        return self._wrap_encoder(body), decoder

    def _initial_networks(self, X, rng, device, image_shape, location):
        """Build the networks without drawing from torch's global random state.

        They are built on the meta device (no initialisation at all), then
        initialised on the CPU from a seeded local generator, so the starting
        weights are the same whichever device trains them. The user's own
        networks are deep-copied instead, and checked on two rows of X.
        """
        with torch.device("meta"):
            encoder, decoder = (
                self._build_networks(X.shape[1], self._hidden_layer_sizes(), image_shape)
                if self.encoder is None or self.decoder is None
                else (None, None)
            )
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        if self.encoder is None:
            _allocate(encoder, self.hidden_layer_sizes)
            initialize_parameters(encoder, generator)
        if self.decoder is None:
            _allocate(decoder, self.hidden_layer_sizes)
            initialize_parameters(decoder, generator)
        # The built networks work on standardised data, so the same learning rate
        # and initialisation suit data of any scale; the losses stay in input units.
        encoder, decoder = self._wrap_networks(encoder, decoder, location, self._data_scale)
        if self.encoder is not None:
            encoder = self._user_encoder(X, device)
        if self.decoder is not None:
            decoder = _user_networks.copy_user_network(self.decoder, "decoder").to(device)
            _user_networks.check_user_decoder(decoder, self.n_components, X.shape[1], device)
        return encoder.to(device), decoder.to(device)

    def _wrap_networks(self, encoder, decoder, mean, scale):
        """Put the standardising layers around freshly built networks (None stays None)."""
        if encoder is not None:
            encoder = nn.Sequential(Standardize(mean, scale), encoder)
        if decoder is not None and self.reconstruction_loss == "mse":
            decoder = nn.Sequential(decoder, Unstandardize(mean, scale))
        return encoder, decoder

    def _user_encoder(self, X, device):
        body = _user_networks.copy_user_network(self.encoder, "encoder").to(device)
        n_outputs = self._encoder_outputs()
        meaning = (
            f"n_components={n_outputs}"
            if n_outputs == self.n_components
            else f"2 * n_components={n_outputs}: means, then log-variances"
        )
        first = X[:2].toarray() if _sparse.issparse(X) else np.asarray(X[:2])
        rows = torch.as_tensor(first, dtype=torch.float32, device=device)
        _user_networks.check_user_encoder(body, rows, n_outputs, meaning)
        return self._wrap_encoder(body)

    def _validation_split(self, X, rng):
        n_samples = X.shape[0]
        n_val = max(1, int(round(self.validation_fraction * n_samples)))
        if n_samples - n_val < 1:
            raise ValueError(
                f"early_stopping=True needs at least 2 samples to hold out "
                f"validation_fraction={self.validation_fraction} of them; got "
                f"{n_samples}."
            )
        order = torch.from_numpy(rng.permutation(n_samples)).to(X.device)
        if isinstance(X, SparseRows):
            return X.take(order[n_val:]), X.take(order[:n_val])
        return X.index_select(0, order[n_val:]), X.index_select(0, order[:n_val])

    def _warn_about_stop(self, stop_reason, incremental):
        if stop_reason == "diverged":
            warnings.warn(
                "Training diverged: the loss became NaN or infinite, so training stopped "
                f"and the weights of the last finite epoch (epoch {self.n_iter_}) were "
                f"kept. Lower learning_rate_init (now {self.learning_rate_init:g}) or "
                "scale the data, for instance with sklearn.preprocessing.StandardScaler.",
                ConvergenceWarning,
            )
        elif stop_reason == "interrupted":
            warnings.warn(
                "Training was interrupted (KeyboardInterrupt); the weights of the last "
                f"completed epoch were kept (n_iter_={self.n_iter_}).",
                UserWarning,
            )
        elif stop_reason == "max_epochs" and not incremental:
            warnings.warn(
                f"Maximum iterations ({self.max_iter}) reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
            )

    # --------------------------------------------------------------- inference

    def _engine_model(self):
        """The fitted engine model, as fitted (later set_params calls do not change it)."""
        reconstruction_loss = self._fitted_architecture[3]
        return self._engine_model_for(self.encoder_, self.decoder_, reconstruction_loss)

    def _inference_model(self):
        """:meth:`_engine_model`, kept while no attribute of the estimator is reassigned.

        Building the torch module takes tens of microseconds, a noticeable share of
        a small :meth:`transform`. The kept model is checked against every
        attribute by identity, so set_params, a fit, or any other assignment to
        the estimator builds it again; the networks it wraps are the estimator's
        own, so changes made to them in place are seen as they are.
        """
        state = self.__dict__
        snapshot = [*state, *state.values()]
        cached = _INFERENCE_MODELS.get(self)
        if cached is not None and len(cached[0]) == len(snapshot) and all(map(operator.is_, cached[0], snapshot)):
            return cached[1]
        model = self._engine_model()
        _INFERENCE_MODELS[self] = (snapshot, model)
        return model

    def _validate_inference_data(self, X):
        if "encoder_" not in self.__dict__:
            check_is_fitted(self)
        if _plain_valid_array(X, self.__dict__):
            return X
        X, array_shape = _images.flatten_image_arrays(self, X, self._fitted_architecture[4])
        _images.check_image_arrays(self, array_shape)
        return validate_data(
            self,
            X,
            reset=False,
            dtype=[np.float64, np.float32],
            accept_sparse=self._accept_sparse(self._fitted_architecture[4]),
        )

    def _compute_dtype(self, dtype):
        # MPS has no float64; elsewhere float64 input is computed in float64 so the
        # result does not depend on how rows are batched (float32 BLAS kernels do).
        if dtype == np.float64 and self.device_.type != "mps":
            return torch.float64
        return torch.float32

    def _compute(self, method, X, n_columns, name="the model", input_rows=None):
        """Run ``method(model, batch)`` over ``X`` in chunks; CPU tensors out, all finite.

        A float32 computation that overflows is redone in float64 (where the
        device has it); a result that is still not finite raises a ValueError.
        """
        dtype = self._compute_dtype(X.dtype)
        chunk_rows = chunk_rows_for(n_columns)
        threads = self._inference_threads(
            self.encoder_, self.n_features_in_, min(chunk_rows, X.shape[0]), self.device_
        )
        while True:
            model = self._inference_model().for_dtype(dtype)
            result = apply_in_chunks(
                lambda batch, model=model: method(model, batch),
                _rows(X, self.device_, dtype) if _sparse.issparse(X) else _as_tensor(X, dtype),
                self.device_,
                chunk_rows,
                threads,
            )
            finite = all_finite(result)
            if finite or dtype == torch.float64 or self.device_.type == "mps":
                break
            dtype = torch.float64
        if not finite:
            check_finite_output(result, name, input_rows)  # raises, naming the rows
        return result

    def _inference_threads(self, encoder, n_features, n_rows, device):
        """Threads for inference over ``n_rows`` rows at once; None off the CPU."""
        if device.type != "cpu":
            return None
        return inference_threads(encoder, n_features, n_rows, self.n_threads)

    def _apply(self, method, X, n_columns, name="the model", input_rows=None):
        """:meth:`_compute`, as numpy arrays in X's dtype."""
        result = self._compute(method, X, n_columns, name, input_rows)
        parts = result if isinstance(result, tuple) else (result,)
        arrays = tuple(part.numpy().astype(X.dtype, copy=False) for part in parts)
        if any(part.element_size() > array.itemsize for part, array in zip(parts, arrays)):
            # A float64 result beyond float32's range becomes infinite when cast back.
            check_finite_output(tuple(torch.from_numpy(a) for a in arrays), name, input_rows)
        return arrays if isinstance(result, tuple) else arrays[0]

    def transform(self, X):
        """Encode ``X`` into its latent code (deterministic).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The codes, in X's floating dtype (float32 stays float32).

        Raises
        ------
        ValueError
            If the result would contain NaN or infinity (a float32 overflow is
            first retried in float64): skae never returns non-finite values.
        """
        codes = self._transform_plain_array(X)
        if codes is not None:
            return codes
        X = self._validate_inference_data(X)
        return self._apply(
            lambda model, batch: model.encode(batch), X, X.shape[1], "transform", X
        )

    def _transform_plain_array(self, X):
        """:meth:`transform` of the commonest input by the shortest path, or None.

        That input is a float array that needs no validation (see
        :func:`_plain_valid_array`), small enough for one chunk, on the CPU,
        encoded by a plain MLP (whose lean pass computes in X's dtype, as the
        general path does on the CPU). On inputs of a few thousand rows every
        Python step of the general path is a measurable share of the call, so
        this one calls the encoder's lean forward pass directly. None whenever
        anything differs or the codes are not all finite: the general path then
        does the work, retries in float64 and names the rows it cannot encode.
        """
        state = self.__dict__
        device = state.get("device_")
        if device is None or device.type != "cpu" or not _plain_valid_array(X, state):
            return None
        encode = lean_forward(self.encoder_)
        if encode is None or X.shape[0] > chunk_rows_for(X.shape[1]):
            return None
        threads = inference_threads(self.encoder_, X.shape[1], X.shape[0], self.n_threads)
        with torch.inference_mode(), in_threads(threads):
            codes = encode(_as_tensor(X))
        if isinstance(codes, tuple):  # the VAE's (mean, log_var): its code is the mean
            codes = codes[0]
        if not math.isfinite(codes.sum().item()):
            return None
        # Float64 weights (a network converted in place) promote float32 input.
        return codes.numpy().astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        """Decode latent codes back to input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent codes, for instance the output of :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstructions in input space (probabilities in [0, 1] for
            ``reconstruction_loss="bce"``, never logits).

        Raises
        ------
        ValueError
            If the result would contain NaN or infinity (a float32 overflow is
            first retried in float64): skae never returns non-finite values.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32], input_name="X")
        if Z.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {Z.shape[1]} columns, but {type(self).__name__} decodes codes "
                f"of n_components={self.n_components_} columns."
            )
        return self._apply(
            lambda model, batch: model.decode(batch), Z, self.n_features_in_,
            "inverse_transform", Z,
        )

    def score_samples(self, X):
        """Per-sample score: higher means better explained.

        For :class:`~skae.VAETransformer` the evidence lower bound in nats, for
        :class:`~skae.AutoencoderTransformer` minus the reconstruction loss; the
        classes' Notes say exactly what each is and what it bounds.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Float64 scores; deterministic and independent of how rows are
            batched.

        Raises
        ------
        ValueError
            If the result would contain NaN or infinity (a float32 overflow is
            first retried in float64): skae never returns non-finite values.
        """
        X = self._validate_inference_data(X)
        if self._fitted_architecture[3] == "bce" and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                'score_samples of a reconstruction_loss="bce" model needs data in [0, 1] (a '
                f"Bernoulli likelihood), but X ranges from {X.min():.4g} to {X.max():.4g}. "
                "Scale it as the training data was scaled."
            )
        result = self._compute(
            lambda model, batch: model.score_samples(batch), X, X.shape[1], "score_samples", X
        )
        return result.numpy().astype(np.float64)

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`, so model selection needs no labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        y : None
            Ignored; present for API consistency.

        Returns
        -------
        score : float
            Average of :meth:`score_samples` over the rows.
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """Generate new data by decoding random latent codes.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        random_state : int, RandomState instance or None, default=None
            Seeds the latent draws; the same value gives the same samples.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Generated data in input space, float64.

        Raises
        ------
        ValueError
            If the result would contain NaN or infinity (a float32 overflow is
            first retried in float64): skae never returns non-finite values.
        """
        check_is_fitted(self)
        if (
            isinstance(n_samples, (bool, np.bool_))
            or not isinstance(n_samples, Integral)
            or n_samples < 1
        ):
            raise ValueError(
                f"n_samples must be a positive integer, got {n_samples!r}: sample needs "
                "to draw at least one sample."
            )
        rng = check_random_state(random_state)
        Z = self._draw_latent(int(n_samples), rng)
        return self._apply(
            lambda model, batch: model.decode(batch), Z, self.n_features_in_, "sample"
        )

    def save(self, path):
        """Write the estimator to ``path`` in skae's safe format.

        Parameters go in as JSON and weights as safetensors, so loading the
        file with :func:`skae.load` can never run code, unlike pickle. Fitted
        or not, the estimator comes back with the same parameters, and a
        fitted one gives bit-identical :meth:`transform` and :meth:`sample`
        output on the CPU. See :func:`skae.save`.

        Parameters
        ----------
        path : str or os.PathLike
            File to write (replaced if it exists).

        Raises
        ------
        TypeError
            If a parameter or fitted attribute cannot be stored safely, for
            instance a user-supplied torch module; use pickle for those.

        See Also
        --------
        skae.load : Read the file back.
        """
        from .persistence import save

        save(self, path)

    # -------------------------------------------------------------- plumbing

    @property
    def _n_features_out(self):
        return self.n_components_

    # The parameters that shape the networks, for skae._schema to check fitted architectures.
    _ARCHITECTURE_PARAMETERS = _ARCHITECTURE_PARAMETERS

    def _fitted_architecture_params(self):
        """The fitted architecture as ``{parameter name: value}``."""
        return dict(zip(_ARCHITECTURE_PARAMETERS, self._fitted_architecture))

    def _empty_networks(self):
        """The fitted networks skae built, on the meta device, for their weights to be loaded into.

        Built from the fitted architecture (not the current parameters) as fit
        built them; None in place of a network the user supplied.
        """
        fitted = self._fitted_architecture_params()
        user_encoder, user_decoder = fitted.pop("encoder") is not None, fitted.pop("decoder") is not None
        if user_encoder and user_decoder:
            return None, None
        if fitted["conv_channels"] is None:
            del fitted["conv_channels"]
        builder = type(self)().set_params(**fitted)
        with torch.device("meta"):
            encoder, decoder = builder._build_networks(
                self.n_features_in_, builder._hidden_layer_sizes(), self.image_shape_
            )
            return builder._wrap_networks(
                None if user_encoder else encoder,
                None if user_decoder else decoder,
                np.zeros(self.n_features_in_),
                1.0,
            )

    def __getstate__(self):
        # Plain data only (arrays, numbers, strings): see skae._state.
        return _state.estimator_state(self)

    def __setstate__(self, state):
        _state.restore_estimator(self, state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = self.architecture != "conv"
        return tags


class _ProgressPrinter:
    """Prints one line per epoch, numbered across warm starts (as MLPRegressor)."""

    def __init__(self, epochs_before):
        self.epoch = epochs_before

    def __call__(self, loss, validation_score):
        self.epoch += 1
        message = f"Iteration {self.epoch}, loss = {loss:.8f}"
        if validation_score is not None:
            message += f", validation score = {validation_score:.8f}"
        print(message)


class _FitUndo:
    """Puts an estimator back as it was before a call to ``fit`` or ``partial_fit``.

    Its attributes are kept by reference (the fit replaces them, never changes
    them in place) except what training changes in place when it continues
    from fitted weights: the networks' weights and device, and the RandomState.
    """

    def __init__(self, estimator):
        self.estimator = estimator
        self.attributes = dict(vars(estimator))
        self.networks = None
        self.active = True

    def keep_networks_and_random_state(self):
        """Copy what continued training changes in place (call before it starts)."""
        estimator = self.estimator
        networks = (estimator.encoder_, estimator.decoder_)
        self.networks = networks, [copy.deepcopy(net.state_dict()) for net in networks], estimator.device_
        self.random_state = estimator._random_state.get_state()

    def restore_networks(self):
        """Give the networks their weights from before the call; False if there were none."""
        if self.networks is None:
            return False
        networks, weights, device = self.networks
        with interrupts_deferred():
            for network, state in zip(networks, weights):
                network.to(device).load_state_dict(state)
        return True

    def forget(self):
        """The call's results are committed: undoing would now lose them."""
        self.active = False

    def __call__(self):
        if not self.active:
            return
        with interrupts_deferred():
            if self.restore_networks():
                self.attributes["_random_state"].set_state(self.random_state)
            state = vars(self.estimator)
            state.clear()
            state.update(self.attributes)
            self.active = False


def _allocate(network, hidden_layer_sizes):
    """Give a meta-device network CPU memory, or say clearly that it does not fit."""
    try:
        network.to_empty(device="cpu")
    except (RuntimeError, MemoryError):
        n_parameters = sum(parameter.numel() for parameter in network.parameters())
        raise ValueError(
            f"The networks for hidden_layer_sizes={hidden_layer_sizes!r} need "
            f"{n_parameters:,} parameters ({4 * n_parameters / 2**30:.3g} GiB in float32 for "
            "one network), more memory than is available. Use smaller hidden layers."
        ) from None

