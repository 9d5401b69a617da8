"""Divergence, interruption, extreme values and concurrent inference."""

import copy
import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning

import skae.engine.trainer as trainer_module

from .helpers import ESTIMATORS, tiny

# The tiny models train a few epochs on purpose; divergence warnings are asserted.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Maximum iterations:sklearn.exceptions.ConvergenceWarning"
)


def _epoch_patch(monkeypatch, on_call):
    """Wrap the trainer's epoch function; ``on_call(n, run)`` decides what call ``n`` does."""
    real = trainer_module._run_epoch
    calls = {"n": 0}

    def patched(*args, **kwargs):
        calls["n"] += 1
        return on_call(calls["n"], lambda: real(*args, **kwargs))

    monkeypatch.setattr(trainer_module, "_run_epoch", patched)
    return calls


def _all_outputs_finite(est, X):
    codes = est.transform(X)
    return (
        np.isfinite(codes).all()
        and np.isfinite(est.inverse_transform(codes)).all()
        and np.isfinite(est.score_samples(X)).all()
        and np.isfinite(est.sample(5, random_state=0)).all()
    )


# ------------------------------------------------------------------ divergence


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_non_finite_epoch_keeps_last_finite_epoch_and_warns(cls, X_small, monkeypatch):
    snapshots = []

    def on_call(n, run):
        loss = run()
        return math.nan if n == 3 else loss

    _epoch_patch(monkeypatch, on_call)
    original_snapshot = trainer_module._snapshot

    def recording_snapshot(model):
        state = original_snapshot(model)
        snapshots.append(state)
        return state

    monkeypatch.setattr(trainer_module, "_snapshot", recording_snapshot)
    est = tiny(cls, max_iter=10)
    with pytest.warns(ConvergenceWarning, match="diverged.*learning_rate_init.*scale"):
        est.fit(X_small)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    assert all(math.isfinite(loss) for loss in est.loss_curve_)
    # Snapshots: the initial weights, then after epochs 1 and 2; epoch 2's are kept.
    after_epoch_2 = snapshots[2]
    for name, value in est._engine_model().state_dict().items():
        assert torch.equal(value, after_epoch_2[name])
    assert _all_outputs_finite(est, X_small)


def _break_the_decoder_after_training(monkeypatch):
    """Make training end with finite epoch losses but a decoder that outputs infinity."""
    import skae._base as base_module

    real = base_module.train

    def train_then_break(model, *args, **kwargs):
        history = real(model, *args, **kwargs)
        with torch.no_grad():
            next(model.decoder.parameters()).fill_(math.inf)
        return history

    monkeypatch.setattr(base_module, "train", train_then_break)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_outputs_broken_after_a_finite_last_epoch_are_caught(cls, X_small, monkeypatch):
    est = tiny(cls).fit(X_small)
    before = est.transform(X_small), est.score_samples(X_small)
    kept = ("latent_", "observation_variance_")
    summary = {name: copy.deepcopy(value) for name, value in vars(est).items() if name.startswith(kept)}
    _break_the_decoder_after_training(monkeypatch)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        est.partial_fit(X_small)
    # The weights before the call are restored, and the summary is of them again.
    assert_array_equal(est.transform(X_small), before[0])
    assert_array_equal(est.score_samples(X_small), before[1])
    for name, value in summary.items():
        assert_array_equal(getattr(est, name), value)
    with pytest.raises(ValueError, match="diverged before any epoch gave usable weights"):
        tiny(cls).fit(X_small)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_fit_that_keeps_no_weights_raises_without_a_pass_over_the_data(cls, X_small, monkeypatch):
    import skae._base as base_module

    passes = []
    real = base_module._BaseAutoencoder._fit_statistics
    monkeypatch.setattr(
        base_module._BaseAutoencoder, "_fit_statistics", lambda *args: passes.append(1) or real(*args)
    )
    _epoch_patch(monkeypatch, lambda n, run: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        tiny(cls).fit(X_small)
    assert passes == []


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_huge_learning_rate_is_a_clear_error_not_a_nan_model(cls, X_small):
    est = tiny(cls, learning_rate_init=1e10, max_iter=20)
    with pytest.raises(ValueError, match=r"diverged.*learning_rate_init \(now 1e\+10\)"):
        est.fit(X_small)
    assert not hasattr(est, "encoder_")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_diverging_partial_fit_keeps_the_previous_model(cls, X_small):
    est = tiny(cls).fit(X_small)
    before = est.transform(X_small)
    n_iter = est.n_iter_
    est.set_params(learning_rate_init=1e10)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        for _ in range(3):
            est.partial_fit(X_small)
    assert _all_outputs_finite(est, X_small)
    assert est.n_iter_ >= n_iter and len(est.loss_curve_) == est.n_iter_
    if est.n_iter_ == n_iter:
        assert_array_equal(est.transform(X_small), before)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("scale", [1e-6, 1e6, 1e14, 1e30])
def test_extreme_but_finite_scales_fit_to_finite_outputs(cls, scale, X_small):
    X = X_small * scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = tiny(cls).fit(X)
    assert _all_outputs_finite(est, X)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_data_near_float32_overflow_is_refused_at_fit(cls, dtype, X_small):
    X = X_small.astype(dtype)
    X[0, 0] = 1e37  # float32 holds it, but not reconstructions overshooting it
    with pytest.raises(ValueError, match=r"as large as 1e\+37.*StandardScaler"):
        tiny(cls).fit(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_float32_input_near_overflow_at_transform_gives_finite_codes(cls, X_small):
    est = tiny(cls).fit(X_small)
    X = (X_small * 1e30).astype(np.float32)
    codes = est.transform(X)
    assert codes.dtype == np.float32 and np.isfinite(codes).all()
    assert np.isfinite(est.score_samples(X)).all()
    X_max = np.full((3, X_small.shape[1]), 3e38, dtype=np.float32)
    assert np.isfinite(est.transform(X_max)).all()


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_non_finite_results_are_an_error_not_silent_nan(cls, X_small):
    est = tiny(cls).fit(X_small)
    # Squared errors of 1e300 overflow even float64: the score cannot be finite.
    with pytest.raises(ValueError, match="score_samples produced NaN or infinite values for 2 of"):
        est.score_samples(np.vstack([X_small[:3], np.full((2, 5), 1e300)]))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_broken_model_refuses_to_sample(cls, X_small):
    est = tiny(cls).fit(X_small)
    with torch.no_grad():
        next(est.decoder_.parameters()).fill_(math.nan)
    with pytest.raises(ValueError, match="sample produced NaN.*diverged"):
        est.sample(3, random_state=0)
    with pytest.raises(ValueError, match=r"inverse_transform produced NaN.* 4 of 4 rows"):
        est.inverse_transform(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="score_samples produced NaN"):
        est.score_samples(X_small)
    with torch.no_grad():
        next(est.encoder_.parameters()).fill_(math.inf)
    with pytest.raises(ValueError, match=r"transform produced NaN.* of 60 rows.*largest magnitude is 0.999"):
        est.transform(X_small)


# ---------------------------------------------------------------- interruption


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_keyboard_interrupt_keeps_completed_epochs(cls, X_small, monkeypatch):
    snapshots = []

    def on_call(n, run):
        if n == 3:
            run()  # the interrupted epoch has already changed the weights
            raise KeyboardInterrupt
        return run()

    calls = _epoch_patch(monkeypatch, on_call)
    original_snapshot = trainer_module._snapshot
    monkeypatch.setattr(
        trainer_module, "_snapshot", lambda m: snapshots.append(original_snapshot(m)) or snapshots[-1]
    )
    est = tiny(cls, max_iter=10)
    with pytest.warns(UserWarning, match=r"interrupted.*n_iter_=2"):
        est.fit(X_small)
    assert calls["n"] == 3
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    for name, value in est._engine_model().state_dict().items():
        assert torch.equal(value, snapshots[2][name])
    assert _all_outputs_finite(est, X_small)
    # The model keeps training from where it stopped.
    monkeypatch.undo()
    est.partial_fit(X_small)
    assert est.n_iter_ == 3


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_keyboard_interrupt_in_partial_fit_keeps_the_previous_model(cls, X_small, monkeypatch):
    est = tiny(cls).fit(X_small)
    before = est.transform(X_small)

    def on_call(n, run):
        run()
        raise KeyboardInterrupt

    _epoch_patch(monkeypatch, on_call)
    with pytest.warns(UserWarning, match="interrupted"):
        est.partial_fit(X_small)
    assert est.n_iter_ == 5
    assert_array_equal(est.transform(X_small), before)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_keyboard_interrupt_before_any_epoch_propagates(cls, X_small, monkeypatch):
    def on_call(n, run):
        raise KeyboardInterrupt

    _epoch_patch(monkeypatch, on_call)
    est = tiny(cls)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X_small)
    assert not hasattr(est, "encoder_")


# ------------------------------------------------------------------ concurrency


def _fitted_state(est):
    state = {}
    for name, value in vars(est).items():
        if isinstance(value, torch.nn.Module):
            state[name] = {k: v.clone() for k, v in value.state_dict().items()}
        elif name != "_random_state":
            state[name] = copy.deepcopy(value)
    return state


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        if isinstance(a[name], dict) and a[name] and all(
            isinstance(v, torch.Tensor) for v in a[name].values()
        ):
            for key in a[name]:
                assert torch.equal(a[name][key], b[name][key]), (name, key)
        elif isinstance(a[name], np.ndarray):
            assert_array_equal(a[name], b[name])
        elif name != "_optimizer_state":
            assert a[name] == b[name], name


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_inference_is_thread_safe_and_does_not_mutate(cls, digits):
    X = digits[0]
    est = tiny(cls).fit(X)
    parts = [X[i::4] for i in range(4)] + [X.astype(np.float32)[:50]]
    calls = []
    for part in parts:
        calls += [("transform", part), ("score_samples", part)]
        calls += [("inverse_transform", est.transform(part))]
    before = _fitted_state(est)
    serial = [getattr(est, name)(data) for name, data in calls]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda call: getattr(est, call[0])(call[1]), calls * 4))
    for i, result in enumerate(threaded):
        assert_array_equal(result, serial[i % len(calls)])
    _assert_same_state(before, _fitted_state(est))


# ------------------------------------------------------------------ data scale


def _unit_scale_data(name):
    from sklearn.datasets import load_digits, load_wine
    from sklearn.preprocessing import StandardScaler

    data = {"digits": lambda: load_digits().data[:300], "wine": lambda: load_wine().data}[name]()
    return StandardScaler().fit_transform(data)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("data", ["digits", "wine"])
@pytest.mark.parametrize("scale", [1e-30, 1e-20, 1e20])
def test_data_at_extreme_scales_trains_as_at_unit_scale(cls, data, scale):
    X = _unit_scale_data(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unit = tiny(cls, max_iter=10).fit(X)
        scaled = tiny(cls, max_iter=10).fit(X * scale)
    np.testing.assert_allclose(scaled.transform(X * scale), unit.transform(X), atol=1e-5)
    np.testing.assert_allclose(np.array(scaled.loss_curve_), np.array(unit.loss_curve_) * scale**2 if cls.__name__ == "AutoencoderTransformer" else np.array(unit.loss_curve_) + X.shape[1] * math.log(scale), rtol=1e-5)
    assert _all_outputs_finite(scaled, X * scale)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("scale", [1e-300, 1e-320, 1e-34])
def test_data_below_float32s_range_is_refused_naming_it(cls, scale):
    X = _unit_scale_data("wine") * scale  # 1e-320: denormal float64
    with pytest.raises(ValueError, match=r"below float32's range.*same for every row"):
        tiny(cls).fit(X)


# ------------------------------------------------------------------ data offset

_OFFSETS = [0.0, 1e4, 1e6]


def _offset_data(offset, location_rows=slice(None)):
    """Unit-scale wine, and ``offset + 1e-3 *`` it: float32 keeps no 1e-3 detail at 1e4 or 1e6.

    The unit-scale data have mean zero over ``location_rows`` (the rows the
    first fit takes its location from), so the model's location is the offset
    itself, which float32 holds exactly.
    """
    unit = _unit_scale_data("wine")
    unit = unit - unit[location_rows].mean(axis=0)
    return unit, offset + 1e-3 * unit


def _assert_trains_as_at_unit_scale(cls, scaled, unit, X, U):
    np.testing.assert_allclose(scaled.transform(X), unit.transform(U), atol=1e-4)
    np.testing.assert_allclose(
        scaled.inverse_transform(scaled.transform(X)) - X,
        1e-3 * (unit.inverse_transform(unit.transform(U)) - U),
        atol=1e-7,
    )
    curve, unit_curve = np.array(scaled.loss_curve_), np.array(unit.loss_curve_)
    if cls.__name__ == "AutoencoderTransformer":
        np.testing.assert_allclose(curve, unit_curve * 1e-6, rtol=1e-4)
    else:
        np.testing.assert_allclose(curve, unit_curve + X.shape[1] * math.log(1e-3), rtol=1e-4)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("offset", _OFFSETS)
def test_data_with_a_large_offset_trains_as_at_unit_scale(cls, offset):
    U, X = _offset_data(offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        unit = tiny(cls, max_iter=10).fit(U)
        scaled = tiny(cls, max_iter=10).fit(X)
    _assert_trains_as_at_unit_scale(cls, scaled, unit, X, U)
    # The fitted networks hold the data's own location, not zero (training's centring is undone).
    location = torch.as_tensor(X.mean(axis=0), dtype=torch.float32)
    torch.testing.assert_close(scaled.encoder_[0].mean, location, rtol=1e-7, atol=0)
    torch.testing.assert_close(scaled.decoder_[-1].mean, location, rtol=1e-7, atol=0)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("offset", _OFFSETS[1:])
@pytest.mark.parametrize("continued", ["partial_fit", "warm_start"])
def test_continued_training_on_offset_data_trains_as_at_unit_scale(cls, offset, continued):
    first = slice(0, 60 if continued == "partial_fit" else 100)
    U, X = _offset_data(offset, first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        models = []
        for data in (U, X):
            est = tiny(cls, max_iter=3)
            if continued == "partial_fit":
                for start in range(0, len(data), 60):
                    est.partial_fit(data[start : start + 60])
            else:
                est.fit(data[first]).set_params(warm_start=True).fit(data[::-1])
            models.append(est)
    unit, scaled = models
    _assert_trains_as_at_unit_scale(cls, scaled, unit, X, U)
    # Later calls centre their data on the location the first call stored.
    stored = torch.as_tensor(X[first].mean(axis=0), dtype=torch.float32)
    assert torch.equal(scaled.encoder_[0].mean, stored) and torch.equal(scaled.decoder_[-1].mean, stored)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_offset_data_keep_their_variation_where_float32_rounds_the_location(cls):
    # Iris's means are not float32 numbers at 1e4: the model's location (a float32
    # buffer) is off from the mean by up to 0.2 of the spread, and still the data
    # train about as well as without the offset (before the centring in float64,
    # the AE's held-out error was 0.94 of predicting the mean, against 0.26).
    from sklearn.datasets import load_iris

    X0 = 1e-3 * load_iris().data
    errors = []
    for offset in (0.0, 1e4):
        X_train, X_test = (offset + X0)[::2], (offset + X0)[1::2]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = tiny(cls, max_iter=150).fit(X_train)
        rec = est.inverse_transform(est.transform(X_test))
        errors.append(np.linalg.norm(rec - X_test) / np.linalg.norm(X_test - X_train.mean(axis=0)))
    assert errors[1] < 1.1 * errors[0] < 0.5, errors
