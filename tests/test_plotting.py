"""Every Display draws on a real (Agg) figure, accepts ax=, and refuses what it cannot draw."""

import numpy as np
import pytest
import scipy.sparse as sp

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from skae import AutoencoderTransformer, VAETransformer  # noqa: E402
from skae.plotting import (  # noqa: E402
    LatentManifoldDisplay,
    LatentSpaceDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
    SampleDisplay,
)

from .helpers import tiny  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    return {
        "pca": PCA(2).fit(X),
        "ae": tiny(AutoencoderTransformer, max_iter=3).fit(X),
        "vae": tiny(VAETransformer, max_iter=3, early_stopping=True).fit(X),
        "vae3": tiny(VAETransformer, n_components=3, max_iter=2).fit(X),
    }


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", ["pca", "ae", "vae"])
def test_latent_space_display(name, fitted, digits):
    X, y = digits
    _, ax = plt.subplots()
    display = LatentSpaceDisplay.from_estimator(fitted[name], X, y, ax=ax)
    assert display.ax_ is ax and display.figure_ is ax.figure
    assert np.allclose(display.scatter_.get_offsets(), fitted[name].transform(X))
    assert ax.get_xlabel() == "component 1"


def test_latent_space_projects_wider_codes_and_refuses_one(fitted, digits):
    X, y = digits
    display = LatentSpaceDisplay.from_estimator(fitted["vae3"], X, y)
    assert "PC 1 of the 3-D codes" in display.ax_.get_xlabel()
    with pytest.raises(ValueError, match="at least 2"):
        LatentSpaceDisplay.from_estimator(PCA(1).fit(X), X)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\)"):
        LatentSpaceDisplay(np.zeros((4, 3))).plot()


def test_reconstruction_display_images_and_tabular(fitted, digits):
    X, _ = digits
    display = ReconstructionDisplay.from_estimator(fitted["ae"], X, image_shape=(8, 8), n_samples=5)
    image = display.ax_.images[0].get_array()
    assert image.shape == (2 * 8 + 1, 5 * 9 - 1)
    assert "originals (top)" in display.ax_.get_title()
    tabular = ReconstructionDisplay.from_estimator(fitted["vae"], X)
    assert len(tabular.ax_.collections) == X.shape[1]
    with pytest.raises(ValueError, match="does not fit data with 64 features"):
        ReconstructionDisplay.from_estimator(fitted["ae"], X, image_shape=(7, 7))
    with pytest.raises(ValueError, match="channels"):
        ReconstructionDisplay(X[:2], X[:2], image_shape=(4, 4, 4)).plot()


def test_reconstruction_display_takes_image_arrays_and_sparse_rows(digits):
    X, _ = digits
    images = X.reshape(-1, 8, 8)
    conv = tiny(AutoencoderTransformer, architecture="conv", conv_channels=(4,), max_iter=1).fit(images)
    display = ReconstructionDisplay.from_estimator(conv, images, n_samples=4)
    assert display.originals.shape == display.reconstructions.shape == (4, 64)
    np.testing.assert_array_equal(display.originals, X[:4])

    mlp = tiny(AutoencoderTransformer, max_iter=1).fit(X)
    sparse = ReconstructionDisplay.from_estimator(mlp, sp.csr_matrix(X), image_shape=(8, 8), n_samples=3)
    np.testing.assert_array_equal(sparse.originals, X[:3])


def test_sample_display(fitted):
    display = SampleDisplay.from_estimator(fitted["vae"], 9, image_shape=(1, 8, 8), random_state=0)
    assert display.ax_.images[0].get_array().shape == (26, 26)
    rgb = SampleDisplay(np.random.rand(4, 3 * 4 * 5), image_shape=(3, 4, 5)).plot()
    assert rgb.ax_.images[0].get_array().shape == (9, 11, 3)
    heat = SampleDisplay.from_estimator(fitted["ae"], 5, random_state=0)
    assert heat.ax_.images[0].get_array().shape == (5, 64)
    with pytest.raises(ValueError, match="cannot generate samples"):
        SampleDisplay.from_estimator(fitted["pca"])


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_latent_manifold_display(name, fitted):
    _, ax = plt.subplots()
    display = LatentManifoldDisplay.from_estimator(fitted[name], image_shape=(8, 8), n_per_side=4,
                                                   ax=ax)
    assert display.ax_ is ax
    assert display.ax_.images[0].get_array().shape == (4 * 9 - 1, 4 * 9 - 1)  # 1-pixel gaps
    assert len(display.grid_x) == 4


def test_latent_manifold_refusals(fitted):
    with pytest.raises(ValueError, match="n_components=2"):
        LatentManifoldDisplay.from_estimator(fitted["vae3"], image_shape=(8, 8))
    with pytest.raises(ValueError, match="image_shape"):
        LatentManifoldDisplay.from_estimator(fitted["vae"])
    with pytest.raises(ValueError, match="skae estimator"):
        LatentManifoldDisplay.from_estimator(fitted["pca"], image_shape=(8, 8))


def test_loss_curve_display(fitted):
    display = LossCurveDisplay.from_estimator(fitted["vae"])
    assert len(display.ax_.lines[0].get_xdata()) == fitted["vae"].n_iter_
    assert display.ax_validation_ is not None
    plain = LossCurveDisplay.from_estimator(fitted["ae"])
    assert plain.ax_validation_ is None
    with pytest.raises(ValueError, match="no loss_curve_"):
        LossCurveDisplay.from_estimator(fitted["pca"])
    with pytest.raises(ValueError, match="empty"):
        LossCurveDisplay([]).plot()


def _labels(axis):
    return [tick.get_text() for tick in axis.get_ticklabels()]


def test_latent_space_colours_classes_with_a_legend_and_targets_with_a_colour_bar(fitted, digits):
    X, y = digits
    binary = LatentSpaceDisplay.from_estimator(fitted["ae"], X, y % 2)
    assert [text.get_text() for text in binary.ax_.get_legend().get_texts()] == ["0", "1"]
    assert len(binary.figure_.axes) == 1  # no colour bar
    assert len({tuple(c) for c in binary.scatter_.get_facecolors()}) == 2
    named = LatentSpaceDisplay.from_estimator(fitted["ae"], X, np.where(y < 5, "low", "high"))
    assert [text.get_text() for text in named.ax_.get_legend().get_texts()] == ["high", "low"]
    continuous = LatentSpaceDisplay.from_estimator(fitted["ae"], X, X.mean(axis=1))
    assert continuous.ax_.get_legend() is None
    assert len(continuous.figure_.axes) == 2  # the colour bar
    assert continuous.scatter_.get_cmap().name == "viridis"
    with pytest.raises(ValueError, match="one per code"):
        LatentSpaceDisplay(np.zeros((4, 2)), labels=[0, 1]).plot()


def test_latent_space_reads_a_target_as_the_comparison_does(fitted, digits):
    from skae.compare import resolve_task

    X, _ = digits
    rng = np.random.RandomState(0)
    many_classes = rng.randint(0, 30, size=len(X)).astype(float)  # 30 values in 1797 rows
    few_rows = rng.randint(0, 15, size=100).astype(float)  # 15 values in 100 rows
    assert resolve_task(many_classes) == "classification" and resolve_task(few_rows) == "regression"
    classes = LatentSpaceDisplay.from_estimator(fitted["ae"], X, many_classes)
    assert len(classes.figure_.axes) == 1  # one colour per class, no colour bar...
    assert classes.ax_.get_legend() is None  # ...and no 30-entry legend
    quantity = LatentSpaceDisplay.from_estimator(fitted["ae"], X[:100], few_rows)
    assert len(quantity.figure_.axes) == 2
    told = LatentSpaceDisplay.from_estimator(fitted["ae"], X[:100], few_rows, task="classification")
    assert len(told.figure_.axes) == 1 and len(told.ax_.get_legend().get_texts()) == len(
        np.unique(few_rows))
    with pytest.raises(ValueError, match="task must be one of"):
        LatentSpaceDisplay.from_estimator(fitted["ae"], X[:100], few_rows, task="bogus")
    with_gaps = np.where(np.arange(100) % 7, X[:100].mean(axis=1), np.nan)
    gaps = LatentSpaceDisplay.from_estimator(fitted["ae"], X[:100], with_gaps)
    assert len(gaps.figure_.axes) == 2  # a colour bar, as before


def test_latent_space_shows_draws_in_holes_on_request(fitted, digits):
    from skae.metrics import latent_coverage

    X, y = digits
    display = LatentSpaceDisplay.from_estimator(fitted["ae"], X, y, holes=True, random_state=0)
    shares = latent_coverage(fitted["ae"], X, random_state=0)
    assert (display.holes_, display.reached_) == (shares["holes"], shares["reached"])
    assert display.draws_scatter_.get_offsets().shape == (len(X), 2)
    assert f"{shares['holes']:.0%} of draws in holes" in display.ax_.get_title()
    legend = [text.get_text() for text in display.ax_.get_legend().get_texts()]
    assert legend[-2:] == ["draw near a code", "draw in a hole"]
    wide = LatentSpaceDisplay.from_estimator(fitted["vae3"], X, holes=True, n_draws=50,
                                             random_state=0)
    assert wide.draws_scatter_.get_offsets().shape == (50, 2)  # projected like the codes
    assert LatentSpaceDisplay.from_estimator(fitted["ae"], X).draws_scatter_ is None
    with pytest.raises(TypeError, match="skae AutoencoderTransformer or VAETransformer"):
        LatentSpaceDisplay.from_estimator(fitted["pca"], X, holes=True)


def test_image_colours_are_clipped_to_the_value_range(fitted, digits):
    X, _ = digits
    overshoot = np.clip(X[:4], 0, 1) * 1.6 - 0.3  # -0.3 to 1.3, as an mse decoder may give
    display = SampleDisplay(overshoot, image_shape=(8, 8)).plot(value_range=(0, 1))
    assert display.ax_.images[0].get_clim() == (0, 1)
    mosaic = display.ax_.images[0].get_array()
    assert mosaic.shape == (2 * 9 - 1, 2 * 9 - 1)
    assert np.ma.getmaskarray(mosaic)[8].all()  # a blank gap between the rows of tiles
    # Reconstructions are clipped to the originals' range; bce models to [0, 1].
    reconstruction = ReconstructionDisplay(X[:3], overshoot[:3], image_shape=(8, 8)).plot()
    assert reconstruction.ax_.images[0].get_clim() == (X[:3].min(), X[:3].max())
    bce = tiny(VAETransformer, reconstruction_loss="bce", max_iter=2).fit(X)
    assert SampleDisplay.from_estimator(bce, 4, image_shape=(8, 8)).ax_.images[0].get_clim() == (0, 1)
    own = SampleDisplay.from_estimator(fitted["ae"], 4, image_shape=(8, 8), random_state=0)
    samples = fitted["ae"].sample(4, random_state=0)
    assert own.ax_.images[0].get_clim() == pytest.approx((samples.min(), samples.max()))
    rgb = SampleDisplay(np.full((1, 3 * 2 * 2), 5.0), image_shape=(3, 2, 2)).plot(value_range=(0, 10))
    assert np.allclose(rgb.ax_.images[0].get_array(), 0.5)  # 5 on (0, 10) is half way
    with pytest.raises(ValueError, match="value_range"):
        SampleDisplay(X[:4], image_shape=(8, 8)).plot(value_range=(1, 0))


def test_latent_manifold_ticks_are_round_code_values(fitted):
    display = LatentManifoldDisplay.from_estimator(fitted["ae"], image_shape=(8, 8), n_per_side=7)
    for axis, grid in ((display.ax_.xaxis, display.grid_x), (display.ax_.yaxis, display.grid_y)):
        labels = _labels(axis)
        values = [float(label) for label in labels]
        assert 2 <= len(labels) <= 6
        assert all("e" not in label and label != "-0" for label in labels)
        assert min(values) >= grid.min() - 1e-9 and max(values) <= grid.max() + 1e-9
        steps = np.diff(sorted(values))
        assert np.allclose(steps, steps[0])
    # A grid whose middle value is -1.4e-16 is ticked "0", and positions follow the values.
    images = np.zeros((9, 64))
    grid = np.linspace(-1, 1, 3) - 1.4e-16
    manual = LatentManifoldDisplay(images, grid, grid, (8, 8)).plot()
    assert "0" in _labels(manual.ax_.xaxis) or "0.0" in _labels(manual.ax_.xaxis)
    x_ticks = dict(zip(_labels(manual.ax_.xaxis), manual.ax_.get_xticks()))
    assert x_ticks[min(x_ticks, key=float)] == pytest.approx(3.5)  # centre of the first tile
    y_ticks = dict(zip(map(float, _labels(manual.ax_.yaxis)), manual.ax_.get_yticks()))
    assert y_ticks[max(y_ticks)] < y_ticks[min(y_ticks)]  # the highest value at the top


def test_loss_curve_with_validation_keeps_both_axis_labels_inside_the_figure(fitted):
    display = LossCurveDisplay.from_estimator(fitted["vae"])
    figure = display.figure_
    figure.canvas.draw()
    inside = figure.bbox
    for label in (display.ax_.yaxis.label, display.ax_validation_.yaxis.label):
        extent = label.get_window_extent()
        assert inside.x0 <= extent.x0 and extent.x1 <= inside.x1, label.get_text()
