"""The ``skae`` command line: ``skae compare`` (also ``python -m skae compare``)."""

import argparse
import os
import sys
import tempfile
import warnings

import numpy as np

DATASETS = ("digits", "wine", "breast_cancer", "iris")


class UsageError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def _parser():
    parser = argparse.ArgumentParser(prog="skae", description="Autoencoders for scikit-learn.")
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser(
        "compare",
        help="compare PCA, an autoencoder and a VAE on a data set",
        description=(
            "Fit PCA, AutoencoderTransformer and VAETransformer at several latent sizes, "
            "print a table of held-out scores, and write it as CSV with pictures."
        ),
    )
    compare.add_argument("csv", nargs="?", help="a CSV file of numeric columns (header row)")
    compare.add_argument("--dataset", choices=DATASETS, default=None,
                         help="a scikit-learn data set (default: digits when no CSV is given)")
    compare.add_argument("--target", help="CSV column holding labels or a target to predict")
    compare.add_argument("--n-components", type=int, nargs="+", default=[2, 8, 16],
                         help="latent sizes to try (default: 2 8 16)")
    compare.add_argument("--max-iter", type=int, default=None,
                         help="epochs for the autoencoders (default: the estimators' own)")
    compare.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    compare.add_argument("--random-state", type=int, default=0)
    compare.add_argument("--out", default=None,
                         help="folder for comparison.csv and the PNGs (default: a new temp dir)")
    return parser


def _load_dataset(name):
    """Features scaled for the reducers, target, and image shape (None for tabular)."""
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if name == "digits":
        return X / 16.0, y, (8, 8)
    return StandardScaler().fit_transform(X), y, None


def _load_csv(path, target):
    import pandas as pd
    from sklearn.preprocessing import StandardScaler

    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise UsageError(f"cannot read {path} as CSV: {error}") from error
    y = None
    if target is not None:
        if target not in frame.columns:
            raise UsageError(
                f"target column {target!r} is not in {path}; columns: {', '.join(frame.columns)}"
            )
        y = frame.pop(target).to_numpy()
    text = [column for column in frame.columns if not pd.api.types.is_numeric_dtype(frame[column])]
    if text:
        raise UsageError(
            f"column(s) {', '.join(map(repr, text))} of {path} are not numeric; encode or "
            "drop them first"
        )
    if frame.shape[1] == 0 or len(frame) < 4:
        raise UsageError(f"{path} needs at least 4 rows and one numeric feature column")
    if frame.isna().any().any():
        raise UsageError(f"{path} has missing values; impute or drop them first")
    return StandardScaler().fit_transform(frame.to_numpy(dtype=np.float64)), y, None


def _write_pictures(X, y, image_shape, params, n_components, random_state, out):
    """Latent scatters side by side, loss curves, and for images reconstructions and samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    from .autoencoder import AutoencoderTransformer
    from .plotting import (
        LatentSpaceDisplay,
        LossCurveDisplay,
        ReconstructionDisplay,
        SampleDisplay,
    )
    from .vae import VAETransformer

    k = 2 if 2 in n_components else min(n_components)
    k_pca = min(k, X.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = [
            PCA(k_pca).fit(X),
            AutoencoderTransformer(k, **params).fit(X),
            VAETransformer(k, **params).fit(X),
        ]
    written = []

    def save(figure, name):
        path = os.path.join(out, name)
        figure.tight_layout()
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)

    if k >= 2:
        figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        for model, ax in zip(models, axes):
            LatentSpaceDisplay.from_estimator(model, X, y, ax=ax)
        save(figure, "latent_spaces.png")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for model, ax in zip(models[1:], axes):
        LossCurveDisplay.from_estimator(model, ax=ax)
    save(figure, "loss_curves.png")
    if image_shape is not None:
        figure, axes = plt.subplots(3, 1, figsize=(10, 6))
        for model, ax in zip(models, axes):
            ReconstructionDisplay.from_estimator(model, X, image_shape=image_shape, n_samples=12,
                                                 ax=ax)
        save(figure, "reconstructions.png")
        figure, axes = plt.subplots(1, 2, figsize=(10, 5))
        for model, ax in zip(models[1:], axes):
            SampleDisplay.from_estimator(model, 36, image_shape=image_shape,
                                         random_state=random_state, ax=ax)
        save(figure, "samples.png")
    return written


def compare(args):
    """Run ``skae compare``; return the process exit code."""
    import pandas as pd

    from .compare import compare_reducers

    if args.csv is not None and args.dataset is not None:
        raise UsageError("give either a CSV file or --dataset, not both")
    if args.csv is None and args.target is not None:
        raise UsageError("--target names a CSV column; it needs a CSV file")
    if any(k < 1 for k in args.n_components):
        raise UsageError("--n-components must be positive integers")
    if args.max_iter is not None and args.max_iter < 1:
        raise UsageError("--max-iter must be a positive integer")
    if args.csv is not None:
        X, y, image_shape = _load_csv(args.csv, args.target)
        source = args.csv
    else:
        source = args.dataset or "digits"
        X, y, image_shape = _load_dataset(source)
    params = {"device": args.device, "random_state": args.random_state}
    if args.max_iter is not None:
        params["max_iter"] = args.max_iter
    from .engine.device import resolve_device

    try:
        resolve_device(args.device)
    except ValueError as error:
        raise UsageError(str(error)) from error

    out = args.out or tempfile.mkdtemp(prefix="skae-compare-")
    os.makedirs(out, exist_ok=True)
    print(f"skae compare: {source}, {X.shape[0]} rows x {X.shape[1]} features", flush=True)
    table = compare_reducers(X, y, n_components=args.n_components, progress=True, **params)
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    csv_path = os.path.join(out, "comparison.csv")
    table.to_csv(csv_path, index=False)
    pictures = _write_pictures(X, y, image_shape, params, args.n_components,
                               args.random_state, out)
    print(f"wrote {csv_path}")
    for path in pictures:
        print(f"wrote {path}")
    return 0


def main(argv=None):
    """Entry point of the ``skae`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return compare(args)
    except UsageError as error:
        print(f"skae {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"skae {args.command}: error: {error}; install the extra: pip install "
              "'skae[viz]'", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
