"""Memory and streaming figures for data that does not fit one dense in-memory fit.

This measures the claims of the "Scaling" documentation (docs/scaling.md):

* **sparse**: a one-epoch ``fit`` of ``AutoencoderTransformer()`` (default
  network) on a 200,000 x 2,000 CSR matrix of density 0.001 (float32; 1.6 GB
  if densified) stays under 600 MB of resident memory above the imports;
* **memmap**: a one-epoch ``fit`` on a read-only ``np.memmap`` of 1,000,000 x
  100 float32 (381 MiB on disk) stays under 2x the data size above the
  imports: the mapped file is read batch by batch, never copied;
* **dense and wide** (no target; the docs report it): a one-epoch ``fit`` on
  100,000 x 2,000 random float32 data, against the size of that data;
* **streaming**: 30 passes of ``partial_fit`` over 5 chunks of the digits
  training set reach a held-out reconstruction error within 1.5x of ``fit``
  with ``max_iter=30``.

Each memory figure comes from a fresh subprocess: the peak resident set size
(``VmHWM``) minus the resident size after the imports and a warm-up fit (so
lazily loaded modules are not counted). The data is built (sparse) or mapped
(memmap) after that baseline, so the figure includes it; mapped file pages the
fit reads count as resident too.

Run ``python benchmarks/bench_scaling.py`` (``--quick`` for a smoke run on small
sizes, ``--device cuda`` on a GPU machine).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# Measure the skae of this checkout, not another copy that happens to be installed.
_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from skae import AutoencoderTransformer, VAETransformer  # noqa: E402

_CHILD_PRELUDE = """
import json, sys, time, warnings
import numpy as np, scipy.sparse as sp
from skae import AutoencoderTransformer

def status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field + " not in /proc/self/status")

warnings.simplefilter("ignore")
device = sys.argv[1]
warm = np.random.default_rng(1).random((64, 8), dtype=np.float32)
AutoencoderTransformer(max_iter=1, device=device, random_state=0).fit(sp.csr_matrix(warm))
AutoencoderTransformer(max_iter=1, device=device, random_state=0).fit(warm)
before = status_bytes("VmRSS")
"""

_SPARSE_CHILD = (
    _CHILD_PRELUDE
    + """
n_rows, n_features, density = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rng = np.random.default_rng(0)
nnz = int(round(n_rows * n_features * density))
rows, cols = rng.integers(0, n_rows, nnz), rng.integers(0, n_features, nnz)
X = sp.csr_matrix(
    (rng.random(nnz, dtype=np.float32), (rows, cols)), shape=(n_rows, n_features)
)
del rows, cols
data = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
start = time.perf_counter()
AutoencoderTransformer(max_iter=1, device=device, random_state=0).fit(X)
seconds = time.perf_counter() - start
print(json.dumps({"data": data, "nnz": X.nnz, "dense": n_rows * n_features * 4,
                  "peak_above_imports": status_bytes("VmHWM") - before, "seconds": seconds}))
"""
)

_MEMMAP_CHILD = (
    _CHILD_PRELUDE
    + """
path, n_rows, n_features = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, n_features))
start = time.perf_counter()
AutoencoderTransformer(max_iter=1, device=device, random_state=0).fit(X)
seconds = time.perf_counter() - start
print(json.dumps({"data": X.nbytes, "peak_above_imports": status_bytes("VmHWM") - before,
                  "seconds": seconds}))
"""
)

_DENSE_CHILD = (
    _CHILD_PRELUDE
    + """
n_rows, n_features = int(sys.argv[2]), int(sys.argv[3])
X = np.random.default_rng(0).standard_normal((n_rows, n_features), dtype=np.float32)
start = time.perf_counter()
AutoencoderTransformer(max_iter=1, device=device, random_state=0).fit(X)
seconds = time.perf_counter() - start
print(json.dumps({"data": X.nbytes, "peak_above_imports": status_bytes("VmHWM") - before,
                  "seconds": seconds}))
"""
)


def _run_child(code, *args, env=None):
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
        cwd=_ROOT,
        env=None if env is None else {**os.environ, **env},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_sparse(n_rows, n_features, density, device="cpu", env=None):
    """Peak resident memory of a one-epoch fit on random CSR data, in a fresh process.

    ``env`` adds environment variables for that process (``MALLOC_ARENA_MAX``).
    Returns a dict with ``data`` (bytes of the CSR arrays), ``dense`` (bytes
    if densified as float32), ``nnz``, ``peak_above_imports`` (bytes) and
    ``seconds`` (the fit's wall time).
    """
    return _run_child(_SPARSE_CHILD, device, n_rows, n_features, density, env=env)


def measure_dense(n_rows, n_features, device="cpu"):
    """Peak resident memory of a one-epoch fit on random dense float32 data, in a fresh process.

    Returns a dict with ``data`` (bytes), ``peak_above_imports``, ``ratio``
    (peak over data) and ``seconds``.
    """
    result = _run_child(_DENSE_CHILD, device, n_rows, n_features)
    result["ratio"] = result["peak_above_imports"] / result["data"]
    return result


def measure_memmap(n_rows, n_features, device="cpu", directory=None):
    """Peak resident memory of a one-epoch fit on a read-only float32 memmap.

    The file is written here, in this process, and mapped in a fresh one.
    Returns a dict with ``data`` (bytes), ``peak_above_imports``, ``ratio``
    (peak over data) and ``seconds``.
    """
    with tempfile.TemporaryDirectory(dir=directory) as folder:
        path = Path(folder) / "X.f32"
        X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, n_features))
        rng = np.random.default_rng(0)
        for start in range(0, n_rows, 100_000):
            stop = min(start + 100_000, n_rows)
            X[start:stop] = rng.standard_normal((stop - start, n_features), dtype=np.float32)
        X.flush()
        del X
        result = _run_child(_MEMMAP_CHILD, device, path, n_rows, n_features)
    result["ratio"] = result["peak_above_imports"] / result["data"]
    return result


def streaming_comparison(cls, n_passes=30, n_chunks=5, device="cpu", **params):
    """Held-out reconstruction MSE of ``partial_fit`` streaming against ``fit``.

    Digits scaled to [0, 1], 30% held out (stratified, ``random_state=0``).
    ``fit`` runs ``max_iter=n_passes`` epochs; the streamed model makes
    ``n_passes`` passes of one ``partial_fit`` per chunk over ``n_chunks``
    chunks of the training rows. Returns ``{"fit": mse, "partial_fit": mse,
    "ratio": partial_fit / fit}``.
    """
    digits = load_digits()
    X_train, X_test = train_test_split(
        digits.data / 16, test_size=0.3, stratify=digits.target, random_state=0
    )

    def held_out_mse(model):
        return float(np.mean((model.inverse_transform(model.transform(X_test)) - X_test) ** 2))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = cls(max_iter=n_passes, random_state=0, device=device, **params).fit(X_train)
    streamed = cls(random_state=0, device=device, **params)
    chunks = np.array_split(X_train, n_chunks)
    for _ in range(n_passes):
        for chunk in chunks:
            streamed.partial_fit(chunk)
    result = {"fit": held_out_mse(fitted), "partial_fit": held_out_mse(streamed)}
    result["ratio"] = result["partial_fit"] / result["fit"]
    return result


def _print_dense_memory(kind, shape, result, limit=""):
    MiB = 2**20
    print(
        f"{kind} {shape[0]:,} x {shape[1]:,} float32 ({result['data'] / MiB:.0f} MiB): one-epoch fit "
        f"peaks at {result['peak_above_imports'] / MiB:.0f} MiB above the imports, "
        f"{result['ratio']:.2f}x the data{limit}, {result['seconds']:.1f} s"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the sparse fit")
    args = parser.parse_args(argv)
    MiB = 2**20

    sparse_shape = (20_000, 2_000, 0.001) if args.quick else (200_000, 2_000, 0.001)
    # Before apply_in_chunks stopped keeping a piece per chunk, glibc's heap grew
    # by about an inference chunk per chunk and the peak varied from run to run
    # (less with one malloc arena); the runs with MALLOC_ARENA_MAX=1 show that
    # the figure no longer depends on it.
    for env in ({}, {"MALLOC_ARENA_MAX": "1"}) * args.repeats:
        sparse = measure_sparse(*sparse_shape, device=args.device, env=env)
        print(
            f"sparse {sparse_shape[0]:,} x {sparse_shape[1]:,} CSR, density "
            f"{sparse_shape[2]:g} ({sparse['nnz']:,} stored values, "
            f"{sparse['data'] / MiB:.1f} MiB; {sparse['dense'] / MiB:,.0f} MiB dense)"
            f"{' with ' + str(env) if env else ''}: one-epoch fit peaks at "
            f"{sparse['peak_above_imports'] / MiB:.0f} MiB above the imports "
            f"(limit 600 MB), {sparse['seconds']:.1f} s"
        )

    memmap_shape = (100_000, 100) if args.quick else (1_000_000, 100)
    memmap = measure_memmap(*memmap_shape, device=args.device)
    _print_dense_memory("read-only memmap", memmap_shape, memmap, limit=" (limit 2x)")
    dense_shape = (10_000, 2_000) if args.quick else (100_000, 2_000)
    _print_dense_memory("dense", dense_shape, measure_dense(*dense_shape, device=args.device))

    for cls in (AutoencoderTransformer, VAETransformer):
        streaming = streaming_comparison(cls, n_passes=3 if args.quick else 30, device=args.device)
        print(
            f"streaming {cls.__name__} (default network), digits held-out MSE: fit "
            f"{streaming['fit']:.5f}, partial_fit {streaming['partial_fit']:.5f}, "
            f"ratio {streaming['ratio']:.3f} (limit 1.5)"
        )


if __name__ == "__main__":
    main()
