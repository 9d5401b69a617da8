"""Convolutional VAE vs PCA on the digits images, 2-D codes.

Trains ``VAETransformer(architecture="conv", image_shape=(1, 8, 8),
n_components=2, reconstruction_loss="bce")`` with otherwise default settings
on 70% of the digits (stratified split, ``random_state=0``, pixels scaled to
[0, 1]) and prints its held-out reconstruction MSE next to PCA's at 2
components, with the ratio and the training time. The target is a ratio of at
most 0.9 in under 45 s on a 2-core CPU. A one-epoch fit first takes torch's
one-time start-up out of the timed fits; ``epochs`` ends in ``max`` when a fit
stopped at ``max_iter`` (a ConvergenceWarning) rather than by its tolerance.

Run from the repository root::

    python benchmarks/bench_conv_digits.py [--seeds 0 1 2] [--device cpu]
        [--conv-channels 16 32]
"""

import argparse
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skae import VAETransformer


def held_out_mse(reducer, X_test):
    return float(np.mean((reducer.inverse_transform(reducer.transform(X_test)) - X_test) ** 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="VAE random_state values")
    parser.add_argument("--device", default="auto", help='skae device (default "auto")')
    parser.add_argument(
        "--conv-channels", type=int, nargs="+", default=None,
        help="try other conv_channels than the default (for tuning it)",
    )
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X_train, X_test = train_test_split(X / 16.0, test_size=0.3, stratify=y, random_state=0)
    pca_mse = held_out_mse(PCA(n_components=2).fit(X_train), X_test)
    print(f"PCA(2) held-out MSE: {pca_mse:.5f}")
    # cpu_s: process CPU time; on a machine shared with other jobs wall time
    # (fit_s) can be several times larger than the work itself.
    print("seed  epochs  fit_s  cpu_s   vae_mse  ratio_to_pca")
    extra = {} if args.conv_channels is None else {"conv_channels": tuple(args.conv_channels)}
    with warnings.catch_warnings():  # the untimed warm-up
        warnings.simplefilter("ignore", ConvergenceWarning)
        VAETransformer(**extra, architecture="conv", image_shape=(1, 8, 8), max_iter=1,
                       device=args.device).fit(X_train[:50])
    print(f"conv_channels={extra.get('conv_channels', VAETransformer().conv_channels)}")
    for seed in args.seeds:
        vae = VAETransformer(
            **extra,
            architecture="conv",
            image_shape=(1, 8, 8),
            n_components=2,
            reconstruction_loss="bce",
            random_state=seed,
            device=args.device,
        )
        start, start_cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            vae.fit(X_train)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        at_max = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        mse = held_out_mse(vae, X_test)
        epochs = f"{vae.n_iter_}{' max' if at_max else ''}"
        print(
            f"{seed:4d}  {epochs:>6s}  {seconds:5.1f}  {cpu_seconds:5.1f}  {mse:8.5f}  "
            f"{mse / pca_mse:12.3f}"
        )


if __name__ == "__main__":
    main()
