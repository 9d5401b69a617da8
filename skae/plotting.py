"""Pictures of latent spaces, reconstructions, samples and training, as Displays.

Each class follows scikit-learn's Display pattern: the constructor stores the
data to draw, :meth:`plot` draws it on a matplotlib ``Axes`` (a new one when
``ax`` is None) and returns the display with ``figure_`` and ``ax_`` set, and
``from_estimator`` computes the data from a fitted estimator, then plots.
matplotlib is needed only here (``pip install "skae[viz]"``).
"""

import math

import numpy as np
from sklearn.decomposition import PCA
from sklearn.utils import _safe_indexing
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils.validation import _num_samples, check_is_fitted

__all__ = [
    "LatentManifoldDisplay",
    "LatentSpaceDisplay",
    "LossCurveDisplay",
    "ReconstructionDisplay",
    "SampleDisplay",
]


def _new_axes(ax, caller):
    check_matplotlib_support(caller)
    if ax is None:
        import matplotlib.pyplot as plt

        # Constrained layout keeps colour bars, legends and a twin axis's label inside.
        _, ax = plt.subplots(layout="constrained")
    return ax.figure, ax


def _name(estimator):
    return type(estimator).__name__


def _resolve_image_shape(image_shape, n_features, estimator=None):
    """``(C, H, W)`` from ``image_shape`` or the estimator's ``image_shape_``; None for tabular."""
    if image_shape is None and estimator is not None:
        image_shape = getattr(estimator, "image_shape_", None)
    if image_shape is None:
        return None
    shape = tuple(int(size) for size in image_shape)
    if len(shape) == 2:
        shape = (1, *shape)
    if len(shape) != 3 or math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} does not fit data with {n_features} features: "
            "give (H, W) or (C, H, W) with C * H * W equal to the number of features."
        )
    if shape[0] not in (1, 3):
        raise ValueError(
            f"image_shape={image_shape!r} has {shape[0]} channels; only grey (1) or RGB "
            "(3) images can be drawn."
        )
    return shape


def _check_value_range(value_range):
    if value_range is None:
        return None
    low, high = (float(v) for v in value_range)
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(
            f"value_range must be (low, high) with finite low < high, got {value_range!r}."
        )
    return low, high


def _estimator_value_range(estimator, value_range):
    """``value_range`` if given, else [0, 1] for a ``"bce"`` model (its data's range), else None."""
    if value_range is not None:
        return value_range
    from ._base import _ARCHITECTURE_PARAMETERS

    fitted = getattr(estimator, "_fitted_architecture", None)
    if fitted is not None and dict(zip(_ARCHITECTURE_PARAMETERS, fitted)).get(
        "reconstruction_loss"
    ) == "bce":
        return (0.0, 1.0)
    return None


def _mosaic(rows, image_shape, n_cols, value_range=None, gap=1):
    """Tile flat images into one array that ``imshow`` can draw; gaps are blank.

    Grey tiles keep their values (``imshow`` clips them to ``value_range``); RGB
    tiles are rescaled from ``value_range`` (default [0, 1]) to [0, 1] and clipped.
    """
    channels, height, width = image_shape
    n_rows = math.ceil(len(rows) / n_cols)
    canvas = np.full(
        (n_rows * (height + gap) - gap, n_cols * (width + gap) - gap, channels), np.nan
    )
    for index, row in enumerate(np.asarray(rows, dtype=np.float64)):
        r, c = divmod(index, n_cols)
        top, left = r * (height + gap), c * (width + gap)
        canvas[top : top + height, left : left + width] = row.reshape(image_shape).transpose(1, 2, 0)
    if channels == 1:
        return canvas[..., 0]
    low, high = value_range if value_range is not None else (0.0, 1.0)
    # RGB images need values in [0, 1] and cannot show NaN: gaps become white.
    return np.clip(np.nan_to_num((canvas - low) / (high - low), nan=1.0), 0.0, 1.0)


def _show_mosaic(ax, mosaic, cmap, value_range):
    """Draw a mosaic with colours clipped to ``value_range`` (None: its own range)."""
    low, high = value_range if value_range is not None else (None, None)
    image = ax.imshow(
        mosaic, cmap=cmap if mosaic.ndim == 2 else None, vmin=low, vmax=high,
        interpolation="nearest",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def _negated(label):
    return label[1:] if label.startswith("-") else label if float(label) == 0 else f"-{label}"


def _grid_ticks(grid, tile_size, gap):
    """Ticks at round code values within ``grid``: ``(positions in pixels, labels)``.

    ``grid`` holds the (increasing, possibly unevenly spaced) code values of the
    tiles, whose centres lie ``tile_size + gap`` pixels apart.
    """
    from matplotlib.ticker import MaxNLocator

    grid = np.asarray(grid, dtype=np.float64)
    centres = np.arange(len(grid)) * (tile_size + gap) + (tile_size - 1) / 2
    values = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(grid[0], grid[-1])
    step = values[1] - values[0]
    tolerance = 1e-9 * step
    values = values[(values >= grid[0] - tolerance) & (values <= grid[-1] + tolerance)]
    exponent = math.floor(math.log10(step))
    # Enough decimals for the step (2.5 needs one more than 2 or 5).
    decimals = max(0, -exponent + (1 if round(step / 10**exponent, 6) == 2.5 else 0))
    # Rounding to the step turns -1.4e-16 into (-)0, and adding 0.0 makes that +0.
    values = np.round(values / step) * step + 0.0
    labels = [f"{value:.{decimals}f}" for value in values]
    return np.interp(values, grid, centres), labels


def _to_rgba(colour):
    from matplotlib.colors import to_rgba

    return np.array(to_rgba(colour))


_MAX_LEGEND_CLASSES = 20


def _classes(labels, task="auto"):
    """The sorted classes of ``labels``, or None for a target to colour continuously.

    ``task`` as in :func:`skae.compare.resolve_task`, whose rule ``"auto"``
    follows, so that a picture and a comparison's table read a target alike.
    """
    from .compare import resolve_task

    if task == "auto" and np.issubdtype(labels.dtype, np.number) and not np.isfinite(labels).all():
        return None  # a quantity with gaps: its colour scale shows them as such
    if resolve_task(labels, task) == "classification":
        return np.unique(labels)
    return None


def _scatter_classes(ax, codes, labels, classes, cmap, options):
    """One colour per class, with a legend entry each: ``(scatter, legend handles)``."""
    import matplotlib
    from matplotlib.lines import Line2D

    colormap = matplotlib.colormaps[cmap or ("tab10" if len(classes) <= 10 else "tab20")]
    if colormap.N <= 20:  # a qualitative palette: its colours in order
        palette = colormap(np.arange(len(classes)) % colormap.N)
    else:  # a continuous colour map: colours spread over it
        palette = colormap(np.linspace(0, 1, len(classes)))
    index = np.searchsorted(classes, labels)
    scatter = ax.scatter(codes[:, 0], codes[:, 1], c=palette[index], **options)
    if len(classes) > _MAX_LEGEND_CLASSES:  # a legend that long reads as noise
        return scatter, []
    handles = [
        Line2D([], [], color=colour, marker="o", linestyle="", label=str(label))
        for label, colour in zip(classes, palette)
    ]
    return scatter, handles


class LatentSpaceDisplay:
    """Scatter plot of codes in two dimensions, coloured by label.

    Class labels get one colour each and a legend (up to 20 classes); a
    target to regress gets a continuous colour map and a colour bar. Which one
    a target is follows :func:`skae.compare.resolve_task` (text, booleans, two
    values and whole numbers with few distinct values are classes), or the
    ``task`` given to :meth:`plot`. On request the display also shows
    where a skae estimator's sampler draws its codes, which of those draws
    fall in holes of the codes, and how many codes the draws reach (see
    :func:`skae.metrics.latent_coverage`).

    Parameters
    ----------
    codes : ndarray of shape (n_samples, 2)
        Points to draw.
    labels : array-like of shape (n_samples,) or None, default=None
        Colours the points.
    axis_labels : tuple of str, default=("component 1", "component 2")
        Labels of the x and y axes.
    estimator_name : str or None, default=None
        Title of the plot.
    draws : ndarray of shape (n_draws, 2) or None, default=None
        The sampler's latent draws, in the coordinates of ``codes``.
    in_hole : array-like of bool of shape (n_draws,) or None, default=None
        Which ``draws`` lie in holes of the codes; required with ``draws``.
    reached : array-like of bool of shape (n_samples,) or None, default=None
        Which codes have a draw near them; required with ``draws``.

    Attributes
    ----------
    scatter_ : matplotlib PathCollection
        The codes.
    draws_scatter_ : matplotlib PathCollection or None
        The draws, when there are any.
    holes_ : float or None
        The share of ``draws`` in holes, when there are draws.
    reached_ : float or None
        The share of codes the draws reach, when there are draws.
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    LatentManifoldDisplay : What the decoder makes of a grid over the code plane.
    skae.metrics.latent_coverage : The shares of draws in holes and codes reached.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.decomposition import PCA
    >>> from skae.plotting import LatentSpaceDisplay
    >>> X, y = load_iris(return_X_y=True)
    >>> display = LatentSpaceDisplay.from_estimator(PCA(2).fit(X), X, y)
    >>> display.scatter_.get_offsets().shape
    (150, 2)
    """

    def __init__(self, codes, labels=None, *, axis_labels=("component 1", "component 2"),
                 estimator_name=None, draws=None, in_hole=None, reached=None):
        self.codes = codes
        self.labels = labels
        self.axis_labels = axis_labels
        self.estimator_name = estimator_name
        self.draws = draws
        self.in_hole = in_hole
        self.reached = reached

    def plot(self, ax=None, *, cmap=None, task="auto", **scatter_kwargs):
        """Draw the scatter plot.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.
        cmap : str or Colormap or None, default=None
            Colours of the labels. None: ``"tab10"`` for up to 10 classes,
            ``"tab20"`` for more, ``"viridis"`` for a continuous target.
        task : {"auto", "classification", "regression"}, default="auto"
            Whether the labels are classes or a quantity; ``"auto"`` decides
            as :func:`skae.compare.resolve_task` does.
        **scatter_kwargs : dict
            Passed to ``ax.scatter`` for the codes.

        Returns
        -------
        self : LatentSpaceDisplay
        """
        figure, ax = _new_axes(ax, "LatentSpaceDisplay.plot")
        codes = np.asarray(self.codes)
        if codes.ndim != 2 or codes.shape[1] != 2:
            raise ValueError(f"codes must have shape (n_samples, 2), got {codes.shape}.")
        options = {"s": 8, "alpha": 0.8, **scatter_kwargs}
        handles = []
        if self.labels is None:
            self.scatter_ = ax.scatter(codes[:, 0], codes[:, 1], **options)
        else:
            labels = np.asarray(self.labels)
            if len(labels) != len(codes):
                raise ValueError(
                    f"labels has {len(labels)} entries for {len(codes)} codes; give one per code."
                )
            classes = _classes(labels, task)
            if classes is None:
                self.scatter_ = ax.scatter(codes[:, 0], codes[:, 1], c=labels,
                                           cmap=cmap or "viridis", **options)
                figure.colorbar(self.scatter_, ax=ax, label="target")
            else:
                self.scatter_, handles = _scatter_classes(ax, codes, labels, classes, cmap,
                                                          options)
        self.draws_scatter_ = self.holes_ = self.reached_ = None
        if self.draws is not None:
            handles += self._plot_draws(ax, len(codes))
        if handles:
            ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5),
                      fontsize="small", frameon=False)
        ax.set_xlabel(self.axis_labels[0])
        ax.set_ylabel(self.axis_labels[1])
        title = self.estimator_name or ""
        if self.holes_ is not None:
            shares = f"{self.holes_:.0%} of draws in holes, {self.reached_:.0%} of codes reached"
            title = f"{title}\n{shares}" if title else shares
        if title:
            ax.set_title(title)
        self.figure_, self.ax_ = figure, ax
        return self

    def _plot_draws(self, ax, n_codes):
        from matplotlib.lines import Line2D

        draws = np.asarray(self.draws, dtype=np.float64)
        if draws.ndim != 2 or draws.shape[1] != 2:
            raise ValueError(f"draws must have shape (n_draws, 2), got {draws.shape}.")
        if self.in_hole is None or len(self.in_hole) != len(draws):
            raise ValueError("in_hole must say, for each of the draws, whether it lies in a hole.")
        if self.reached is None or len(self.reached) != n_codes:
            raise ValueError("reached must say, for each of the codes, whether a draw is near it.")
        in_hole = np.asarray(self.in_hole, dtype=bool)
        self.reached_ = float(np.mean(np.asarray(self.reached, dtype=bool)))
        colours = np.where(in_hole[:, np.newaxis], _to_rgba("tab:red"), _to_rgba("black"))
        self.draws_scatter_ = ax.scatter(draws[:, 0], draws[:, 1], c=colours, marker="x",
                                         s=14, linewidths=0.8, alpha=0.7)
        self.holes_ = float(in_hole.mean())
        return [
            Line2D([], [], color="black", marker="x", linestyle="", label="draw near a code"),
            Line2D([], [], color="tab:red", marker="x", linestyle="", label="draw in a hole"),
        ]

    @classmethod
    def from_estimator(cls, estimator, X, y=None, *, holes=False, n_draws=None,
                       random_state=None, ax=None, cmap=None, task="auto", **scatter_kwargs):
        """Encode ``X`` with a fitted transformer and draw the codes.

        With more than two components the codes are projected on their first
        two principal components, which the axis labels say.

        Parameters
        ----------
        estimator : fitted transformer
            Anything with ``transform``: skae's estimators, PCA, ...
        X : array-like of shape (n_samples, n_features)
            Data to encode.
        y : array-like of shape (n_samples,) or None, default=None
            Labels that colour the points.
        holes : bool, default=False
            Also draw ``n_draws`` codes the way the estimator's ``sample``
            does (a skae estimator only), marking in red those whose nearest
            code of ``X`` is farther than 95% of the codes are from their
            nearest neighbour, and give in the title their share and the
            share of codes with a draw that near: the measures of
            :func:`skae.metrics.latent_coverage` (computed in the full code
            space; the picture projects the draws like the codes).
        n_draws : int or None, default=None
            Draws to show with ``holes=True``; None: as many as ``X`` has rows.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws.
        ax : matplotlib Axes, default=None
            Where to draw; a new figure when None.
        cmap : str or Colormap or None, default=None
            Colours of the labels (see :meth:`plot`).
        task : {"auto", "classification", "regression"}, default="auto"
            Whether ``y`` holds classes or a quantity (see :meth:`plot`).
        **scatter_kwargs : dict
            Passed to ``ax.scatter`` for the codes.

        Returns
        -------
        display : LatentSpaceDisplay
        """
        codes = np.asarray(estimator.transform(X), dtype=np.float64)
        if codes.shape[1] < 2:
            raise ValueError(
                f"{_name(estimator)} gives {codes.shape[1]} component; a latent space plot "
                "needs at least 2 (set n_components >= 2)."
            )
        draws = in_hole = reached = None
        if holes:
            from .metrics import _latent_codes_and_draws, _latent_neighbourhoods

            codes, draws = _latent_codes_and_draws(estimator, X, n_draws, random_state)
            in_hole, reached = _latent_neighbourhoods(codes, draws, 0.95)
        axis_labels = ("component 1", "component 2")
        if codes.shape[1] > 2:
            axis_labels = (
                f"PC 1 of the {codes.shape[1]}-D codes",
                f"PC 2 of the {codes.shape[1]}-D codes",
            )
            projection = PCA(2).fit(codes)
            codes = projection.transform(codes)
            if draws is not None:
                draws = projection.transform(draws)
        display = cls(codes, y, axis_labels=axis_labels, estimator_name=_name(estimator),
                      draws=draws, in_hole=in_hole, reached=reached)
        return display.plot(ax=ax, cmap=cmap, task=task, **scatter_kwargs)


class ReconstructionDisplay:
    """Originals next to their reconstructions.

    Images are drawn as two rows of tiles (originals above, reconstructions
    below), one pixel apart, with colours clipped to the originals' range (or
    ``value_range``): a decoder's overshoot beyond the data's range shows as
    the data's extreme colour, not as a shifted background. Tabular data is
    drawn as a scatter of original against reconstructed value, one colour per
    feature, with the diagonal where a perfect model would sit.

    Parameters
    ----------
    originals : ndarray of shape (n_samples, n_features)
    reconstructions : ndarray of shape (n_samples, n_features)
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` for image data; None for tabular data.
    estimator_name : str or None, default=None

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    SampleDisplay : Generated data.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from skae.plotting import ReconstructionDisplay
    >>> X = load_digits().data / 16
    >>> display = ReconstructionDisplay.from_estimator(PCA(8).fit(X), X, image_shape=(8, 8))
    >>> display.ax_.get_title()
    'PCA: originals (top) and reconstructions (bottom)'
    """

    def __init__(self, originals, reconstructions, *, image_shape=None, estimator_name=None):
        self.originals = originals
        self.reconstructions = reconstructions
        self.image_shape = image_shape
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, cmap="gray_r", value_range=None):
        """Draw originals and reconstructions.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        cmap : str or Colormap, default="gray_r"
            Colour map of grey images.
        value_range : tuple of float or None, default=None
            ``(low, high)``: grey levels are clipped to it (default: the
            originals' range). RGB images are rescaled from it (default [0, 1])
            and clipped.

        Returns
        -------
        self : ReconstructionDisplay
        """
        figure, ax = _new_axes(ax, "ReconstructionDisplay.plot")
        originals = np.asarray(self.originals, dtype=np.float64)
        reconstructions = np.asarray(self.reconstructions, dtype=np.float64)
        if originals.shape != reconstructions.shape or originals.ndim != 2:
            raise ValueError(
                "originals and reconstructions must be 2-D arrays of one shape, got "
                f"{originals.shape} and {reconstructions.shape}."
            )
        shape = _resolve_image_shape(self.image_shape, originals.shape[1])
        prefix = f"{self.estimator_name}: " if self.estimator_name else ""
        if shape is not None:
            value_range = _check_value_range(value_range)
            # Grey originals set the range by default; RGB ones are taken to be in [0, 1].
            if value_range is None and shape[0] == 1 and originals.min() < originals.max():
                value_range = (originals.min(), originals.max())
            tiles = np.concatenate([originals, reconstructions])
            _show_mosaic(ax, _mosaic(tiles, shape, len(originals), value_range), cmap,
                         value_range)
            ax.set_title(f"{prefix}originals (top) and reconstructions (bottom)")
        else:
            low = min(originals.min(), reconstructions.min())
            high = max(originals.max(), reconstructions.max())
            for feature in range(originals.shape[1]):
                ax.scatter(originals[:, feature], reconstructions[:, feature], s=6, alpha=0.6,
                           label=f"feature {feature}")
            ax.plot([low, high], [low, high], color="black", linewidth=1)
            ax.set_xlabel("original value")
            ax.set_ylabel("reconstructed value")
            ax.set_title(f"{prefix}reconstruction per feature")
            if originals.shape[1] <= 10:
                ax.legend(fontsize="small")
        self.figure_, self.ax_ = figure, ax
        return self

    @classmethod
    def from_estimator(cls, estimator, X, *, image_shape=None, n_samples=8, ax=None,
                       cmap="gray_r", value_range=None):
        """Reconstruct rows of ``X`` with a fitted estimator and draw them.

        Parameters
        ----------
        estimator : fitted transformer with ``inverse_transform``
        X : array-like of shape (n_samples, n_features), or images
            Rows to reconstruct; image arrays of shape ``(n_samples, H, W)`` or
            ``(n_samples, C, H, W)`` too, for an estimator fitted on images.
        image_shape : tuple of int or None, default=None
            ``(H, W)`` or ``(C, H, W)``; defaults to the estimator's
            ``image_shape_`` if it has one, else the data is drawn as tabular.
        n_samples : int, default=8
            How many images to draw (tabular data uses up to 500 rows).
        ax : matplotlib Axes, default=None
        cmap : str or Colormap, default="gray_r"
        value_range : tuple of float or None, default=None
            ``(low, high)``: grey levels are clipped to it (default: [0, 1] for
            a ``reconstruction_loss="bce"`` model, else the drawn originals'
            range). RGB images are rescaled from it (default [0, 1]) and
            clipped.

        Returns
        -------
        display : ReconstructionDisplay
        """
        if not hasattr(estimator, "inverse_transform"):
            raise ValueError(f"{_name(estimator)} has no inverse_transform to reconstruct with.")
        n_features = estimator.n_features_in_
        shape = _resolve_image_shape(image_shape, n_features, estimator)
        n_rows = min(n_samples if shape is not None else 500, _num_samples(X))
        rows = _safe_indexing(X, np.arange(n_rows))
        reconstructions = estimator.inverse_transform(estimator.transform(rows))
        originals = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows)
        # Image arrays (n, H, W) or (n, C, H, W) are drawn from flat rows, as the estimator returns them.
        originals = originals.reshape(len(originals), -1)
        display = cls(originals, reconstructions, image_shape=shape,
                      estimator_name=_name(estimator))
        return display.plot(ax=ax, cmap=cmap,
                            value_range=_estimator_value_range(estimator, value_range))


class SampleDisplay:
    """A grid of generated samples (images) or a heat map of them (tabular).

    Images are tiles one pixel apart, with colours clipped to ``value_range``
    (give the training data's range, so that a decoder's overshoot beyond it
    shows as the data's extreme colour rather than shifting the background).

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n_features)
    image_shape : tuple of int or None, default=None
    estimator_name : str or None, default=None

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    LatentManifoldDisplay : Samples over a regular grid of codes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skae.plotting import SampleDisplay
    >>> display = SampleDisplay(np.random.rand(9, 64), image_shape=(8, 8)).plot()
    >>> display.ax_.images[0].get_array().shape
    (26, 26)
    """

    def __init__(self, samples, *, image_shape=None, estimator_name=None):
        self.samples = samples
        self.image_shape = image_shape
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, cmap="gray_r", value_range=None):
        """Draw the samples.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        cmap : str or Colormap, default="gray_r"
        value_range : tuple of float or None, default=None
            ``(low, high)``: grey levels (and the tabular heat map) are clipped
            to it (default: the samples' own range, nothing clipped). RGB
            images are rescaled from it (default [0, 1]) and clipped.

        Returns
        -------
        self : SampleDisplay
        """
        figure, ax = _new_axes(ax, "SampleDisplay.plot")
        samples = np.asarray(self.samples, dtype=np.float64)
        if samples.ndim != 2:
            raise ValueError(f"samples must be a 2-D array, got shape {samples.shape}.")
        shape = _resolve_image_shape(self.image_shape, samples.shape[1])
        prefix = f"{self.estimator_name}: " if self.estimator_name else ""
        value_range = _check_value_range(value_range)
        if shape is not None:
            n_cols = math.ceil(math.sqrt(len(samples)))
            _show_mosaic(ax, _mosaic(samples, shape, n_cols, value_range), cmap, value_range)
        else:
            low, high = value_range if value_range is not None else (None, None)
            image = ax.imshow(samples, aspect="auto", cmap="viridis", interpolation="nearest",
                              vmin=low, vmax=high)
            figure.colorbar(image, ax=ax, label="value")
            ax.set_xlabel("feature")
            ax.set_ylabel("sample")
        ax.set_title(f"{prefix}{len(samples)} generated samples")
        self.figure_, self.ax_ = figure, ax
        return self

    @classmethod
    def from_estimator(cls, estimator, n_samples=16, *, image_shape=None, random_state=None,
                       ax=None, cmap="gray_r", value_range=None):
        """Generate samples with a fitted skae estimator and draw them.

        Parameters
        ----------
        estimator : fitted AutoencoderTransformer or VAETransformer
            Anything with ``sample(n_samples, random_state=...)``.
        n_samples : int, default=16
        image_shape : tuple of int or None, default=None
        random_state : int, RandomState instance or None, default=None
        ax : matplotlib Axes, default=None
        cmap : str or Colormap, default="gray_r"
        value_range : tuple of float or None, default=None
            ``(low, high)``: grey levels (and the tabular heat map) are clipped
            to it (default: [0, 1] for a ``reconstruction_loss="bce"`` model,
            whose data lies there; else the samples' own range: give the
            training data's range). RGB images are rescaled from it (default
            [0, 1]) and clipped.

        Returns
        -------
        display : SampleDisplay
        """
        if not hasattr(estimator, "sample") or not hasattr(estimator, "transform"):
            raise ValueError(f"{_name(estimator)} cannot generate samples (it has no sample).")
        samples = estimator.sample(n_samples, random_state=random_state)
        shape = _resolve_image_shape(image_shape, samples.shape[1], estimator)
        return cls(samples, image_shape=shape, estimator_name=_name(estimator)).plot(
            ax=ax, cmap=cmap, value_range=_estimator_value_range(estimator, value_range)
        )


class LatentManifoldDisplay:
    """Images decoded from a regular grid over a 2-D code plane.

    Tiles are one pixel apart, with colours clipped to ``value_range`` (give
    the training data's range), and the axes are ticked at round code values.

    Parameters
    ----------
    images : ndarray of shape (n_per_side ** 2, n_features)
        Decoded images, row by row from the top-left (highest second
        coordinate first).
    grid_x, grid_y : ndarray of shape (n_per_side,)
        Code values along each axis (``grid_y`` increasing upwards).
    image_shape : tuple of int
    estimator_name : str or None, default=None

    Attributes
    ----------
    ax_ : matplotlib Axes
    figure_ : matplotlib Figure

    See Also
    --------
    LatentSpaceDisplay : Where the data's codes lie on that plane.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_digits
    >>> from skae import VAETransformer
    >>> from skae.plotting import LatentManifoldDisplay
    >>> X = load_digits().data / 16
    >>> vae = VAETransformer(n_components=2, image_shape=(8, 8), max_iter=3, random_state=0).fit(X)
    >>> display = LatentManifoldDisplay.from_estimator(vae, n_per_side=5)
    >>> display.images.shape
    (25, 64)
    """

    def __init__(self, images, grid_x, grid_y, image_shape, *, estimator_name=None):
        self.images = images
        self.grid_x = grid_x
        self.grid_y = grid_y
        self.image_shape = image_shape
        self.estimator_name = estimator_name

    def plot(self, ax=None, *, cmap="gray_r", value_range=None):
        """Draw the decoded grid.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
        cmap : str or Colormap, default="gray_r"
        value_range : tuple of float or None, default=None
            ``(low, high)``: grey levels are clipped to it (default: the
            images' own range, nothing clipped). RGB images are rescaled from
            it (default [0, 1]) and clipped.

        Returns
        -------
        self : LatentManifoldDisplay
        """
        figure, ax = _new_axes(ax, "LatentManifoldDisplay.plot")
        images = np.asarray(self.images, dtype=np.float64)
        n_side = len(self.grid_x)
        if images.ndim != 2 or len(images) != n_side * len(self.grid_y):
            raise ValueError(
                f"images must hold {n_side} x {len(self.grid_y)} decoded rows, got shape "
                f"{images.shape}."
            )
        shape = _resolve_image_shape(self.image_shape, images.shape[1])
        if shape is None:
            raise ValueError("LatentManifoldDisplay draws images: give image_shape.")
        value_range = _check_value_range(value_range)
        _show_mosaic(ax, _mosaic(images, shape, n_side, value_range, gap=1), cmap, value_range)
        height, width = shape[1:]
        ax.set_xticks(*_grid_ticks(self.grid_x, width, gap=1))
        # Rows run from the highest grid_y at the top: tick the reversed grid, negated.
        positions, labels = _grid_ticks(-np.asarray(self.grid_y)[::-1], height, gap=1)
        ax.set_yticks(positions, [_negated(label) for label in labels])
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
        if self.estimator_name:
            ax.set_title(f"{self.estimator_name}: decoded latent grid")
        self.figure_, self.ax_ = figure, ax
        return self

    @classmethod
    def from_estimator(cls, estimator, *, image_shape=None, n_per_side=15, ax=None,
                       cmap="gray_r", value_range=None):
        """Decode a grid over a fitted 2-D skae model's code plane.

        For a VAE the grid spans the prior's 5% to 95% quantiles on each axis;
        for an autoencoder, the training codes' mean plus or minus two standard
        deviations.

        Parameters
        ----------
        estimator : fitted AutoencoderTransformer or VAETransformer
            With ``n_components=2``.
        image_shape : tuple of int or None, default=None
        n_per_side : int, default=15
        ax : matplotlib Axes, default=None
        cmap : str or Colormap, default="gray_r"
        value_range : tuple of float or None, default=None
            ``(low, high)``: grey levels are clipped to it (default: [0, 1] for
            a ``reconstruction_loss="bce"`` model, whose data lies there; else
            the images' own range: give the training data's range). RGB images
            are rescaled from it (default [0, 1]) and clipped.

        Returns
        -------
        display : LatentManifoldDisplay
        """
        from scipy.stats import norm

        from .autoencoder import AutoencoderTransformer
        from .vae import VAETransformer

        if not isinstance(estimator, (AutoencoderTransformer, VAETransformer)):
            raise ValueError(
                f"LatentManifoldDisplay needs a skae estimator, got {_name(estimator)}."
            )
        check_is_fitted(estimator)
        if estimator.n_components_ != 2:
            raise ValueError(
                f"LatentManifoldDisplay needs n_components=2, but {_name(estimator)} has "
                f"n_components={estimator.n_components_}."
            )
        if n_per_side < 2:
            raise ValueError(f"n_per_side must be at least 2, got {n_per_side}.")
        shape = _resolve_image_shape(image_shape, estimator.n_features_in_, estimator)
        if shape is None:
            raise ValueError("LatentManifoldDisplay draws images: give image_shape.")
        if isinstance(estimator, VAETransformer):
            axis = norm.ppf(np.linspace(0.05, 0.95, n_per_side))
            grid_x = grid_y = axis
        else:
            spread = 2 * np.sqrt(np.diag(estimator.latent_covariance_))
            grid_x, grid_y = (
                np.linspace(m - s, m + s, n_per_side)
                for m, s in zip(estimator.latent_mean_, spread)
            )
        codes = np.array([(x, y) for y in grid_y[::-1] for x in grid_x])
        images = estimator.inverse_transform(codes)
        display = cls(images, grid_x, grid_y, shape, estimator_name=_name(estimator))
        return display.plot(ax=ax, cmap=cmap,
                            value_range=_estimator_value_range(estimator, value_range))


class LossCurveDisplay:
    """Training loss per epoch, with the validation score when there is one.

    Parameters
    ----------
    loss_curve : list of float
    validation_scores : list of float or None, default=None
        Drawn on a second y axis (higher is better).
    estimator_name : str or None, default=None

    Attributes
    ----------
    ax_ : matplotlib Axes
        The training-loss axes.
    ax_validation_ : matplotlib Axes or None
        The validation-score axes (a twin of ``ax_``).
    figure_ : matplotlib Figure

    See Also
    --------
    sklearn.neural_network.MLPRegressor : Where ``loss_curve_`` comes from.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn.datasets import load_iris
    >>> from skae import AutoencoderTransformer
    >>> from skae.plotting import LossCurveDisplay
    >>> ae = AutoencoderTransformer(max_iter=4, random_state=0).fit(load_iris().data)
    >>> display = LossCurveDisplay.from_estimator(ae)
    >>> len(display.ax_.lines[0].get_xdata())
    4
    """

    def __init__(self, loss_curve, validation_scores=None, *, estimator_name=None):
        self.loss_curve = loss_curve
        self.validation_scores = validation_scores
        self.estimator_name = estimator_name

    def plot(self, ax=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes, default=None

        Returns
        -------
        self : LossCurveDisplay
        """
        figure, ax = _new_axes(ax, "LossCurveDisplay.plot")
        if len(self.loss_curve) == 0:
            raise ValueError("loss_curve is empty: there is nothing to draw.")
        epochs = np.arange(1, len(self.loss_curve) + 1)
        ax.plot(epochs, self.loss_curve, color="tab:blue", label="training loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss", color="tab:blue")
        self.ax_validation_ = None
        if self.validation_scores:
            self.ax_validation_ = ax.twinx()
            self.ax_validation_.plot(epochs[: len(self.validation_scores)],
                                     self.validation_scores, color="tab:orange")
            self.ax_validation_.set_ylabel("validation score", color="tab:orange")
        if self.estimator_name:
            ax.set_title(f"{self.estimator_name}: training")
        self.figure_, self.ax_ = figure, ax
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Draw a fitted skae estimator's ``loss_curve_`` and ``validation_scores_``.

        Parameters
        ----------
        estimator : fitted AutoencoderTransformer or VAETransformer
        ax : matplotlib Axes, default=None

        Returns
        -------
        display : LossCurveDisplay
        """
        if not hasattr(estimator, "loss_curve_"):
            check_is_fitted(estimator)
            raise ValueError(f"{_name(estimator)} has no loss_curve_ to draw.")
        display = cls(estimator.loss_curve_, getattr(estimator, "validation_scores_", None),
                      estimator_name=_name(estimator))
        return display.plot(ax=ax)
