"""compare_reducers and the `skae compare` command line."""

import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from skae import compare_reducers  # noqa: E402
from skae.cli import main  # noqa: E402
from skae.compare import COLUMNS  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(max_iter=3, hidden_layer_sizes=(8,), device="cpu")


def test_compare_reducers_on_digits(digits):
    X, y = digits
    table = compare_reducers(X, y, n_components=(2, 4), random_state=0, **FAST)
    assert list(table.columns) == COLUMNS
    assert list(table["reducer"]) == ["PCA"] * 2 + ["AutoencoderTransformer"] * 2 + ["VAETransformer"] * 2
    assert list(table["n_components"]) == [2, 4] * 3
    assert (table["downstream_metric"] == "accuracy").all()
    numeric = table[["reconstruction_mse", "trustworthiness", "downstream_score"]].to_numpy()
    assert np.isfinite(numeric).all()
    assert ((table["trustworthiness"] > 0) & (table["trustworthiness"] <= 1)).all()
    # PCA's error falls with more components.
    pca = table[table["reducer"] == "PCA"]["reconstruction_mse"].to_numpy()
    assert pca[1] < pca[0]


def test_compare_reducers_regression_and_custom_reducers():
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(80, 2))
    X = latent @ rng.normal(size=(2, 5)) + rng.normal(scale=0.05, size=(80, 5))
    y = latent[:, 0] * 2 + rng.normal(scale=0.1, size=80)
    from sklearn.decomposition import PCA

    table = compare_reducers(X, y, reducers={"pca": PCA()}, n_components=[3], random_state=0)
    assert table["downstream_metric"].tolist() == ["r2"]
    assert table["downstream_score"].iloc[0] > 0.5


def test_compare_reducers_skips_impossible_sizes_with_a_warning():
    X = np.random.RandomState(0).normal(size=(12, 3))  # fewer rows than a batch
    with pytest.warns(UserWarning, match="PCA with n_components=8 was skipped"):
        table = compare_reducers(X, n_components=(2, 8), random_state=0, **FAST)
    assert ("PCA", 8) not in set(zip(table["reducer"], table["n_components"]))
    assert len(table) == 5
    assert table["downstream_metric"].isna().all()


def test_cli_on_digits(tmp_path, capsys):
    assert main(["compare", "--n-components", "2", "--max-iter", "2", "--device", "cpu",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "VAETransformer" in out and "comparison.csv" in out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["comparison.csv", "latent_spaces.png", "loss_curves.png",
                       "reconstructions.png", "samples.png"]
    assert len(pd.read_csv(tmp_path / "comparison.csv")) == 3


def test_cli_on_a_mixed_csv_with_a_target(tmp_path, capsys):
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({
        "height": rng.normal(170, 10, 30),
        "count": rng.randint(0, 5, 30),
        "ratio": rng.uniform(size=30),
        "kind": rng.choice(["a", "b"], 30),
    })
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    code = main(["compare", str(path), "--target", "kind", "--n-components", "2",
                 "--max-iter", "2", "--device", "cpu", "--out", str(tmp_path / "out")])
    assert code == 0
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert (table["downstream_metric"] == "accuracy").all()
    assert (tmp_path / "out" / "latent_spaces.png").exists()
    assert not (tmp_path / "out" / "samples.png").exists()  # tabular: no image grids


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d: ["compare", str(d / "missing.csv")], "no such file"),
        (lambda d: ["compare", str(d / "text.csv")], "not numeric"),
        (lambda d: ["compare", str(d / "ok.csv"), "--target", "nope"], "target column 'nope'"),
        (lambda d: ["compare", "--device", "tpu"], "device='tpu'"),
        (lambda d: ["compare", "--n-components", "0"], "positive"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, make_args, message):
    pd.DataFrame({"a": [1.0, 2, 3, 4], "b": ["x", "y", "z", "w"]}).to_csv(tmp_path / "text.csv",
                                                                       index=False)
    pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 0, 1, 0]}).to_csv(tmp_path / "ok.csv", index=False)
    assert main(make_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_python_dash_m_skae(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "skae", "compare", str(tmp_path / "missing.csv")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_compare_reducers_reports_sample_quality_for_reducers_that_sample(digits):
    from sklearn.mixture import GaussianMixture

    from skae.metrics import _sampling_scores

    X, y = digits
    table = compare_reducers(X, y, n_components=(2,), random_state=0, **FAST)
    sampling = ["sample_precision", "sample_recall", "sample_coverage", "latent_holes",
                "latent_reached"]
    pca = table[table["reducer"] == "PCA"][sampling].to_numpy()
    assert np.isnan(pca).all()  # PCA cannot sample
    models = table[table["reducer"] != "PCA"][sampling].to_numpy()
    assert np.isfinite(models).all() and ((models >= 0) & (models <= 1)).all()
    # scikit-learn's mixtures sample too (without random_state, returning labels as well).
    mixture = GaussianMixture(2, random_state=0).fit(X[:300])
    scores = _sampling_scores(mixture, X[:300], X[300:])
    assert 0 <= scores["sample_coverage"] <= 1 and np.isnan(scores["latent_holes"])
