"""What a new user sees in the first hour: the README's commands and grid search, timed.

Run from the repository root:
    python benchmarks/bench_first_hour.py                   # all parts, about 5 minutes quiet
    python benchmarks/bench_first_hour.py --parts grid      # one part

Parts, each in a fresh Python process as a user would run it:

- ``quickstart``: ``python -m skae compare --n-components 2 8``, the README's
  first command; prints its table and wall time (``--write-image`` copies its
  latent_spaces.png to docs/images/, the README's picture).
- ``cli``: ``python -m skae compare --dataset digits`` and ``--dataset wine``
  with default options; wall time and the number of warnings printed.
- ``startup``: how much of the first skae fit in a process is torch's one-time
  start-up: a one-epoch fit of digits, twice, in a fresh process.
- ``grid``: the code block of README.md's section "In a Pipeline and a grid
  search", run as it stands; prints the mean 5-fold accuracy of every reducer
  and latent size, the winner, the ELBO search's choice, the wall time and the
  number of warnings it printed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("quickstart", "cli", "startup", "grid")

_STARTUP = """
import time
from sklearn.datasets import load_digits
from skae import AutoencoderTransformer
X = load_digits().data / 16
for label in ("first fit in the process", "second fit"):
    start = time.perf_counter()
    AutoencoderTransformer(2, max_iter=1, tol=0, random_state=0).fit(X)
    print(f"{label}: {time.perf_counter() - start:.2f} s (one epoch of 1797 digits)")
"""

_GRID_RESULTS = """
import pandas as pd
results = pd.DataFrame({
    "reducer": [type(r).__name__ for r in grid.cv_results_["param_reduce"]],
    "n_components": grid.cv_results_["param_reduce__n_components"].astype(int),
    "accuracy": grid.cv_results_["mean_test_score"],
})
print(results.pivot(index="reducer", columns="n_components", values="accuracy").round(3)
      .to_string())
print("best:", type(grid.best_params_["reduce"]).__name__,
      grid.best_params_["reduce__n_components"], f"accuracy {grid.best_score_:.3f}")
print("ELBO search: n_components", search.best_params_["n_components"])
"""


def run(command, **kwargs):
    """Run ``command`` in the repository root; return (stdout, stderr, wall seconds)."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, **kwargs)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return result.stdout, result.stderr, seconds


def count_warnings(stderr):
    return len(re.findall(r"^\S.*Warning: ", stderr, flags=re.MULTILINE))


def skae_compare(*args, keep=None):
    """Run ``python -m skae compare``; ``keep`` copies its latent_spaces.png there."""
    with tempfile.TemporaryDirectory() as out:
        stdout, stderr, seconds = run([sys.executable, "-m", "skae", "compare", *args, "--out", out])
        if keep is not None:
            shutil.copyfile(os.path.join(out, "latent_spaces.png"), keep)
        # The folder is this run's own: show it as the placeholder a reader expects.
        return stdout.replace(out, "/tmp/tmpXXXXXXXX"), stderr, seconds


def quickstart(args):
    keep = os.path.join(ROOT, "docs", "images", "latent_spaces.png") if args.write_image else None
    stdout, stderr, seconds = skae_compare("--n-components", "2", "8", keep=keep)
    print("$ skae compare --n-components 2 8")
    print(stdout)
    print(f"wall time: {seconds:.1f} s; warnings printed: {count_warnings(stderr)}\n")


def cli(args):
    for dataset in ("digits", "wine"):
        stdout, stderr, seconds = skae_compare("--dataset", dataset)
        notes = [line for line in stdout.splitlines() if line.startswith("note:")]
        print(f"python -m skae compare --dataset {dataset}: {seconds:.1f} s wall, "
              f"{count_warnings(stderr)} warnings printed, {len(notes)} notes")
    print()


def startup(args):
    stdout, _, _ = run([sys.executable, "-c", _STARTUP])
    print(stdout)


def readme_grid_code():
    """The first python block after README.md's heading "In a Pipeline and a grid search"."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        text = file.read()
    section = text[text.index("## In a Pipeline and a grid search"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


def grid(args):
    stdout, stderr, seconds = run([sys.executable, "-c", readme_grid_code() + _GRID_RESULTS])
    print("README grid search (GridSearchCV, 5-fold, mean accuracy):")
    print(stdout)
    print(f"wall time: {seconds:.1f} s; warnings printed: {count_warnings(stderr)}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--write-image", action="store_true",
                        help="copy the quickstart's latent_spaces.png to docs/images/ (the "
                             "README's picture)")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPU cores")
    for part in args.parts:
        globals()[part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
