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
training loss of skae and of the hand-written loop; skae runs twice, with its
own choice of threads (``n_threads="auto"``) and with torch's setting. Then
the same for a convolutional VAE (``VAETransformer(architecture="conv")``
against a hand-written loop on the identical network) on the 8x8 digits and on
the digits upsampled to 28x28, at batch 128. It also times ``transform``
against the bare encoder under ``torch.inference_mode()``; measures, in a
fresh subprocess, the peak resident memory of a one-epoch fit on 1,000,000 x
100 float32 data against the size of that data; and times the default
autoencoder and the default convolutional VAE on the digits on the quiet
machine and with one busy process that the benchmark starts itself
(``python -c "while True: pass"``), alternately.

Run ``python benchmarks/bench_training.py`` (``--quick`` for a smoke run,
``--device cuda`` on a GPU machine, ``--only NAME ...`` for some sections,
``--thread-sweep`` for the timings of single matrix products on 1 and 2
threads, quiet and busy, behind skae's thread choice; ``--only compile``
times ``torch.compile`` on the hand-written convolutional loop, compilation
included, which takes minutes and is not run by default).
"""

import argparse
import copy
import json
import math
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

from skae import AutoencoderTransformer, VAETransformer  # noqa: E402
from skae.engine.conv import build_conv_decoder, build_conv_encoder  # noqa: E402


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


def _schedule(work, device, seed, n_threads):
    """The parameters every skae contender shares: the workload's schedule, no early stop."""
    return dict(
        batch_size=work.batch_size,
        max_iter=work.epochs,
        tol=0.0,
        n_iter_no_change=work.epochs + 1,
        random_state=seed,
        device=device,
        n_threads=n_threads,
    )


def _timed_fit(est, X, device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(X)
        _sync(device)
        return time.perf_counter() - start


def fit_skae(work, device, seed=0, n_threads="auto"):
    """Seconds for ``AutoencoderTransformer.fit`` and its final epoch's loss per feature."""
    est = AutoencoderTransformer(
        n_components=work.n_components,
        hidden_layer_sizes=work.hidden_layer_sizes,
        reconstruction_loss="mse",
        learning_rate_init=1e-3,
        **_schedule(work, device, seed, n_threads),
    )
    seconds = _timed_fit(est, work.X, device)
    return seconds, est.loss_curve_[-1] / work.X.shape[1], est


def _hand_written_loop(work, device, seed, build, batch_loss):
    """The loop users write: ``randperm``, index the batch, the loss, ``Adam`` with defaults.

    ``build()`` gives the modules, ``batch_loss(modules, batch)`` the mean loss
    of a batch. Returns the seconds (building the modules included) and the
    final epoch's mean loss per row.
    """
    torch.manual_seed(seed)
    start = time.perf_counter()
    X = torch.as_tensor(work.X, device=device)
    modules = [module.to(device) for module in build()]
    optimizer = torch.optim.Adam([p for module in modules for p in module.parameters()], lr=1e-3)
    n_samples = X.shape[0]
    for _ in range(work.epochs):
        order = torch.randperm(n_samples, device=device)
        # Keeping the detached losses adds no tensor operation to the timed loop.
        losses = []
        for i in range(0, n_samples, work.batch_size):
            batch = X[order[i : i + work.batch_size]]
            loss = batch_loss(modules, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    _sync(device)
    elapsed = time.perf_counter() - start
    sizes = [min(work.batch_size, n_samples - i) for i in range(0, n_samples, work.batch_size)]
    return elapsed, sum(loss.item() * size for loss, size in zip(losses, sizes)) / n_samples


def fit_hand_written(work, device, seed=0):
    """Seconds for the loop a user writes by hand, and its final epoch's mean loss."""
    return _hand_written_loop(
        work,
        device,
        seed,
        lambda: [plain_autoencoder(work.X.shape[1], work.hidden_layer_sizes, work.n_components)],
        lambda modules, batch: F.mse_loss(modules[0](batch), batch),
    )


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


def _torch_threads_contender(fit):
    """``fit`` with torch's own thread setting (what skae used before choosing), or None."""
    threads = torch.get_num_threads()
    if threads == 1:
        return None
    return f"skae, n_threads={threads}", lambda work, device, seed=0: fit(work, device, seed, threads)


def compare_fit(work, device, repeats, with_skorch):
    """Interleaved repeats of every contender; medians of seconds and final losses."""
    contenders = {"skae": fit_skae}
    fixed = _torch_threads_contender(fit_skae)
    if fixed is not None and torch.device(device).type == "cpu":
        contenders[fixed[0]] = fixed[1]
    contenders["hand-written"] = fit_hand_written
    if with_skorch:
        contenders["skorch"] = fit_skorch
    return _interleaved(work, device, repeats, contenders)


def _interleaved(work, device, repeats, contenders):
    """Medians over ``repeats`` rounds, the contenders' order rotating each round."""
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


# ------------------------------------------------------------ convolutional VAE


@dataclass
class ConvWorkload:
    """Images (flattened rows in [0, 1]) for a convolutional VAE with skae's default layers."""

    name: str
    X: np.ndarray
    image_shape: tuple
    batch_size: int
    epochs: int
    n_components: int = 2
    conv_channels: tuple = (32, 64)
    hidden_layer_sizes: tuple = (128, 64)


def _digits_images():
    X = load_digits().data.astype(np.float32) / 16
    X_train, _ = train_test_split(X, test_size=0.3, random_state=0)
    return X_train


def conv_digits_workload(epochs):
    """The 70% training split of the 8x8 digits at batch 128."""
    return ConvWorkload("digits 1257x(1,8,8), batch 128", _digits_images(), (1, 8, 8), 128, epochs)


def images28_workload(epochs):
    """The same digits upsampled (bilinear) to 28x28 single-channel images, at batch 128."""
    images = torch.from_numpy(_digits_images()).reshape(-1, 1, 8, 8)
    large = F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False).clamp_(0, 1)
    return ConvWorkload("digits upsampled 1257x(1,28,28), batch 128", large.reshape(len(large), -1).numpy(),
                        (1, 28, 28), 128, epochs)


def plain_conv_vae(work):
    """The encoder and decoder skae builds (without its input standardisation)."""
    encoder = build_conv_encoder(
        work.image_shape, work.conv_channels, work.hidden_layer_sizes, 2 * work.n_components, "relu"
    )
    decoder = build_conv_decoder(
        work.n_components, work.hidden_layer_sizes, work.conv_channels, work.image_shape, "relu"
    )
    return encoder, decoder


def fit_skae_conv(work, device, seed=0, n_threads="auto"):
    """Seconds for the convolutional ``VAETransformer.fit`` and its final epoch's loss per row."""
    est = VAETransformer(
        architecture="conv",
        image_shape=work.image_shape,
        conv_channels=work.conv_channels,
        hidden_layer_sizes=work.hidden_layer_sizes,
        n_components=work.n_components,
        reconstruction_loss="bce",
        **_schedule(work, device, seed, n_threads),
    )
    seconds = _timed_fit(est, work.X, device)
    return seconds, est.loss_curve_[-1], est


def _vae_loss(modules, batch):
    """Mean over the batch of the Bernoulli NLL plus the KL term, one reparameterised draw."""
    encoder, decoder = modules
    mean, log_var = encoder(batch).chunk(2, dim=-1)
    z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
    nll = F.binary_cross_entropy_with_logits(decoder(z), batch, reduction="none").sum(-1)
    return (nll + 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(-1)).mean()


def fit_hand_written_conv(work, device, seed=0):
    """Seconds for a plain loop on the identical VAE (Bernoulli decoder), and its final loss per row."""
    return _hand_written_loop(work, device, seed, lambda: plain_conv_vae(work), _vae_loss)


def compare_conv_fit(work, device, repeats):
    """Interleaved repeats of skae (its own threads and torch's) and the hand-written loop."""
    contenders = {"skae": fit_skae_conv}
    fixed = _torch_threads_contender(fit_skae_conv)
    if fixed is not None and torch.device(device).type == "cpu":
        contenders[fixed[0]] = fixed[1]
    contenders["hand-written"] = fit_hand_written_conv
    return _interleaved(work, device, repeats, contenders)


def time_compiled_conv_loop(work, device, steps=20):
    """``torch.compile`` on the hand-written conv VAE loop: compile seconds and step times.

    Returns ``{"compile_s", "eager_ms", "compiled_ms"}``: the first two compiled
    steps (compilation included), and the fastest of ``steps`` steps of each.
    """
    torch.manual_seed(0)
    X = torch.as_tensor(work.X, device=device)
    encoder, decoder = (network.to(device) for network in plain_conv_vae(work))
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)

    def loss(batch):
        return _vae_loss((encoder, decoder), batch)

    def step(fn):
        value = fn(X[: work.batch_size])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        _sync(device)

    def fastest(fn):
        best = math.inf
        for _ in range(steps):
            start = time.perf_counter()
            step(fn)
            best = min(best, time.perf_counter() - start)
        return best * 1e3

    compiled = torch.compile(loss)
    start = time.perf_counter()
    step(compiled)
    step(compiled)
    result = {"compile_s": time.perf_counter() - start}
    result["eager_ms"], result["compiled_ms"] = fastest(loss), fastest(compiled)
    return result


# ------------------------------------------------------------- a busy machine


def _busy_cases():
    """The digits default autoencoder and the default convolutional VAE (README's image example)."""
    X = load_digits().data / 16
    X_train, _ = train_test_split(X, test_size=0.3, random_state=0)

    def autoencoder(n_threads="auto"):
        return AutoencoderTransformer(n_components=2, random_state=0, n_threads=n_threads).fit(X_train)

    def conv_vae(n_threads="auto"):
        return VAETransformer(
            architecture="conv", image_shape=(1, 8, 8), n_components=2, reconstruction_loss="bce",
            random_state=0, n_threads=n_threads,
        ).fit(X_train)

    return {"AutoencoderTransformer(n_components=2)": autoencoder, "conv VAETransformer, README example": conv_vae}


class BusyProcess:
    """``python -c "while True: pass"`` for the length of a ``with`` block."""

    def __enter__(self):
        self._process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.2)  # running, not starting up
        return self

    def __exit__(self, *exc):
        self._process.kill()
        self._process.wait()


def _timed(fit, *args):
    """``(wall seconds, CPU seconds of this process)`` of ``fit(*args)``."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fit(*args)
    return time.perf_counter() - start, time.process_time() - start_cpu


def compare_busy(cases, repeats, baseline=False):
    """Median seconds of each fit on the machine as it is and with one busy process, alternately.

    Both wall time and the process's CPU time: on a machine shared with other
    work the busy process also takes a share of the CPU time the fit would
    have had, which shows in the wall time only; a fit that stalls on a busy
    core also burns more CPU time (threads that spin while they wait). With
    ``baseline`` the fits also run once, busy, on torch's own thread setting
    (what skae did before choosing its threads).
    """
    results = {}
    for name, fit in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit()  # warm-up
            quiet, busy = [], []
            for _ in range(repeats):
                quiet.append(_timed(fit))
                with BusyProcess():
                    busy.append(_timed(fit))
            row = {
                "quiet_s": statistics.median(t[0] for t in quiet),
                "busy_s": statistics.median(t[0] for t in busy),
                "quiet_cpu_s": statistics.median(t[1] for t in quiet),
                "busy_cpu_s": statistics.median(t[1] for t in busy),
            }
            if baseline:
                with BusyProcess():
                    row["busy_torch_threads_s"], row["busy_torch_threads_cpu_s"] = _timed(fit, torch.get_num_threads())
        results[name] = row
    return results


def thread_sweep(sizes=((200, 64), (256, 128), (256, 256), (512, 256), (512, 512), (1024, 1024)), reps=20):
    """Seconds of one ``addmm`` of each ``(rows, width)`` on 1 and on 2 threads, quiet and busy."""
    threads_before = torch.get_num_threads()

    def timed(rows, width, threads):
        torch.set_num_threads(threads)
        x, w, b = torch.randn(rows, width), torch.randn(width, width), torch.randn(width)
        for _ in range(3):
            torch.addmm(b, x, w)
        best = math.inf
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(reps):
                torch.addmm(b, x, w)
            best = min(best, (time.perf_counter() - start) / reps)
        return best

    rows = []
    try:
        for rows_, width in sizes:
            row = {"flops": 2 * rows_ * width * width}
            for threads in (1, 2):
                row[f"quiet_{threads}"] = timed(rows_, width, threads)
            with BusyProcess():
                for threads in (1, 2):
                    row[f"busy_{threads}"] = timed(rows_, width, threads)
            rows.append(row)
    finally:
        torch.set_num_threads(threads_before)
    return rows


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


def _print_fit(work, results, loss_name="MSE per feature"):
    shape = getattr(work, "image_shape", None)
    network = f"conv {work.conv_channels}, hidden {work.hidden_layer_sizes}" if shape else f"hidden {work.hidden_layer_sizes}"
    print(f"\n## fit: {work.name}, {work.epochs} epochs, {network}")
    print(f"| contender | samples/s | skae speed-up | final loss ({loss_name}) |")
    print("| --- | ---: | ---: | ---: |")
    skae_rate = results["skae"]["samples_per_s"]
    for name, row in results.items():
        ratio = skae_rate / row["samples_per_s"]
        print(f"| {name} | {row['samples_per_s']:,.0f} | {ratio:.2f}x | {row['final_loss']:.5f} |")


def _print_transform(workloads, device, repeats):
    # float32 is what the target is set on; float64 is what scikit-learn users pass by default.
    for dtype in (np.float32, np.float64):
        print(f"\n## transform on {np.dtype(dtype).name} input (rows/s)")
        print("| data | transform | bare encoder | ratio | bare, NumPy in/out | ratio |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for work in workloads:
            # Rounds are short (see compare_transform): ten times as many cost
            # seconds and steady the medians on a shared machine.
            rates = compare_transform(work, device, 10 * repeats, dtype=dtype)
            print(
                f"| {work.name.split(',')[0]} | {rates['transform']:,.0f} | "
                f"{rates['bare encoder']:,.0f} | "
                f"{rates['transform'] / rates['bare encoder']:.2f}x | "
                f"{rates['bare, NumPy in/out']:,.0f} | "
                f"{rates['transform'] / rates['bare, NumPy in/out']:.2f}x |"
            )


def _print_busy(results):
    print("\n## a busy machine: default fits on the digits, quiet and with one busy process (seconds)")
    baseline = any("busy_torch_threads_s" in row for row in results.values())
    header = "| fit | quiet | busy | busy / quiet | CPU quiet | CPU busy |"
    print(header + (" busy, torch's threads | its CPU |" if baseline else ""))
    print("| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if baseline else ""))
    for name, row in results.items():
        line = (
            f"| {name} | {row['quiet_s']:.2f} | {row['busy_s']:.2f} | {row['busy_s'] / row['quiet_s']:.2f}x | "
            f"{row['quiet_cpu_s']:.2f} | {row['busy_cpu_s']:.2f} |"
        )
        if baseline:
            line += f" {row['busy_torch_threads_s']:.2f} | {row['busy_torch_threads_cpu_s']:.2f} |"
        print(line)


def _print_sweep(rows):
    print("\n## one addmm (rows x width) @ (width x width), microseconds, 1 and 2 threads")
    print("| MFLOP | quiet, 1 | quiet, 2 | busy, 1 | busy, 2 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        times = " | ".join(f"{row[key] * 1e6:,.0f}" for key in ("quiet_1", "quiet_2", "busy_1", "busy_2"))
        print(f"| {row['flops'] / 1e6:,.1f} | {times} |")


SECTIONS = ("mlp", "conv", "transform", "memory", "busy", "compile")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--device", default="cpu", help='"cpu" (default), "cuda", ...')
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1M-row memory check")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS[:-1],
                        help="sections to run (compile: torch.compile on the conv loop, minutes; not by default)")
    parser.add_argument("--busy-baseline", action="store_true",
                        help="also time each busy fit once on torch's own threads (slow: minutes)")
    parser.add_argument("--thread-sweep", action="store_true", help="time single products on 1 and 2 threads")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 7)
    sections = set(args.only) - ({"memory"} if args.no_memory else set())
    with_skorch = skorch_available()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} at the start; torch {torch.__version__}, device {args.device}, "
        f"{torch.get_num_threads()} intra-op threads, {repeats} interleaved repeats, "
        f"skorch {'installed' if with_skorch else 'not installed'}"
    )
    if args.thread_sweep:
        _print_sweep(thread_sweep())
    if args.quick:
        workloads = [digits_workload(2), synthetic_workload(1, n_samples=2_000)]
        conv_workloads = [conv_digits_workload(1), images28_workload(1)]
    else:
        workloads = [digits_workload(30), synthetic_workload(4)]
        conv_workloads = [conv_digits_workload(30), images28_workload(10)]
    if "mlp" in sections:
        for work in workloads:
            _print_fit(work, compare_fit(work, args.device, repeats, with_skorch))
    if "conv" in sections:
        # Fits of seconds each: fewer repeats keep the run in minutes.
        for work in conv_workloads:
            _print_fit(work, compare_conv_fit(work, args.device, max(2, (repeats + 1) // 2)), "per row")
    if "transform" in sections:
        _print_transform(workloads, args.device, repeats)
    if "memory" in sections:
        n_rows = 20_000 if args.quick else 1_000_000
        memory = measure_memory(n_rows, 100, args.device)
        print(
            f"\n## memory: 1-epoch fit on {n_rows:,} x 100 float32 "
            f"({memory['data'] / 2**20:.0f} MiB): peak resident memory above the imports "
            f"{memory['peak_above_imports'] / 2**20:.0f} MiB = {memory['ratio']:.2f}x the data"
        )
    if "compile" in sections:
        for work in conv_workloads:
            timing = time_compiled_conv_loop(work, args.device)
            print(
                f"\n## torch.compile, hand-written conv VAE loop, {work.name}: compiling took "
                f"{timing['compile_s']:.1f} s; a step takes {timing['eager_ms']:.1f} ms eager, "
                f"{timing['compiled_ms']:.1f} ms compiled"
            )
    if "busy" in sections and torch.device(args.device).type == "cpu":
        _print_busy(compare_busy(_busy_cases(), 1 if args.quick else 3, args.busy_baseline))
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
