"""The ``skae`` command line: ``skae compare`` (also ``python -m skae compare``).

Arguments are checked with the standard library alone, before NumPy, pandas,
scikit-learn or torch load, so a mistake is answered at once.
"""

import argparse
import csv
import os
import re
import sys
import tempfile
import warnings
from typing import NamedTuple

DATASETS = ("digits", "wine", "breast_cancer", "iris", "diabetes")
TASKS = ("auto", "classification", "regression")

# The names resolve_device accepts; whether the device exists is checked once torch is loaded.
_DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


class UsageError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class Data(NamedTuple):
    """Features scaled for the reducers, the target (or None), and the image shape (or None)."""

    X: object
    y: object
    image_shape: tuple
    source: str


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
    compare.add_argument("--task", choices=TASKS, default="auto",
                         help="what the target is (default: decided from its values, and "
                              "printed)")
    compare.add_argument("--n-components", type=int, nargs="+", default=[2, 8, 16],
                         help="latent sizes to try (default: 2 8 16); sizes not smaller than "
                              "the number of features are skipped")
    compare.add_argument("--max-iter", type=int, default=None,
                         help="epochs for the autoencoders (default: the estimators' own)")
    compare.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 or mps")
    compare.add_argument("--random-state", type=int, default=0)
    compare.add_argument("--out", default=None,
                         help="folder for comparison.csv and the PNGs (default: a new temp dir)")
    return parser


def check_arguments(args):
    """Raise UsageError for any argument that cannot work; the standard library only."""
    if args.csv is not None and args.dataset is not None:
        raise UsageError("give either a CSV file or --dataset, not both")
    if args.csv is None and args.target is not None:
        raise UsageError("--target names a CSV column; it needs a CSV file")
    if args.task != "auto" and args.csv is not None and args.target is None:
        raise UsageError(f"--task {args.task} needs a target: add --target COLUMN")
    if any(k < 1 for k in args.n_components):
        raise UsageError("--n-components must be positive integers")
    if args.max_iter is not None and args.max_iter < 1:
        raise UsageError("--max-iter must be a positive integer")
    if not _DEVICE_NAME.fullmatch(args.device):
        raise UsageError(
            f"device={args.device!r} is not a device name; use 'auto', 'cpu', 'cuda', "
            "'cuda:<index>' or 'mps'"
        )
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} is a file, not a folder")
    if args.csv is not None:
        _check_csv_header(args.csv, args.target)


def _check_csv_header(path, target):
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            header = next(csv.reader(file), None)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"cannot read {path} as CSV: {error}") from error
    if not header:
        raise UsageError(f"{path} is empty; it needs a header row and data rows")
    if target is not None and target not in header:
        raise UsageError(
            f"target column {target!r} is not in {path}; columns: {', '.join(header)}"
        )


def load_dataset(name):
    """One of scikit-learn's data sets as ``skae compare`` uses it.

    Digits are scaled to [0, 1] (pixels / 16) and keep their 8x8 image shape;
    the other sets are standardised.
    """
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    if name == "digits":
        return Data(X / 16.0, y, (8, 8), name)
    return Data(StandardScaler().fit_transform(X), y, None, name)


def load_csv(path, target):
    """A CSV file's numeric columns, standardised, and its target column."""
    import numpy as np
    import pandas as pd
    from sklearn.preprocessing import StandardScaler

    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise UsageError(f"cannot read {path} as CSV: {error}") from error
    y = None
    if target is not None:
        y = frame.pop(target).to_numpy()
        if pd.isna(y).any():
            raise UsageError(f"target column {target!r} of {path} has missing values; drop "
                             "those rows first")
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
    return Data(StandardScaler().fit_transform(frame.to_numpy(dtype=np.float64)), y, None, path)


def _describe_target(y, task):
    import numpy as np

    if task == "classification":
        return (f"classification ({len(np.unique(y))} classes): accuracy of a logistic "
                "regression on the codes")
    return (f"regression ({len(np.unique(y))} distinct values): R^2 of a ridge regression "
            "on the codes")


def _print_table(table):
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.max_colwidth", 40):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"), flush=True)


def _out_folder(out):
    folder = out or tempfile.mkdtemp(prefix="skae-compare-")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the output folder {folder}: {error}") from error
    return folder


def compare(args):
    """Run ``skae compare``; return the process exit code."""
    check_arguments(args)
    out = _out_folder(args.out)
    print(f"skae compare: writing to {out}", flush=True)
    data = load_csv(args.csv, args.target) if args.csv else load_dataset(args.dataset or "digits")

    # Only now torch and the estimators load.
    from tqdm.auto import tqdm

    from ._cli_figures import count_figures, write_figures
    from .compare import compare_reducers, resolve_task, sizes_to_compare
    from .engine.device import resolve_device

    try:
        resolve_device(args.device)
        task = resolve_task(data.y, args.task)
    except ValueError as error:
        raise UsageError(str(error)) from error
    n_rows, n_features = data.X.shape
    print(f"data: {data.source}, {n_rows} rows x {n_features} features", flush=True)
    if task is not None:
        chosen = ("decided from its values; --task classification|regression to override"
                  if args.task == "auto" else "as --task says")
        print(f"target: {_describe_target(data.y, task)} ({chosen})")
    sizes, skipped = sizes_to_compare(args.n_components, n_features)
    if skipped:
        print(f"note: n_components {' '.join(map(str, skipped))} skipped for every reducer: "
              f"not smaller than the {n_features} features")
    if not sizes:
        raise UsageError(f"no --n-components smaller than the {n_features} features")

    params = {"device": args.device}
    if args.max_iter is not None:
        params["max_iter"] = args.max_iter
    n_fits = 3 * len(sizes)  # PCA, the autoencoder and the VAE at each size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        with tqdm(total=n_fits + count_figures(sizes, data.image_shape), desc="skae compare",
                  unit="step") as bar:
            table = compare_reducers(data.X, data.y, n_components=sizes, task=task,
                                     random_state=args.random_state, progress=bar,
                                     return_estimator=True, **params)
            csv_path = os.path.join(out, "comparison.csv")
            table.drop(columns="estimator").to_csv(csv_path, index=False)
            figures = []
            if not table.empty:
                figures = write_figures(table, table.attrs["held_out"], data.image_shape,
                                        args.random_state,
                                        out, progress=bar)
    for message in dict.fromkeys(str(w.message).splitlines()[0] for w in caught):
        print(f"note: {message}")
    if table.empty:
        raise UsageError("no model could be fitted; the notes above say why")
    _print_table(table.drop(columns="estimator"))
    for flag, meaning in _FLAGS.items():
        if table["note"].str.contains(flag).any():
            print(f"note: '{flag}': {meaning}")
    for path in [csv_path, *figures]:
        print(f"wrote {path}")
    return 0


# What the flags of the table's note column mean (keys: skae.compare's flags).
_FLAGS = {
    "no better than the mean": "the held-out reconstruction error is not clearly below that "
                               "of predicting the training mean for every row",
    "stopped at max_iter": "training had not converged; try a larger --max-iter",
    "diverged": "the training loss became NaN or infinite; the last finite epoch was kept",
}


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
    except KeyboardInterrupt:
        print(f"skae {args.command}: interrupted", file=sys.stderr)
        return 130  # the shell's code for a command stopped by SIGINT


if __name__ == "__main__":
    sys.exit(main())
