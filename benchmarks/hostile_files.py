"""Load every hostile file of ``tests/hostile_files.py`` in a guarded worker; count outcomes per class.

Each file is loaded in a worker process with a memory limit, so that a crash
(SIGSEGV, abort), a hang or a runaway allocation is recorded instead of taking
the measurement down. A file that loads is then used as a user would
(transform, inverse_transform, score_samples, sample, and ``partial_fit``,
which runs the fused Adam kernel on the loaded optimiser state) and compared
with its base model. Outcomes:

- ``refused``: ``skae.load`` raised a ValueError;
- ``loaded_same``: it loaded and behaves exactly as the base model;
- ``loaded_differs``: it loaded silently with other behaviour;
- ``error_at_load:<type>`` / ``error_at_use:<type>``: another exception;
- ``crash:<signal>``, ``timeout``, ``memory``: the worker died, hung or ran out.

The report counts, per class of attack and per family the issue counted
(61 tensor edits, 200 header digit edits, 300 header byte flips, 18 planted
pickles), the files refused with a ValueError naming the field (the case's
``match``), and every other outcome. For refused files it also reports the
slowest refusal and the largest peak of
memory allocated during a refusal (``tracemalloc``: Python objects and NumPy
arrays) relative to the file's size.

Usage::

    python benchmarks/hostile_files.py                     # this checkout's skae
    python benchmarks/hostile_files.py --skae-path DIR     # another skae (DIR holds the package)

With ``--skae-path`` pointing at a checkout of an older skae whose writer has no
``persistence._file_bytes``, the corpus is sealed the way that version's files are.
"""

import argparse
import collections
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 4 << 30  # address space a child may add to what it inherits, bytes


def _install_old_writer(persistence):
    """A ``_file_bytes`` for skae versions before issue 16 (a checksum over the tensors only)."""
    from safetensors.numpy import save

    def file_bytes(document, arrays):
        checksum = json.dumps(persistence._checksum(arrays))
        if isinstance(document, str):  # a JSON text (too deep for json)
            text = '{"checksum": ' + checksum + ", " + document[1:]
        else:
            text = json.dumps({**document, "checksum": json.loads(checksum)})
        return save(arrays, metadata={"skae": text})

    persistence._file_bytes = file_bytes


# ------------------------------------------------------------------ worker


def _worker(base_paths, timeout):
    """Read ``[path, base]`` lines; for each, fork a child that loads and uses the file; print its result.

    Each file gets a fresh child (forked from a process that has imported torch
    and loaded the base models), so memory corrupted by one file cannot crash
    the next one, and each child gets its own memory limit and time limit.
    """
    import warnings

    import numpy as np
    import torch

    import skae

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # no thread pool: forking stays safe
    # Results go to the real stdout; anything the loaded models print (verbose=1) to stderr.
    results = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.insert(0, str(ROOT / "tests"))
    from hostile_files import PAYLOAD_MARKER, base_data

    os.chdir(tempfile.mkdtemp(prefix="skae-hostile-worker-"))
    X = base_data()

    def behaviour(est):
        Z = est.transform(X)
        out = [Z, est.inverse_transform(Z), est.score_samples(X), est.sample(5, random_state=0)]
        est.partial_fit(X)
        return out + [est.transform(X)]

    reference = {name: behaviour(skae.load(path)) for name, path in base_paths.items()}
    print("ready", file=results, flush=True)
    for line in sys.stdin:
        path, base = json.loads(line)
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read_end)
            result = _run_case(path, lambda est: behaviour(est), reference[base], np)
            os.write(write_end, json.dumps(result).encode())
            os._exit(0)
        os.close(write_end)
        result = _wait(child, read_end, timeout)
        if os.path.exists(PAYLOAD_MARKER):
            result["outcome"] = "PAYLOAD_RAN"
            os.rmdir(PAYLOAD_MARKER)
        print(json.dumps(result), file=results, flush=True)


def _run_case(path, behaviour, reference, np):
    import resource
    import tracemalloc

    import skae

    # The child may allocate up to MEMORY_LIMIT beyond what it inherited.
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (used + MEMORY_LIMIT, used + MEMORY_LIMIT))
    size = os.path.getsize(path) if os.path.isfile(path) else 0
    result = {"size": size}
    start = time.perf_counter()
    try:
        est = skae.load(path)
    except ValueError as exc:
        result.update(outcome="refused", message=str(exc)[:300], full_message=str(exc)[:5000])
    except MemoryError:
        result.update(outcome="memory")
    except Exception as exc:  # noqa: BLE001 - recorded, that is the point
        result.update(outcome=f"error_at_load:{type(exc).__name__}", message=str(exc)[:300])
    else:
        try:
            same = all(np.array_equal(a, b) for a, b in zip(behaviour(est), reference))
            result["outcome"] = "loaded_same" if same else "loaded_differs"
        except MemoryError:
            result.update(outcome="memory_at_use")
        except Exception as exc:  # noqa: BLE001
            result.update(outcome=f"error_at_use:{type(exc).__name__}", message=str(exc)[:300])
    result["seconds"] = time.perf_counter() - start
    if result["outcome"] == "refused":
        tracemalloc.start()
        try:
            skae.load(path)
        except ValueError:
            pass
        result["peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result


def _wait(child, read_end, timeout):
    """The child's result, or what killed it."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(child, 9)
            os.waitpid(child, 0)
            os.close(read_end)
            return {"outcome": "timeout"}
        chunk = os.read(read_end, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(child, 0)
    if chunks and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return json.loads(b"".join(chunks))
    if os.WIFSIGNALED(status):
        return {"outcome": f"crash:{signal.Signals(os.WTERMSIG(status)).name}"}
    return {"outcome": "memory" if os.WEXITSTATUS(status) == 1 else f"exit:{os.WEXITSTATUS(status)}"}


# ------------------------------------------------------------------ parent


class _Worker:
    def __init__(self, python_path, base_paths, timeout):
        env = dict(os.environ, PYTHONPATH=python_path)
        self.process = subprocess.Popen(
            [sys.executable, "-u", __file__, "--worker", json.dumps({k: str(v) for k, v in base_paths.items()}),
             "--timeout", str(timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def run(self, path, base):
        self.process.stdin.write(json.dumps([str(path), base]) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skae-path", default=str(ROOT), help="folder holding the skae package to test")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per file before it counts as a hang")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(json.loads(args.worker), args.timeout)

    sys.path[:0] = [args.skae_path, str(ROOT / "tests")]
    from skae import __file__ as skae_file
    from skae import persistence

    if not hasattr(persistence, "_file_bytes"):
        _install_old_writer(persistence)
    import hostile_files

    print(f"skae from {Path(skae_file).parent}")
    directory = Path(tempfile.mkdtemp(prefix="skae-hostile-"))
    files = hostile_files.make_base_files(directory / "base")
    corpus = [(case, hostile_files.write_case(case, files, directory)) for case in hostile_files.cases(files)]
    worker = _Worker(args.skae_path, files, args.timeout)
    results = collections.defaultdict(list)
    for case, path in corpus:
        result = worker.run(path, case.base)
        result.update(name=case.name, expect=case.expect, attack=case.attack, family=case.family, match=case.match)
        results[case.attack].append(result)
    worker.close()

    for result in (r for rs in results.values() for r in rs):
        result["column"] = _column(result)
    print("\nper class of attack (tests/hostile_files.py ATTACKS):")
    _table({attack: results[attack] for attack in hostile_files.ATTACKS})
    print("\nthe families the issue counted (Case.family):")
    families = collections.defaultdict(list)
    for r in (r for rs in results.values() for r in rs):
        if r["family"]:
            families[r["family"]].append(r)
    _table(families)
    total = [r for rs in results.values() for r in rs]
    print(f"\nall: {len(total)} files, {sum(r['column'] == 'refused' for r in total)} refused with a ValueError "
          "naming the field")

    refusals = [r for r in total if r["outcome"] == "refused"]
    if refusals:
        slowest = max(refusals, key=lambda r: r["seconds"])
        print(f"\nslowest refusal: {slowest['seconds']:.3f} s ({slowest['name']}, {slowest['size']:,} bytes)")
        large = [r for r in refusals if r["size"] >= 1 << 20]
        if large:
            worst = max(large, key=lambda r: r["peak_bytes"] / r["size"])
            print(
                f"largest allocation while refusing a file of 1 MB or more: {worst['peak_bytes'] / worst['size']:.2f} "
                f"x its size ({worst['name']}: {worst['peak_bytes']:,} bytes for {worst['size']:,})"
            )
        small = [r for r in refusals if r["size"] < 1 << 20]
        worst = max(small, key=lambda r: r["peak_bytes"])
        print(
            f"largest allocation while refusing a smaller file: {worst['peak_bytes']:,} bytes "
            f"({worst['name']}, {worst['size']:,} bytes)"
        )
    print("\nnot refused with a ValueError naming the field:")
    for r in total:
        if r["column"] != "refused":
            print(f"  {r['attack']}/{r['name']}: {r['outcome']} (expected: {r['expect']}) {r.get('message', '')[:120]}")


# The table's columns: what happened to a file, from the worker's outcome.
COLUMNS = {
    "refused": "ValueError naming the field",
    "refused_unnamed": "ValueError, field not named",
    "valid": "valid file, clear ValueError or none in use",
    "loaded_changed": "loaded, silently changed",
    "loaded_same": "loaded, unchanged",
    "other_exception": "other exception",
    "crash": "crash, hang or out of memory",
}


def _column(result):
    outcome = result["outcome"]
    if outcome == "refused":
        named = result["match"] is None or re.search(result["match"], result.get("full_message", ""))
        return "refused" if named else "refused_unnamed"
    if result["expect"] == "valid" and outcome in ("loaded_same", "loaded_differs", "error_at_use:ValueError"):
        return "valid"
    if outcome in ("loaded_differs", "loaded_same"):
        return "loaded_changed" if outcome == "loaded_differs" else "loaded_same"
    if outcome.startswith(("error_at_load", "error_at_use")):
        return "other_exception"
    return "crash"


def _table(groups):
    """Print ``{name: results}`` as rows of tried and one count per column."""
    print(f"  {'':<20} {'tried':>5}  " + "  ".join(f"{i + 1:>3}" for i in range(len(COLUMNS))))
    for name, rows in groups.items():
        counts = collections.Counter(r["column"] for r in rows)
        print(f"  {name:<20} {len(rows):>5}  " + "  ".join(f"{counts[c]:>3}" for c in COLUMNS))
    print("  columns: " + "; ".join(f"{i + 1} {label}" for i, label in enumerate(COLUMNS.values())))

if __name__ == "__main__":
    main()
