"""Sample quality on digits: real held-out images, the autoencoder's three samplers, the VAE.

Run: python benchmarks/bench_samples.py                # seeds 0-2, 2 and 8 components
     python benchmarks/bench_samples.py --max-iter 100 --seeds 0

load_digits scaled to [0, 1], 30% held out (stratified, random_state=0). For each
seed and latent size, an AutoencoderTransformer is fitted with each
latent_sampler ("normal": decode N(0, I) draws; "gaussian", "gmm": decode draws
from a density fitted to the training codes) and a VAETransformer, all with the
same settings (the estimators' defaults at run time unless given; printed).
Every generator, the real held-out images included, gives as many rows as
there are held-out images (540), so recall and coverage compare like with like,
and is measured against the 1,257 training images:

- skae's own measures (``skae.metrics``), on the raw pixels: k-NN precision,
  recall, density and coverage (k=5) and the Fréchet distance; for the models,
  where their latent draws fall against the training codes
  (``latent_coverage``): the share of draws in holes and of codes reached;
- an independent judge: an MLPClassifier trained on the training images (its
  held-out accuracy is printed): the mean top-class probability it gives the
  samples, and the Fréchet distance on its hidden layer.

The table shows means over the seeds. The script checks the claims the docs
make from it (``CLAIMS``) on every seed and latent size, and exits with status
1 when one fails. It also reports, without failing, whether N(0, I) draws
trail on precision too (issue 15 asked for that; k-NN precision does not see
it: see the docs).
"""

import argparse
import re
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

# Measure the skae of this checkout, not another copy that happens to be installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skae import AutoencoderTransformer, VAETransformer  # noqa: E402
from skae.metrics import latent_coverage, sample_quality  # noqa: E402

REAL = "real held-out images"
GENERATORS = {
    REAL: None,
    'AE, latent_sampler="normal"': (AutoencoderTransformer, {"latent_sampler": "normal"}),
    'AE, latent_sampler="gaussian"': (AutoencoderTransformer, {"latent_sampler": "gaussian"}),
    'AE, latent_sampler="gmm"': (AutoencoderTransformer, {"latent_sampler": "gmm"}),
    "VAE": (VAETransformer, {}),
}
NORMAL, GAUSSIAN, VAE = list(GENERATORS)[1], list(GENERATORS)[2], "VAE"
COLUMNS = {
    "top_probability": "judge: top prob",
    "frechet_hidden": "judge: Fréchet (hidden)",
    "precision": "precision",
    "recall": "recall",
    "density": "density",
    "coverage": "coverage",
    "frechet_distance": "Fréchet (pixels)",
    "latent_holes": "draws in holes",
    "latent_reached": "codes reached",
}
# The margin by which N(0, I) draws on an autoencoder must trail a fitted density.
CLEAR_MARGIN = 0.05
# Settings the run states, with the estimators' defaults filled in at run time.
REPORTED_SETTINGS = ("reconstruction_loss", "hidden_layer_sizes", "max_iter", "tol",
                     "early_stopping", "n_iter_no_change", "batch_size", "learning_rate_init")


def digits():
    """``(X_train, X_test, y_train, y_test)``: the digits in [0, 1], 30% held out."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, stratify=y, random_state=0)


def fit_judge(X_train, y_train):
    """The independent judge: an MLPClassifier trained on the real training images."""
    return MLPClassifier(max_iter=1000, random_state=0).fit(X_train, y_train)


def fit_generators(X_train, n_components, seed, settings):
    """Fitted models, by generator name (the real images have none)."""
    models = {}
    for name, spec in GENERATORS.items():
        if spec is None:
            continue
        cls, params = spec
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            models[name] = cls(
                n_components=n_components, random_state=seed, **params, **settings
            ).fit(X_train)
    return models


def measure(data, judge, n_components, seed, settings):
    """Measures of every generator, by name, for one seed and latent size."""
    X_train, X_test = data[0], data[1]
    models = fit_generators(X_train, n_components, seed, settings)
    results = {}
    for name in GENERATORS:
        model = models.get(name)
        samples = X_test if model is None else model.sample(len(X_test), random_state=seed)
        row = sample_quality(X_train, samples)
        row["top_probability"] = float(judge.predict_proba(samples).max(axis=1).mean())
        row["frechet_hidden"] = sample_quality(X_train, samples, features=judge)[
            "frechet_distance"
        ]
        shares = (
            {"holes": np.nan, "reached": np.nan} if model is None
            else latent_coverage(model, X_train, random_state=seed)
        )
        row["latent_holes"], row["latent_reached"] = shares["holes"], shares["reached"]
        results[name] = row
    return results


def _models(results):
    return [name for name in results if name != REAL]


def _real_first(results):
    real = results[REAL]
    for name in _models(results):
        for key in ("recall", "top_probability"):
            if results[name][key] >= real[key]:
                yield f"{name} {key} {results[name][key]:.3f} >= real {real[key]:.3f}"
        for key in ("frechet_distance", "frechet_hidden"):
            if results[name][key] <= real[key]:
                yield f"{name} {key} {results[name][key]:.3f} <= real {real[key]:.3f}"


def _normal_trails(results):
    normal = results[NORMAL]
    for better in (GAUSSIAN, VAE):
        for key in ("recall", "coverage"):
            gap = results[better][key] - normal[key]
            if gap < CLEAR_MARGIN:
                yield f"{NORMAL} {key} is only {gap:+.3f} below {better}"
        for key in ("frechet_distance", "frechet_hidden"):
            if normal[key] <= results[better][key]:
                yield f"{NORMAL} {key} {normal[key]:.3f} is not above {better}'s"


def _normal_lies_near_real(results):
    if results[NORMAL]["precision"] < results[REAL]["precision"]:
        yield f"{NORMAL} precision {results[NORMAL]['precision']:.3f} is below the real images'"


def _coverage_not_first(results):
    best = max(results[name]["coverage"] for name in _models(results))
    if best < results[REAL]["coverage"]:
        yield f"no model's coverage reaches the real images' {results[REAL]['coverage']:.3f}"


def _gmm_closest(results):
    gmm, key = 'AE, latent_sampler="gmm"', "frechet_hidden"
    for name in _models(results):
        if name != gmm and results[name][key] <= results[gmm][key]:
            yield f"{name} {key} {results[name][key]:.3f} <= gmm's {results[gmm][key]:.3f}"


def _gaussian_holes(results):
    gaussian = results[GAUSSIAN]["latent_holes"]
    for name in ('AE, latent_sampler="gmm"', VAE):
        if gaussian <= results[name]["latent_holes"]:
            yield f"{GAUSSIAN} has {gaussian:.3f} of draws in holes, not more than {name}"


#: What the docs say the table shows, each with its check of one seed's results.
CLAIMS = {
    "Recall, both Fréchet distances and the judge's top probability rank the real "
    "held-out images first.": _real_first,
    'The autoencoder decoding N(0, I) draws (latent_sampler="normal") trails the '
    f"autoencoder with a fitted Gaussian and the VAE by at least {CLEAR_MARGIN} in recall "
    "and in coverage, and is farther from the real images in both Fréchet distances.":
    _normal_trails,
    "Its samples still lie near real digits one by one: their precision is at least the "
    "real images'.": _normal_lies_near_real,
    "Coverage does not rank the real images first either: some model's is at least as "
    "high.": _coverage_not_first,
    'The autoencoder with latent_sampler="gmm" is the closest model to the real images in '
    "the judge's Fréchet distance.": _gmm_closest,
    "The autoencoder's single fitted Gaussian puts more of its draws in holes than the "
    "mixture and the VAE.": _gaussian_holes,
}


def claim_failures(results):
    """Which of the docs' claims one seed's results break (an empty list when all hold)."""
    return [failure for check in CLAIMS.values() for failure in check(results)]


def precision_trails(results):
    """Whether N(0, I) draws trail the fitted Gaussian and the VAE by the margin in precision."""
    return all(
        results[better]["precision"] - results[NORMAL]["precision"] >= CLEAR_MARGIN
        for better in (GAUSSIAN, VAE)
    )


def mean_table(per_seed):
    """Means over seeds, by generator and measure."""
    return {
        name: {key: float(np.mean([results[name][key] for results in per_seed])) for key in COLUMNS}
        for name in GENERATORS
    }


def _cell(value, blank=""):
    return blank if np.isnan(value) else f"{value:.3g}" if value >= 10 else f"{value:.3f}"


def markdown_table(means):
    lines = ["| generator | " + " | ".join(COLUMNS.values()) + " |",
             "| --- |" + " ---: |" * len(COLUMNS)]
    for name, row in means.items():
        lines.append(f"| {name} | " + " | ".join(_cell(row[key]) for key in COLUMNS) + " |")
    return "\n".join(lines)


def rst_table(means_by_size, *, title):
    """A list-table of the means, one block of rows per latent size (for the docs)."""
    header = ["n_components", "generator", *COLUMNS.values()]
    lines = [f".. list-table:: {title}", "   :header-rows: 1", "   :widths: auto", ""]
    for row in [header] + [
        [str(k), re.sub(r'(latent_sampler="\w+")', r"``\1``", name),
         *(_cell(values[key], blank="n/a") for key in COLUMNS)]
        for k, means in means_by_size.items()
        for name, values in means.items()
    ]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def run(seeds, sizes, settings, *, verbose=True):
    """``(means by latent size, claims that failed, precision_trails per seed and size)``."""
    X_train, X_test, y_train, y_test = data = digits()
    judge = fit_judge(X_train, y_train)
    if verbose:
        print(f"judge: MLPClassifier, held-out accuracy {judge.score(X_test, y_test):.3f}")
    means, failures, precision_cases = {}, [], []
    for k in sizes:
        per_seed = []
        for seed in seeds:
            results = measure(data, judge, k, seed, settings)
            failures += [f"n_components={k}, seed {seed}: {f}" for f in claim_failures(results)]
            precision_cases.append(precision_trails(results))
            per_seed.append(results)
            if verbose:
                print(f"\nn_components={k}, seed {seed}")
                print(markdown_table(results))
        means[k] = mean_table(per_seed)
    return means, failures, precision_cases


def stated_settings(settings):
    defaults = AutoencoderTransformer().get_params()
    return {name: settings.get(name, defaults[name]) for name in REPORTED_SETTINGS}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-components", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--max-iter", type=int, help="epochs (default: the estimators' default)")
    parser.add_argument("--reconstruction-loss", choices=["mse", "bce"], default="mse")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    settings = {"reconstruction_loss": args.reconstruction_loss, "device": args.device}
    if args.max_iter is not None:
        settings["max_iter"] = args.max_iter
    print("settings of every model:", stated_settings(settings))
    means, failures, precision_cases = run(args.seeds, args.n_components, settings)
    for k, table in means.items():
        print(f"\nMeans over seeds {args.seeds}, n_components={k}:")
        print(markdown_table(table))
    print(f"\nN(0, I) draws on the autoencoder trail its fitted Gaussian and the VAE by "
          f"{CLEAR_MARGIN} in precision in {sum(precision_cases)} of {len(precision_cases)} "
          "runs (not a claim of the docs).")
    if failures:
        print("The docs' claims do NOT hold:")
        print("\n".join(f"- {failure}" for failure in failures))
        return 1
    print("The docs' claims hold on every seed and size:")
    print("\n".join(f"- {claim}" for claim in CLAIMS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
