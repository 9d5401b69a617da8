"""Autoencoder vs variational autoencoder on the digits images, with 2-D codes.

Both models get the same convolutional encoder and decoder
(``architecture="conv"``, 8x8 images, binary cross-entropy) and the same
training images; only the objective differs. The script writes three PNG files:

``latent_spaces.png``
    The test images' codes, coloured by digit. The autoencoder's loss is
    reconstruction error only, so nothing stops its code space from being
    lopsided, stretched along a few directions, with empty gaps between the
    digit clusters. The VAE's KL term pulls every posterior towards N(0, I):
    its codes sit in a compact blob around the origin (the dashed circles
    mark 1 and 2 prior standard deviations), with the digits as neighbouring
    regions of it.

``reconstructions.png``
    Test images (top row) and their reconstructions by the autoencoder
    (middle) and the VAE (bottom). Two numbers per image are few: both blur,
    and the VAE, whose codes are noisy by design, usually a little more.

``samples.png``
    Random images. The VAE decodes draws from its N(0, I) prior, which is
    where its codes are, so most samples look like digits. The autoencoder
    has no prior: ``sample`` decodes draws from a Gaussian fitted to its
    lopsided codes; some of them land in the gaps between clusters, where the
    decoder was never trained, and come out as blends of several digits.

Run it from the repository root (under a minute on a CPU)::

    python examples/plot_ae_vs_vae_digits.py [OUTPUT_DIR]

The PNG files go into OUTPUT_DIR, a fresh temporary folder by default.
"""

import argparse
import tempfile
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skae import AutoencoderTransformer, VAETransformer  # noqa: E402


def fit_models(X_train):
    settings = dict(
        architecture="conv",
        image_shape=(8, 8),
        n_components=2,
        reconstruction_loss="bce",
        max_iter=100,
        random_state=0,
    )
    models = {
        "Autoencoder": AutoencoderTransformer(**settings),
        "VAE": VAETransformer(**settings),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for model in models.values():
            model.fit(X_train)
    return models


def plot_latent_spaces(models, X_test, y_test, path):
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, (name, model) in zip(axes, models.items()):
        codes = model.transform(X_test)
        points = ax.scatter(codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=8, vmin=-0.5,
                            vmax=9.5)
        if name == "VAE":
            for radius in (1, 2):
                ax.add_patch(plt.Circle((0, 0), radius, fill=False, linestyle="--", color="0.4"))
            ax.set_aspect("equal")
        ax.set_title(f"{name} codes of the test digits")
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    fig.colorbar(points, ax=axes, ticks=range(10), label="digit")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def image_rows(rows, titles, path, suptitle):
    n_rows, n_columns = len(rows), len(rows[0])
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(n_columns * 0.9, n_rows * 1.0 + 0.6))
    axes = np.atleast_2d(axes)
    for r, (images, title) in enumerate(zip(rows, titles)):
        for c, image in enumerate(images):
            axes[r, c].imshow(image, cmap="gray_r", vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center")
    fig.suptitle(suptitle)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", nargs="?", help="where to write the PNGs (default: a temp dir)")
    args = parser.parse_args()
    out = Path(args.output_dir or tempfile.mkdtemp(prefix="skae_digits_"))
    out.mkdir(parents=True, exist_ok=True)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, _, y_test = train_test_split(
        X / 16.0, y, test_size=0.3, stratify=y, random_state=0
    )
    models = fit_models(X_train)

    for name, model in models.items():
        codes = model.transform(X_test)
        mse = np.mean((model.inverse_transform(codes) - X_test) ** 2)
        print(
            f"{name:11s} test MSE {mse:.4f}; codes: mean {np.round(codes.mean(axis=0), 2)}, "
            f"std {np.round(codes.std(axis=0), 2)}"
        )

    plot_latent_spaces(models, X_test, y_test, out / "latent_spaces.png")
    shown = X_test[:12]
    image_rows(
        [shown.reshape(-1, 8, 8)]
        + [m.inverse_transform(m.transform(shown)).reshape(-1, *m.image_shape_)
           for m in models.values()],
        ["test", *models],
        out / "reconstructions.png",
        "Test digits and their reconstructions from 2 numbers",
    )
    image_rows(
        [m.sample(12, random_state=1).reshape(-1, *m.image_shape_) for m in models.values()],
        list(models),
        out / "samples.png",
        "Random samples: AE from a Gaussian fitted to its codes, VAE from its N(0, I) prior",
    )
    print(f"Wrote latent_spaces.png, reconstructions.png and samples.png to {out}")
    print(__doc__.split("``latent_spaces.png``")[1].split("Run it")[0].rstrip())


if __name__ == "__main__":
    main()
