"""Training and inference speed of skae against the loops users would otherwise write.

In one process, with the contenders interleaved repeat by repeat (so a busy
machine slows them alike), this times:

* skae's ``AutoencoderTransformer.fit``;
* a hand-written PyTorch loop on the same network, data, epochs and batch size
  (``randperm``, slice, ``F.mse_loss``, ``torch.optim.Adam()`` with defaults);
* skorch's ``NeuralNetRegressor(...).fit(X, X)`` with the same module, when
  skorch is installed;

on two workloads (digits at batch 64, 20,000 x 100 synthetic data at batch
256), and reports medians of samples per second, the ratios, and the final
training loss of skae and of the hand-written loop. It also times
``transform`` against the bare encoder under ``torch.inference_mode()``, and
measures, in a fresh subprocess, the peak resident memory of a one-epoch fit
on 1,000,000 x 100 float32 data against the size of that data.

Run ``python benchmarks/bench_training.py`` (``--quick`` for a smoke run,
``--device cuda`` on a GPU machine).
"""

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

# Measure the skae of this checkout, not another copy that happens to be installed.
_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from skae import AutoencoderTransformer  # noqa: E402


@dataclass
class Workload:
    """One training problem: data, network and schedule."""

    name: str
    X: np.ndarray
    hidden_layer_sizes: tuple
    n_components: int
    batch_size: int
    epochs: int


def digits_workload(epochs):
    """The 70% training split of digits (1,257 x 64, scaled to [0, 1]) at batch 64."""
    X = load_digits().data.astype(np.float32) / 16
    X_train, _ = train_test_split(X, test_size=0.3, random_state=0)
    return Workload("digits 1257x64, batch 64", X_train, (128, 64), 8, 64, epochs)


def synthetic_workload(epochs, n_samples=20_000, n_features=100):
    """Correlated Gaussian data (rank-20 signal plus noise) at batch 256."""
    rng = np.random.default_rng(0)
    signal = rng.standard_normal((n_samples, 20)) @ rng.standard_normal((20, n_features))
    X = (signal + 0.1 * rng.standard_normal((n_samples, n_features))).astype(np.float32)
    return Workload(
        f"synthetic {n_samples}x{n_features}, batch 256", X, (256, 128), 8, 256, epochs
    )


def _mlp(sizes):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def plain_autoencoder(n_features, hidden_layer_sizes, n_components):
    """The same network skae builds: encoder and mirrored decoder, ReLU between layers."""
    return nn.Sequential(
        _mlp([n_features, *hidden_layer_sizes, n_components]),
        _mlp([n_components, *reversed(hidden_layer_sizes), n_features]),
    )


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def fit_skae(work, device, seed=0):
    """Seconds for ``AutoencoderTransformer.fit`` and its final epoch's loss per feature."""
    est = AutoencoderTransformer(
        n_components=work.n_components,
        hidden_layer_sizes=work.hidden_layer_sizes,
        reconstruction_loss="mse",
        learning_rate_init=1e-3,
        batch_size=work.batch_size,
        max_iter=work.epochs,
        tol=0.0,
        n_iter_no_change=work.epochs + 1,
        random_state=seed,
        device=device,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(work.X)
        _sync(device)
        seconds = time.perf_counter() - start
    return seconds, est.loss_curve_[-1] / work.X.shape[1], est


def fit_hand_written(work, device, seed=0):
    """Seconds for the loop a user writes by hand, and its final epoch's mean loss."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    X = torch.as_tensor(work.X, device=device)
    model = plain_autoencoder(X.shape[1], work.hidden_layer_sizes, work.n_components).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    n_samples = X.shape[0]
    for _ in range(work.epochs):
        order = torch.randperm(n_samples, device=device)
        # Keeping the detached losses adds no tensor operation to the timed loop.
        losses = []
        for i in range(0, n_samples, work.batch_size):
            batch = X[order[i : i + work.batch_size]]
            loss = F.mse_loss(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    _sync(device)
    elapsed = time.perf_counter() - start
    sizes = [min(work.batch_size, n_samples - i) for i in range(0, n_samples, work.batch_size)]
    final = sum(loss.item() * size for loss, size in zip(losses, sizes)) / n_samples
    return elapsed, final


def skorch_available():
    try:
        import skorch  # noqa: F401
    except ImportError:
        return False
    return True


def fit_skorch(work, device, seed=0):
    """Seconds for ``NeuralNetRegressor(...).fit(X, X)`` with skorch's defaults otherwise."""
    from skorch import NeuralNetRegressor

    torch.manual_seed(seed)
    start = time.perf_counter()
    net = NeuralNetRegressor(
        plain_autoencoder(work.X.shape[1], work.hidden_layer_sizes, work.n_components),
        max_epochs=work.epochs,
        batch_size=work.batch_size,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        train_split=None,
        verbose=0,
        device=device,
    )
    net.fit(work.X, work.X)
    _sync(device)
    return time.perf_counter() - start, net.history[-1, "train_loss"]


def compare_fit(work, device, repeats, with_skorch):
    """Interleaved repeats of every contender; medians of seconds and final losses."""
    contenders = {"skae": fit_skae, "hand-written": fit_hand_written}
    if with_skorch:
        contenders["skorch"] = fit_skorch
    for fit in contenders.values():
        fit(work, device)  # warm-up: first-call costs (lazy imports, allocator) are not timed
    seconds = {name: [] for name in contenders}
    losses = {name: [] for name in contenders}
    for repeat in range(repeats):
        names = list(contenders)
        # Rotate the order so that no contender always runs first (cold) or last.
        names = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in names:
            elapsed, loss, *_ = contenders[name](work, device, seed=repeat)
            seconds[name].append(elapsed)
            losses[name].append(loss)
    rows = work.X.shape[0] * work.epochs
    return {
        name: {
            "samples_per_s": rows / statistics.median(seconds[name]),
            "final_loss": statistics.median(losses[name]),
        }
        for name in contenders
    }


def compare_transform(work, device, rounds, round_seconds=0.01, dtype=np.float32):
    """Median rows per second of ``transform`` and of the bare encoder on ``dtype`` input.

    "bare encoder" calls ``est.encoder_`` on a tensor already on ``device``
    (for float64 input, a float64 copy of it, as a user would run);
    "bare, NumPy in/out" also moves the NumPy input there and the codes back
    to NumPy, as ``transform`` must (free on the CPU, a copy each way on a GPU).
    Each of the ``rounds`` times every contender for about ``round_seconds``
    (at least one call), so that a call of a millisecond and one of tens of
    milliseconds are both timed over many short, interleaved rounds.
    """
    _, _, est = fit_skae(work, device)
    X = work.X.astype(dtype)
    tensor = torch.as_tensor(X, device=device)
    encoder = est.encoder_
    if tensor.dtype != torch.float32:
        encoder = copy.deepcopy(encoder).to(tensor.dtype)

    def bare():
        with torch.inference_mode():
            encoder(tensor)
        _sync(device)

    def bare_numpy():
        with torch.inference_mode():
            encoder(torch.from_numpy(X).to(device)).cpu().numpy()

    def skae_transform():
        est.transform(X)

    contenders = [
        ("transform", skae_transform),
        ("bare encoder", bare),
        ("bare, NumPy in/out", bare_numpy),
    ]
    skae_transform()
    start = time.perf_counter()
    skae_transform()
    calls = max(1, round(round_seconds / (time.perf_counter() - start)))
    timings = {name: [] for name, _ in contenders}
    for repeat in range(rounds):
        shift = repeat % len(contenders)
        for name, fn in contenders[shift:] + contenders[:shift]:
            fn()
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            timings[name].append((time.perf_counter() - start) / calls)
    return {name: X.shape[0] / statistics.median(t) for name, t in timings.items()}


_MEMORY_CHILD = """
import json, sys, warnings
import numpy as np, torch
from skae import AutoencoderTransformer

def status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field + " not in /proc/self/status")

n_rows, n_features, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
warmup = np.random.default_rng(1).standard_normal((64, n_features), dtype=np.float32)
est = AutoencoderTransformer(n_components=8, hidden_layer_sizes=(32,), batch_size=64,
                             max_iter=1, device=device, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    est.fit(warmup)  # loads every lazily imported module before the baseline
    before = status_bytes("VmRSS")
    X = np.random.default_rng(0).standard_normal((n_rows, n_features), dtype=np.float32)
    est.set_params(batch_size=1024).fit(X)
print(json.dumps({"data": X.nbytes, "peak_above_imports": status_bytes("VmHWM") - before}))
"""


def measure_memory(n_rows, n_features, device):
    """Peak resident memory of a 1-epoch fit, above the imports, in a fresh process.

    The data is created in that process too, so the figure includes it once:
    a fit that never copies the data stays just above 1x its size.
    """
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(n_rows), str(n_features), device],
        capture_output=True,
        text=True,
        check=True,
        cwd=_ROOT,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["ratio"] = result["peak_above_imports"] / result["data"]
    return result


def _print_fit(work, results):
    print(f"\n## fit: {work.name}, {work.epochs} epochs, hidden {work.hidden_layer_sizes}")
    print("| contender | samples/s | skae speed-up | final loss (MSE per feature) |")
    print("| --- | ---: | ---: | ---: |")
    skae_rate = results["skae"]["samples_per_s"]
    for name, row in results.items():
        ratio = skae_rate / row["samples_per_s"]
        print(f"| {name} | {row['samples_per_s']:,.0f} | {ratio:.2f}x | {row['final_loss']:.5f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--device", default="cpu", help='"cpu" (default), "cuda", ...')
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1M-row memory check")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 7)
    with_skorch = skorch_available()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} at the start; torch {torch.__version__}, device {args.device}, "
        f"{torch.get_num_threads()} intra-op threads, {repeats} interleaved repeats, "
        f"skorch {'installed' if with_skorch else 'not installed'}"
    )
    if args.quick:
        workloads = [digits_workload(2), synthetic_workload(1, n_samples=2_000)]
    else:
        workloads = [digits_workload(30), synthetic_workload(4)]
    for work in workloads:
        _print_fit(work, compare_fit(work, args.device, repeats, with_skorch))
    # float32 is what the target is set on; float64 is what scikit-learn users pass by default.
    for dtype in (np.float32, np.float64):
        print(f"\n## transform on {np.dtype(dtype).name} input (rows/s)")
        print("| data | transform | bare encoder | ratio | bare, NumPy in/out | ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for work in workloads:
            # Rounds are short (see compare_transform): ten times as many cost
            # seconds and steady the medians on a shared machine.
            rates = compare_transform(work, args.device, 10 * repeats, dtype=dtype)
            print(
                f"| {work.name.split(',')[0]} | {rates['transform']:,.0f} | "
                f"{rates['bare encoder']:,.0f} | "
                f"{rates['transform'] / rates['bare encoder']:.2f}x | "
                f"{rates['bare, NumPy in/out']:,.0f} | "
                f"{rates['transform'] / rates['bare, NumPy in/out']:.2f}x |"
            )
    if not args.no_memory:
        n_rows = 20_000 if args.quick else 1_000_000
        memory = measure_memory(n_rows, 100, args.device)
        print(
            f"\n## memory: 1-epoch fit on {n_rows:,} x 100 float32 "
            f"({memory['data'] / 2**20:.0f} MiB): peak resident memory above the imports "
            f"{memory['peak_above_imports'] / 2**20:.0f} MiB = {memory['ratio']:.2f}x the data"
        )
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
