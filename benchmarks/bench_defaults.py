"""Default training settings on the five bundled data sets: epochs, warnings, held-out error.

Run:
    python benchmarks/bench_defaults.py                # default fits: one table, a few minutes
    python benchmarks/bench_defaults.py --seeds 0 1 --compare before early_stopping
    python benchmarks/bench_defaults.py --sweep        # where candidate stopping rules stop, an hour

Data: scikit-learn's digits (pixels / 16), wine, breast_cancer, iris and
diabetes (standardised), each split 70/30 (stratified for the classification
sets, random_state=0), as ``skae compare`` prepares them. Every latent size of
2, 8 and 16 smaller than the number of features, for both estimators,
``random_state`` from ``--seeds`` (default 0), on the CPU (``--device``).

The default mode fits each model with the estimators' default settings and
prints the epochs run, whether the fit stopped at ``max_iter`` (a
ConvergenceWarning), the fit time and the held-out reconstruction MSE, next to
PCA's at the same size and the mean's (predicting the training mean for every
row). ``--compare`` adds fits with other settings side by side: ``before``,
the defaults before issue 17 (``max_iter=500, tol=1e-4,
n_iter_no_change=10``), and ``early_stopping`` (the defaults with
``early_stopping=True``), with their MSE over the defaults'. The exit status
is 1 when a default fit stopped at ``max_iter``.

``--sweep`` trains each model one epoch at a time (``partial_fit``, up to
``--epochs``), recording the training loss and the held-out MSE after every
epoch. It then replays candidate stopping rules (``tol``,
``n_iter_no_change``, ``max_iter``) on those curves, as the training loop
applies them, and prints, per rule, how many models would stop at
``max_iter``, the median and largest epoch count, and the held-out MSE at the
stop relative to the best anywhere on the curve. ``--curves`` saves the
curves, ``--replay`` replays saved ones (so the sweep can run in parts:
``--datasets digits --curves a.npy`` and ``--datasets wine ... --curves
b.npy``, then ``--replay a.npy b.npy``).
"""

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

# Measure the skae of this checkout, not another copy that happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skae import AutoencoderTransformer, VAETransformer  # noqa: E402
from skae.cli import load_dataset  # noqa: E402
from skae.compare import held_out_split  # noqa: E402

DATASETS = ("digits", "wine", "breast_cancer", "iris", "diabetes")
SIZES = (2, 8, 16)
MODELS = (AutoencoderTransformer, VAETransformer)


def splits(datasets=DATASETS):
    """Yield ``(name, X_train, X_test)`` for the data sets."""
    for name in datasets:
        data = load_dataset(name)
        held_out = held_out_split(data.X, data.y, random_state=0)
        yield name, held_out.X_train, held_out.X_test


def mse(model, X):
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


# Settings compared with the defaults by --compare.
SETTINGS = {
    "defaults": {},
    # The defaults before issue 17, for both estimators.
    "before": {"max_iter": 500, "tol": 1e-4, "n_iter_no_change": 10},
    "early_stopping": {"early_stopping": True},
}


def fit(cls, k, settings, seed, device, X_train):
    """Fit; return (model, seconds, stopped at max_iter)."""
    model = cls(k, random_state=seed, device=device, **SETTINGS[settings])
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X_train)
    seconds = time.perf_counter() - start
    return model, seconds, any(issubclass(w.category, ConvergenceWarning) for w in caught)


def default_fits(args):
    settings = ["defaults", *args.compare]
    print(f"{len(args.seeds)} seed(s): {', '.join(map(str, args.seeds))}; per settings: epochs "
          "(* = stopped at max_iter), fit seconds, mean held-out MSE over the seeds\n")
    header = "| data | model | k | PCA MSE | mean's MSE |"
    for name in settings:
        header += f" {name}: epochs | s | MSE |" + ("" if name == "defaults" else " / defaults |")
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    totals = {name: [0, 0.0, []] for name in settings}  # warnings, seconds, log MSE ratios
    for name, X_train, X_test in splits():
        mean_mse = float(np.mean((X_test - X_train.mean(axis=0)) ** 2))
        for k in [k for k in SIZES if k < X_train.shape[1]]:
            pca_mse = mse(PCA(k).fit(X_train), X_test)
            for cls in MODELS:
                line = f"| {name} | {cls.__name__} | {k} | {pca_mse:.4f} | {mean_mse:.4f} |"
                reference = None
                for setting in settings:
                    epochs, seconds, errors = [], 0.0, []
                    for seed in args.seeds:
                        model, took, at_max = fit(cls, k, setting, seed, args.device, X_train)
                        epochs.append(f"{model.n_iter_}{'*' if at_max else ''}")
                        seconds += took
                        errors.append(mse(model, X_test))
                        totals[setting][0] += at_max
                    error = float(np.mean(errors))
                    totals[setting][1] += seconds
                    line += f" {'/'.join(epochs)} | {seconds:.1f} | {error:.4f} |"
                    if reference is None:
                        reference = error
                    else:
                        line += f" {error / reference:.2f} |"
                        totals[setting][2].append(math.log(error / reference))
                print(line, flush=True)
    print()
    for name, (n_warned, seconds, logs) in totals.items():
        ratio = f"; MSE / defaults: geometric mean {math.exp(np.mean(logs)):.2f}, " \
                f"range {math.exp(min(logs)):.2f} to {math.exp(max(logs)):.2f}" if logs else ""
        print(f"{name}: {n_warned} fit(s) stopped at max_iter (ConvergenceWarning), "
              f"{seconds:.0f} s of fitting{ratio}")
    return 0 if totals["defaults"][0] == 0 else 1


# --------------------------------------------------------------------- sweep


def curves(cls, k, X_train, X_test, epochs, seed=0):
    """Per epoch of one-pass ``partial_fit`` calls: (training loss, held-out MSE)."""
    model = cls(k, random_state=seed, device="cpu")
    losses, errors = [], []
    for _ in range(epochs):
        model.partial_fit(X_train)
        losses.append(model.loss_curve_[-1])
        errors.append(mse(model, X_test))
    return losses, errors


def replay(losses, errors, tol, patience, max_iter):
    """(epochs run, stopped at max_iter, held-out MSE at the end), as trainer.train stops."""
    if max_iter > len(losses):
        raise ValueError(f"curves of {len(losses)} epochs cannot replay max_iter={max_iter}")
    best, count = -math.inf, 0
    for epoch, value in enumerate(-loss for loss in losses[:max_iter]):
        if math.isfinite(best) and value < best + tol * abs(best):
            count += 1
        else:
            count = 0
        best = max(best, value)
        if count > patience:
            return epoch + 1, False, errors[epoch]
    return max_iter, True, errors[max_iter - 1]


# (tol, n_iter_no_change, max_iter). early_stopping=True is no candidate: partial_fit
# refuses it, so as a default it would break streaming with default settings.
RULES = [
    (tol, patience, max_iter)
    for tol in (1e-4, 1e-3, 1e-2)
    for patience in (10, 20, 50)
    for max_iter in (500, 1000, 2000)
]


def record_curves(args):
    runs = []
    for name, X_train, X_test in splits(args.datasets):
        for k in [k for k in SIZES if k < X_train.shape[1]]:
            for cls in MODELS:
                start = time.perf_counter()
                losses, errors = curves(cls, k, X_train, X_test, args.epochs)
                runs.append((name, cls.__name__, k, losses, errors))
                print(f"# {name} {cls.__name__} k={k}: best held-out MSE {min(errors):.4f} at "
                      f"epoch {int(np.argmin(errors)) + 1} ({time.perf_counter() - start:.0f} s)",
                      file=sys.stderr, flush=True)
    return runs


def sweep(args):
    if args.replay:
        runs = [run for path in args.replay for run in np.load(path, allow_pickle=True)]
    else:
        runs = record_curves(args)
        if args.curves:
            np.save(args.curves, np.array(runs, dtype=object), allow_pickle=True)
    print("| tol | n_iter_no_change | max_iter | max_iter reached | median epochs | most epochs "
          "| median MSE / best | worst MSE / best | worst model |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for tol, patience, max_iter in RULES:
        outcomes = []
        for name, model, k, losses, errors in runs:
            epochs, at_max, error = replay(losses, errors, tol, patience, max_iter)
            outcomes.append((epochs, at_max, error / min(errors), f"{name} {model} {k}"))
        epochs = [o[0] for o in outcomes]
        ratios = [o[2] for o in outcomes]
        worst = outcomes[int(np.argmax(ratios))]
        print(f"| {tol:g} | {patience} | {max_iter} | {sum(o[1] for o in outcomes)} of "
              f"{len(outcomes)} | {np.median(epochs):.0f} | {max(epochs)} | "
              f"{np.median(ratios):.3f} | {max(ratios):.3f} | {worst[3]} |")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="replay candidate stopping rules")
    parser.add_argument("--epochs", type=int, default=2000, help="length of the sweep's curves")
    parser.add_argument("--curves", default=None, help="save the sweep's curves to this .npy")
    parser.add_argument("--replay", nargs="+", default=None,
                        help="replay the rules on curves saved before (.npy files)")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="random_state values of the models")
    parser.add_argument("--compare", nargs="+", choices=[s for s in SETTINGS if s != "defaults"],
                        default=[], help="also fit with these settings, side by side")
    args = parser.parse_args(argv)
    return sweep(args) if args.sweep else default_fits(args)


if __name__ == "__main__":
    sys.exit(main())
