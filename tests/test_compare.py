"""compare_reducers and the `skae compare` command line."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402
from sklearn.datasets import load_diabetes, load_digits, load_wine  # noqa: E402

from skae import compare_reducers  # noqa: E402
from skae import cli  # noqa: E402
from skae.cli import main  # noqa: E402
from skae.compare import COLUMNS, resolve_task, sizes_to_compare  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = dict(max_iter=3, hidden_layer_sizes=(8,), device="cpu")


def test_compare_reducers_on_digits(digits):
    X, y = digits
    table = compare_reducers(X, y, n_components=(2, 4), random_state=0, **FAST)
    assert list(table.columns) == COLUMNS
    assert list(table["reducer"]) == ["PCA"] * 2 + ["AutoencoderTransformer"] * 2 + ["VAETransformer"] * 2
    assert list(table["n_components"]) == [2, 4] * 3
    assert (table["downstream_metric"] == "accuracy").all()
    numeric = table[["reconstruction_mse", "mse_vs_mean", "trustworthiness", "downstream_score"]]
    assert np.isfinite(numeric.to_numpy()).all()
    assert ((table["trustworthiness"] > 0) & (table["trustworthiness"] <= 1)).all()
    # PCA's error falls with more components, and beats the mean's.
    pca = table[table["reducer"] == "PCA"]
    assert pca["reconstruction_mse"].iloc[1] < pca["reconstruction_mse"].iloc[0]
    assert (pca["mse_vs_mean"] < 1).all() and (pca["note"] == "").all()
    # Three epochs do not converge: said in the table, not as a warning.
    skae_rows = table[table["reducer"] != "PCA"]
    assert skae_rows["note"].str.contains("stopped at max_iter").all()


def test_compare_reducers_regression_and_custom_reducers():
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(80, 2))
    X = latent @ rng.normal(size=(2, 5)) + rng.normal(scale=0.05, size=(80, 5))
    y = latent[:, 0] * 2 + rng.normal(scale=0.1, size=80)
    from sklearn.decomposition import PCA

    table = compare_reducers(X, y, reducers={"pca": PCA()}, n_components=[3], random_state=0)
    assert table["downstream_metric"].tolist() == ["r2"]
    assert table["downstream_score"].iloc[0] > 0.5


class MeanReducer(TransformerMixin, BaseEstimator):
    """Codes of zeros; every reconstruction is the training mean."""

    def __init__(self, n_components=2):
        self.n_components = n_components

    def fit(self, X, y=None):
        self.mean_ = np.asarray(X).mean(axis=0)
        return self

    def transform(self, X):
        return np.zeros((len(X), self.n_components))

    def inverse_transform(self, Z):
        return np.tile(self.mean_, (len(Z), 1))


def test_a_model_no_better_than_the_mean_is_flagged():
    from sklearn.decomposition import PCA

    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 6)) + rng.normal(scale=0.1, size=(300, 6))
    table = compare_reducers(X, reducers={"mean": MeanReducer(), "pca": PCA()}, n_components=[2],
                             random_state=0)
    mean_row, pca_row = table.iloc[0], table.iloc[1]
    assert mean_row["mse_vs_mean"] == pytest.approx(1.0)
    assert mean_row["note"] == "no better than the mean"
    assert pca_row["mse_vs_mean"] < 0.05 and pca_row["note"] == ""


def test_sizes_not_smaller_than_the_features_are_skipped_for_every_reducer():
    X = np.random.RandomState(0).normal(size=(40, 3))
    with pytest.warns(UserWarning, match=r"n_components=3, 8 skipped for every reducer: not "
                                         r"smaller than the 3 features"):
        table = compare_reducers(X, n_components=(2, 3, 8), random_state=0, **FAST)
    assert list(table["n_components"]) == [2, 2, 2]
    assert table["downstream_metric"].isna().all()
    assert sizes_to_compare([16, 2, 8, 2, 13], 13) == ([2, 8], [16, 13])


def test_a_size_one_reducer_cannot_fit_is_skipped_for_it_alone():
    X = np.random.RandomState(0).normal(size=(10, 12))  # 7 training rows: PCA stops at 7
    with pytest.warns(UserWarning, match="PCA with n_components=8 was skipped"):
        table = compare_reducers(X, n_components=(8,), test_size=0.3, random_state=0, **FAST)
    assert list(table["reducer"]) == ["AutoencoderTransformer", "VAETransformer"]


def test_return_estimator_gives_the_fitted_models(digits):
    X, y = digits
    table = compare_reducers(X, y, n_components=[2], random_state=0, return_estimator=True,
                             **FAST)
    assert list(table.columns) == COLUMNS + ["estimator"]
    for model, k in zip(table["estimator"], table["n_components"]):
        assert model.transform(X[:3]).shape == (3, k)


def test_progress_may_be_the_callers_bar(digits):
    X, y = digits

    class Bar:
        count = 0

        def update(self, n):
            self.count += n

        def set_postfix_str(self, text):
            self.text = text

    bar = Bar()
    compare_reducers(X, y, n_components=[2, 3], random_state=0, progress=bar, **FAST)
    assert bar.count == 6 and bar.text == "VAETransformer n_components=3"


@pytest.mark.parametrize(
    "y, expected",
    [
        (load_diabetes().target, "regression"),  # whole numbers as floats, 214 distinct values
        (load_wine().target.astype(float), "classification"),
        (load_digits().target, "classification"),
        (np.arange(200) % 2 * 1.0, "classification"),  # binary, as floats
        (np.where(np.arange(30) % 3, "cat", "dog"), "classification"),  # text
        (np.arange(30) % 2 == 0, "classification"),  # booleans
        (np.linspace(0, 1, 50), "regression"),
        (np.arange(50) % 5 + 0.5, "regression"),  # few values, but not whole numbers
        (np.arange(40) % 4, "classification"),  # a handful of labels in a small table
        (np.arange(3000) % 40, "classification"),  # 40 classes over 3,000 rows
        (np.arange(3000) % 400, "regression"),  # 400 distinct whole numbers over 3,000 rows
    ],
)
def test_the_task_is_decided_from_the_target(y, expected):
    assert resolve_task(y) == expected


def test_the_task_can_be_given_and_is_checked():
    y = load_diabetes().target
    assert resolve_task(y, "classification") == "classification"
    assert resolve_task(np.array([0, 1, 0, 1]), "regression") == "regression"
    assert resolve_task(None) is None
    with pytest.raises(ValueError, match="task must be one of"):
        resolve_task(y, "clustering")
    with pytest.raises(ValueError, match="needs a numeric target, got values such as 'a'"):
        resolve_task(np.array(["a", "b", "a"]), "regression")
    with pytest.raises(ValueError, match="needs a target y"):
        resolve_task(None, "regression")
    with pytest.raises(ValueError, match="NaN"):
        resolve_task(np.array([1.0, np.nan, 2.0]))


def test_compare_reducers_on_diabetes_is_a_regression():
    from sklearn.decomposition import PCA

    X, y = load_diabetes(return_X_y=True)
    table = compare_reducers(X, y, reducers=[PCA()], n_components=[2, 8], random_state=0)
    assert (table["downstream_metric"] == "r2").all()
    assert (table["downstream_score"] > 0.2).all()  # about 0.4 and 0.5; accuracy was 0.0075
    with pytest.warns(UserWarning, match="could represent a regression"):  # scikit-learn agrees
        forced = compare_reducers(X, y, reducers=[PCA()], n_components=[2],
                                  task="classification", random_state=0)
    assert forced["downstream_metric"].tolist() == ["accuracy"]


def test_cli_on_digits(tmp_path, capsys):
    assert main(["compare", "--n-components", "2", "--max-iter", "2", "--device", "cpu",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"skae compare: writing to {tmp_path}\n")
    assert "target: classification (10 classes)" in out
    assert "VAETransformer" in out and "comparison.csv" in out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["comparison.csv", "latent_spaces.png", "loss_curves.png",
                       "reconstructions.png", "samples.png"]
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert list(table.columns) == COLUMNS and len(table) == 3


def test_cli_fits_each_model_once_for_the_table_and_the_pictures(tmp_path, monkeypatch):
    from sklearn.decomposition import PCA

    from skae import AutoencoderTransformer, VAETransformer

    fits = []
    for cls in (PCA, AutoencoderTransformer, VAETransformer):
        def counted(self, X, y=None, _fit=cls.fit):
            fits.append((type(self).__name__, self.n_components))
            return _fit(self, X, y)

        monkeypatch.setattr(cls, "fit", counted)
    assert main(["compare", "--n-components", "2", "3", "--max-iter", "2", "--device", "cpu",
                 "--out", str(tmp_path)]) == 0
    assert sorted(fits) == sorted(
        (name, k) for name in ("PCA", "AutoencoderTransformer", "VAETransformer") for k in (2, 3)
    )
    assert len(list(tmp_path.glob("*.png"))) == 4


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
    code = main(["compare", str(path), "--target", "kind", "--n-components", "2", "3", "8",
                 "--max-iter", "2", "--device", "cpu", "--out", str(tmp_path / "out")])
    assert code == 0
    out, err = capsys.readouterr()
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    # Besides the skipped sizes, only the explanations of the table's flags: the fits'
    # warnings (2 epochs: "stopped at max_iter") became flags, and nothing reached stderr.
    assert notes[0] == "note: n_components 3 8 skipped for every reducer: not smaller than the 3 features"
    assert {line.split("'")[1] for line in notes[1:]} <= set(cli._FLAGS)
    flags = pd.read_csv(tmp_path / "out" / "comparison.csv")["note"].dropna()
    assert flags.str.contains("stopped at max_iter").all() and len(flags) == 2  # the AE and the VAE
    assert "Warning" not in err
    table = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert list(table["n_components"]) == [2, 2, 2]
    assert (table["downstream_metric"] == "accuracy").all()
    assert (tmp_path / "out" / "latent_spaces.png").exists()
    assert not (tmp_path / "out" / "samples.png").exists()  # tabular: no image grids


def test_cli_decides_and_prints_the_task(tmp_path, capsys):
    args = ["compare", "--dataset", "diabetes", "--n-components", "2", "--max-iter", "2",
            "--device", "cpu", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "target: regression (214 distinct values)" in out and "decided from its values" in out
    assert (pd.read_csv(tmp_path / "comparison.csv")["downstream_metric"] == "r2").all()
    assert main([*args, "--task", "classification"]) == 0
    out = capsys.readouterr().out
    assert "target: classification (214 classes)" in out and "as --task says" in out
    # scikit-learn's own warning, as a one-line note
    assert "note: The number of unique classes is greater than 50%" in out
    assert (pd.read_csv(tmp_path / "comparison.csv")["downstream_metric"] == "accuracy").all()


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda d: ["compare", str(d / "missing.csv")], "no such file"),
        (lambda d: ["compare", str(d / "text.csv")], "not numeric"),
        (lambda d: ["compare", str(d / "ok.csv"), "--target", "nope"], "target column 'nope'"),
        (lambda d: ["compare", str(d / "ok.csv"), "--task", "regression"], "needs a target"),
        (lambda d: ["compare", str(d / "text.csv"), "--target", "b", "--task", "regression"],
         "needs a numeric target"),
        (lambda d: ["compare", "--device", "tpu"], "device='tpu'"),
        (lambda d: ["compare", "--n-components", "0"], "positive"),
        (lambda d: ["compare", "--dataset", "iris", "--n-components", "4", "8"],
         "no --n-components smaller than the 4 features"),
        (lambda d: ["compare", "--out", str(d / "ok.csv")], "is a file"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, make_args, message):
    pd.DataFrame({"a": [1.0, 2, 3, 4], "b": ["x", "y", "z", "w"]}).to_csv(tmp_path / "text.csv",
                                                                       index=False)
    pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 0, 1, 0]}).to_csv(tmp_path / "ok.csv", index=False)
    assert main(make_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


_FAST_ERROR = """
import sys, time
start = time.perf_counter()
from skae.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "sklearn", "pandas", "numpy") if m in sys.modules)
print(code, time.perf_counter() - start, ",".join(heavy) or "-")
"""


@pytest.mark.parametrize("argument", ["missing.csv", "bad_target", "bad_device", "bad_size"])
def test_cli_answers_a_bad_argument_before_loading_torch(tmp_path, argument):
    (tmp_path / "ok.csv").write_text("a,b\n1,2\n3,4\n")
    args = {
        "missing.csv": ["compare", str(tmp_path / "missing.csv")],
        "bad_target": ["compare", str(tmp_path / "ok.csv"), "--target", "c"],
        "bad_device": ["compare", "--device", "gpu"],
        "bad_size": ["compare", "--n-components", "-1"],
    }[argument]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _FAST_ERROR, *args], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ROOT})
    wall = time.perf_counter() - start
    code, inside, heavy = result.stdout.split()
    assert code == "2" and "error:" in result.stderr and "Traceback" not in result.stderr
    assert heavy == "-"  # nothing heavy was imported to find the mistake
    # Importing torch and scikit-learn alone takes seconds; this takes about 0.1 s.
    assert float(inside) < 1.0 and wall < 5.0, (inside, wall)


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


def test_the_cli_explains_every_flag_of_the_note_column():
    from skae import cli, compare

    assert set(cli._FLAGS) == {compare.NOT_BETTER_THAN_MEAN, compare.STOPPED_AT_MAX_ITER,
                               compare.DIVERGED}


def _interrupt_the_second_step(monkeypatch):
    """Make the process's second optimiser step meet a Ctrl-C (on wine: the first skae fit's
    second epoch, so that fit keeps its first epoch and warns)."""
    from skae.engine import trainer

    real, updates = trainer._steps, {"n": 0}

    def steps(*args, **kwargs):
        gradients, update, switches = real(*args, **kwargs)

        def counted_update():
            update()
            updates["n"] += 1
            if updates["n"] == 2:
                raise KeyboardInterrupt

        return gradients, counted_update, switches

    monkeypatch.setattr(trainer, "_steps", steps)


def test_a_ctrl_c_stops_the_comparison_and_the_cli(monkeypatch, tmp_path, capsys):
    X, y = load_wine(return_X_y=True)
    _interrupt_the_second_step(monkeypatch)
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        compare_reducers(X, y, n_components=(2,), random_state=0, **FAST)
    _interrupt_the_second_step(monkeypatch)
    code = main(["compare", "--dataset", "wine", "--n-components", "2", "--max-iter", "3",
                 "--device", "cpu", "--out", str(tmp_path / "out")])
    assert code == 130 and "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "out" / "comparison.csv").exists()


def test_figures_with_no_model_to_show_write_no_file_and_no_error(tmp_path):
    from sklearn.decomposition import PCA

    from skae._cli_figures import count_figures, write_figures
    from skae.compare import held_out_split

    X, y = load_digits(return_X_y=True)
    X = X / 16
    table = compare_reducers(X, y, reducers={"PCA": PCA()}, n_components=(2,), random_state=0,
                             return_estimator=True)
    held_out = table.attrs["held_out"]  # the split the models were fitted and scored on
    np.testing.assert_array_equal(held_out.X_test, held_out_split(X, y, random_state=0).X_test)
    written = write_figures(table, held_out, (8, 8), 0, str(tmp_path))  # nothing was trained
    assert sorted(os.path.basename(path) for path in written) == [
        "latent_spaces.png", "reconstructions.png"]
    assert count_figures([2], (8, 8)) == 4 and count_figures([], None) == 1
    assert write_figures(table.iloc[:0], held_out, None, 0, str(tmp_path / "none")) == []


def test_fractional_labels_taken_for_classes_are_scored_as_classes():
    X, y = load_wine(return_X_y=True)
    two_values = np.where(y == 0, 0.5, 1.5)  # two distinct values: classes, though fractional
    table = compare_reducers(X, two_values, n_components=(2,), random_state=0, **FAST)
    assert set(table["downstream_metric"]) == {"accuracy"}
    assert table["downstream_score"].between(0, 1).all()
    told = compare_reducers(X, y + 0.25, task="classification", n_components=(2,), random_state=0,
                            **FAST)
    assert table["downstream_score"].notna().all() and told["downstream_score"].notna().all()
