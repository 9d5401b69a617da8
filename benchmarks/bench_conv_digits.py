"""Convolutional VAE vs PCA and the MLP VAE on the digits images, 2-D codes.

Trains ``VAETransformer(architecture="conv", image_shape=(1, 8, 8),
n_components=2, reconstruction_loss="bce")`` with otherwise default settings
on 70% of the digits (stratified split, ``random_state=0``, pixels scaled to
[0, 1]) and prints its held-out reconstruction MSE next to PCA's at 2
components, with the ratio and the training time. The targets are a ratio of
at most 0.9 to PCA, and a training time of at most 2x that of the default MLP
VAE (``VAETransformer(n_components=2)``), which is fitted alongside, seed by
seed, with its own held-out MSE for comparison. A one-epoch fit first takes
torch's one-time start-up out of the timed fits; ``epochs`` ends in ``max``
when a fit stopped at ``max_iter`` (a ConvergenceWarning) rather than by its
tolerance.

Run from the repository root::

    python benchmarks/bench_conv_digits.py [--seeds 0 1 2] [--device cpu]
        [--conv-channels 16 32] [--no-mlp]
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

# Measure the skae of this checkout, not another copy that happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skae import VAETransformer  # noqa: E402


def held_out_mse(reducer, X_test):
    return float(np.mean((reducer.inverse_transform(reducer.transform(X_test)) - X_test) ** 2))


def timed_fit(estimator, X):
    """``(wall seconds, process CPU seconds, epochs)`` of ``estimator.fit(X)``.

    ``epochs`` is ``n_iter_`` as text, ending in `` max`` when the fit stopped
    at ``max_iter``.
    """
    start, start_cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(X)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    at_max = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return seconds, cpu_seconds, f"{estimator.n_iter_}{' max' if at_max else ''}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="VAE random_state values")
    parser.add_argument("--device", default="auto", help='skae device (default "auto")')
    parser.add_argument(
        "--conv-channels", type=int, nargs="+", default=None,
        help="try other conv_channels than the default (for tuning it)",
    )
    parser.add_argument("--no-mlp", action="store_true", help="skip the MLP VAE")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16.0, test_size=0.3, stratify=y, random_state=0)
    pca_mse = held_out_mse(PCA(n_components=2).fit(X_train), X_test)
    print(f"PCA(2) held-out MSE: {pca_mse:.5f}")
    extra = {} if args.conv_channels is None else {"conv_channels": tuple(args.conv_channels)}
    import skae

    print(f"skae from {Path(skae.__file__).parent}; conv_channels="
          f"{extra.get('conv_channels', VAETransformer().conv_channels)}")
    # cpu_s: process CPU time; on a machine shared with other jobs wall time
    # (fit_s) can be several times larger than the work itself.
    with warnings.catch_warnings():  # the untimed warm-up
        warnings.simplefilter("ignore", ConvergenceWarning)
        VAETransformer(**extra, architecture="conv", image_shape=(1, 8, 8), max_iter=1,
                       device=args.device).fit(X_train[:50])
    print("model  seed  epochs  fit_s  cpu_s   mse      ratio_to_pca  conv_fit / mlp_fit")
    for seed in args.seeds:
        conv = VAETransformer(
            **extra,
            architecture="conv",
            image_shape=(1, 8, 8),
            n_components=2,
            reconstruction_loss="bce",
            random_state=seed,
            device=args.device,
        )
        seconds, cpu_seconds, epochs = timed_fit(conv, X_train)
        mse = held_out_mse(conv, X_test)
        print(f"conv   {seed:4d}  {epochs:>6s}  {seconds:5.1f}  {cpu_seconds:5.1f}  {mse:.5f}  {mse / pca_mse:12.3f}")
        if args.no_mlp:
            continue
        mlp = VAETransformer(n_components=2, random_state=seed, device=args.device)
        mlp_seconds, mlp_cpu, mlp_epochs = timed_fit(mlp, X_train)
        mlp_mse = held_out_mse(mlp, X_test)
        print(
            f"mlp    {seed:4d}  {mlp_epochs:>6s}  {mlp_seconds:5.1f}  {mlp_cpu:5.1f}  {mlp_mse:.5f}  "
            f"{mlp_mse / pca_mse:12.3f}  {seconds / mlp_seconds:.2f}x"
        )


if __name__ == "__main__":
    main()
