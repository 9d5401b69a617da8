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
    assert display.ax_.images[0].get_array().shape == (32, 32)
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
