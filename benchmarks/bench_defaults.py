"""Default training settings on the five bundled data sets: epochs, warnings, held-out error.

Run:
    python benchmarks/bench_defaults.py            # default fits: one table, about 2-4 minutes
    python benchmarks/bench_defaults.py --sweep    # where candidate stopping rules would stop

Data: scikit-learn's digits (pixels / 16), wine, breast_cancer, iris and
diabetes (standardised), each split 70/30 (stratified for the classification
sets, random_state=0), as ``skae compare`` prepares them. Every latent size of
2, 8 and 16 smaller than the number of features, for both estimators,
``random_state=0``, on the CPU.

The default mode fits each model with the estimators' default settings and
prints the epochs run, whether the fit stopped at ``max_iter`` (a
ConvergenceWarning), the fit time, the held-out reconstruction MSE, and that
MSE over PCA's at the same size and over the mean's (predicting the training
mean for every row).

``--sweep`` trains each model one epoch at a time (``partial_fit``, up to
``--epochs``), recording the training loss and the held-out MSE after every
epoch, and, separately, the same on 90% of the training rows with the
validation score (``score``) of the other 10%. It then replays candidate
stopping rules (``tol``, ``n_iter_no_change``, ``early_stopping``,
``max_iter``) on those curves, exactly as the training loop applies them, and
prints, per rule, how many models would stop at ``max_iter``, the median and
largest epoch count, and the held-out MSE relative to the best seen on the
curve.
"""

import argparse
import math
import sys
import time
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, VAETransformer
from skae.cli import load_dataset
from skae.compare import held_out_split

DATASETS = ("digits", "wine", "breast_cancer", "iris", "diabetes")
SIZES = (2, 8, 16)
MODELS = (AutoencoderTransformer, VAETransformer)


def splits():
    """Yield ``(name, X_train, X_test)`` for the five data sets."""
    for name in DATASETS:
        data = load_dataset(name)
        held_out = held_out_split(data.X, data.y, random_state=0)
        yield name, held_out.X_train, held_out.X_test


def mse(model, X):
    return float(np.mean((model.inverse_transform(model.transform(X)) - X) ** 2))


def default_fits(args):
    print("| data | model | k | epochs | max_iter reached | fit (s) | held-out MSE | / PCA | / mean |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    n_warned = 0
    for name, X_train, X_test in splits():
        mean_mse = float(np.mean((X_test - X_train.mean(axis=0)) ** 2))
        for k in [k for k in SIZES if k < X_train.shape[1]]:
            pca_mse = mse(PCA(k).fit(X_train), X_test)
            for cls in MODELS:
                model = cls(k, random_state=args.random_state, device=args.device)
                start = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    model.fit(X_train)
                seconds = time.perf_counter() - start
                warned = any(issubclass(w.category, ConvergenceWarning) for w in caught)
                n_warned += warned
                error = mse(model, X_test)
                print(f"| {name} | {cls.__name__} | {k} | {model.n_iter_} | "
                      f"{'YES' if warned else 'no'} | {seconds:.1f} | {error:.4f} | "
                      f"{error / pca_mse:.2f} | {error / mean_mse:.2f} |", flush=True)
    print(f"\n{n_warned} default fit(s) gave a ConvergenceWarning.")
    return 0 if n_warned == 0 else 1


# --------------------------------------------------------------------- sweep


def curves(cls, k, X_fit, X_test, epochs, X_val=None, seed=0):
    """Per epoch: training loss, held-out MSE, and the validation score (or None)."""
    model = cls(k, random_state=seed, device="cpu")
    losses, errors, scores = [], [], []
    for _ in range(epochs):
        model.partial_fit(X_fit)
        losses.append(model.loss_curve_[-1])
        errors.append(mse(model, X_test))
        scores.append(model.score(X_val) if X_val is not None else None)
    return losses, errors, scores


def replay(losses, errors, scores, tol, patience, max_iter, early_stopping):
    """(epochs run, stopped at max_iter, held-out MSE of the kept weights), as trainer.train."""
    best, count, best_epoch = -math.inf, 0, 0
    values = scores if early_stopping else [-loss for loss in losses]
    for epoch, value in enumerate(values[:max_iter]):
        if math.isfinite(best) and value < best + tol * abs(best):
            count += 1
        else:
            count = 0
        if value > best:
            best, best_epoch = value, epoch
        if count > patience:
            return epoch + 1, False, errors[best_epoch if early_stopping else epoch]
    if max_iter > len(values):
        raise ValueError(f"curves of {len(values)} epochs cannot replay max_iter={max_iter}")
    epoch = max_iter - 1
    return max_iter, True, errors[best_epoch if early_stopping else epoch]


RULES = [
    # (tol, n_iter_no_change, max_iter, early_stopping); the first are the defaults before issue 17
    (tol, patience, max_iter, early_stopping)
    for early_stopping in (False, True)
    for tol in (1e-4, 1e-3, 1e-2)
    for patience in (10, 20, 50)
    for max_iter in (500, 1000, 2000)
]


def sweep(args):
    runs = []
    for name, X_train, X_test in splits():
        order = np.random.RandomState(0).permutation(len(X_train))
        n_val = max(1, round(0.1 * len(X_train)))
        X_fit, X_val = X_train[order[n_val:]], X_train[order[:n_val]]
        for k in [k for k in SIZES if k < X_train.shape[1]]:
            for cls in MODELS:
                start = time.perf_counter()
                plain = curves(cls, k, X_train, X_test, args.epochs)
                held = curves(cls, k, X_fit, X_test, args.epochs, X_val=X_val)
                runs.append((name, cls.__name__, k, plain, held))
                print(f"# {name} {cls.__name__} k={k}: best held-out MSE {min(plain[1]):.4f} "
                      f"at epoch {int(np.argmin(plain[1])) + 1}, ({time.perf_counter() - start:.0f} s)",
                      file=sys.stderr, flush=True)
    print("| tol | n_iter_no_change | max_iter | early_stopping | max_iter reached | "
          "median epochs | most epochs | median MSE / best | worst MSE / best | worst model |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for tol, patience, max_iter, early_stopping in RULES:
        outcomes = []
        for name, model, k, plain, held in runs:
            losses, errors, scores = held if early_stopping else plain
            epochs, at_max, error = replay(losses, errors, scores, tol, patience, max_iter,
                                           early_stopping)
            outcomes.append((epochs, at_max, error / min(plain[1]), f"{name} {model} {k}"))
        epochs = [o[0] for o in outcomes]
        ratios = [o[2] for o in outcomes]
        worst = outcomes[int(np.argmax(ratios))]
        print(f"| {tol:g} | {patience} | {max_iter} | {early_stopping} | "
              f"{sum(o[1] for o in outcomes)} of {len(outcomes)} | {np.median(epochs):.0f} | "
              f"{max(epochs)} | {np.median(ratios):.3f} | {max(ratios):.3f} | {worst[3]} |")
    if args.curves:
        np.save(args.curves, np.array(runs, dtype=object), allow_pickle=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="replay candidate stopping rules")
    parser.add_argument("--epochs", type=int, default=2000, help="length of the sweep's curves")
    parser.add_argument("--curves", default=None, help="save the sweep's curves to this .npy")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    return sweep(args) if args.sweep else default_fits(args)


if __name__ == "__main__":
    sys.exit(main())
