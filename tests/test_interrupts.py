"""Ctrl-C at any point of fit and partial_fit leaves one consistent model: the last completed epoch.

Each test raises KeyboardInterrupt at one point of the work (an optimiser step
in the middle of an epoch, the copy kept at an epoch's end, the progress
printer, the pass over the data after the last epoch, the latent summary) and
compares everything the estimator keeps (weights, Adam moments and step
counters, n_iter_, loss_curve_, the latent summary) with an uninterrupted fit
of as many epochs, bit for bit; then trains on from both and compares again.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

import skae._base as base_module
import skae.engine.trainer as trainer_module

from .helpers import ESTIMATORS, tiny

BATCH = 16  # 60 rows: 4 optimiser steps per epoch
STEPS_PER_EPOCH = math.ceil(60 / BATCH)
SUMMARY = ("latent_", "observation_variance_")


def _estimator(cls, **params):
    return tiny(cls, batch_size=BATCH, tol=0.0, **params)


def _quiet(fit, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args)


def _state(est):
    """Everything a continued fit starts from, as plain comparable values."""
    weights = {name: value.clone() for name, value in est._engine_model().state_dict().items()}
    optimizer = {
        (index, key): value.clone() if isinstance(value, torch.Tensor) else value
        for index, state in est._optimizer_state["state"].items()
        for key, value in state.items()
    }
    summary = {name: np.copy(value) for name, value in vars(est).items() if name.startswith(SUMMARY) and value is not None}
    return weights, optimizer, est.n_iter_, list(est.loss_curve_), summary


def assert_same_state(est, reference):
    weights, optimizer, n_iter, losses, summary = _state(est)
    ref_weights, ref_optimizer, ref_n_iter, ref_losses, ref_summary = _state(reference)
    assert n_iter == ref_n_iter == len(losses)
    assert losses == ref_losses
    assert weights.keys() == ref_weights.keys()
    for name in weights:
        assert torch.equal(weights[name], ref_weights[name]), name
    assert optimizer.keys() == ref_optimizer.keys()
    for key in optimizer:
        assert torch.equal(torch.as_tensor(optimizer[key]), torch.as_tensor(ref_optimizer[key])), key
    steps = {float(value) for (_, key), value in optimizer.items() if key == "step"}
    assert steps == {float(n_iter * STEPS_PER_EPOCH)}
    assert summary.keys() == ref_summary.keys()
    for name in summary:
        np.testing.assert_array_equal(summary[name], ref_summary[name])


def _interrupt_at_step(monkeypatch, step):
    """Raise KeyboardInterrupt after ``step`` optimiser steps (counted over the call)."""
    real = trainer_module._steps
    count = {"n": 0}

    def steps(*args, **kwargs):
        gradients, update, switches = real(*args, **kwargs)

        def counted_update():
            count["n"] += 1
            update()
            if count["n"] == step:
                raise KeyboardInterrupt

        return gradients, counted_update, switches

    monkeypatch.setattr(trainer_module, "_steps", steps)


def _interrupt_call(monkeypatch, owner, name, calls):
    """Make the listed calls (1-based) of ``owner.name`` raise KeyboardInterrupt, after running."""
    real = getattr(owner, name)
    count = {"n": 0}

    def wrapped(*args, **kwargs):
        count["n"] += 1
        result = real(*args, **kwargs)
        if count["n"] in calls:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(owner, name, wrapped)
    return count


# (where, how many epochs the interrupted 5-epoch fit keeps)
INTERRUPTS = {
    "mid-epoch": (lambda mp: _interrupt_at_step(mp, 2 * STEPS_PER_EPOCH + 2), 2),
    "last step of an epoch": (lambda mp: _interrupt_at_step(mp, 3 * STEPS_PER_EPOCH), 2),
    "copying the epoch": (lambda mp: _interrupt_call(mp, trainer_module, "_optimizer_snapshot", {3}), 1),
    "weights copy": (lambda mp: _interrupt_call(mp, trainer_module, "_snapshot", {4}), 2),
    "fit pass": (lambda mp: _interrupt_call(mp, base_module._BaseAutoencoder, "_fit_statistics", {1}), 5),
}


@pytest.mark.parametrize("where", INTERRUPTS)
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_interrupted_fit_equals_a_fit_of_the_kept_epochs(cls, where, X_small, monkeypatch):
    inject, kept = INTERRUPTS[where]
    inject(monkeypatch)
    est = _estimator(cls, max_iter=5)
    with pytest.warns(UserWarning, match=rf"interrupted.*n_iter_={kept}\)"):
        est.fit(X_small)
    monkeypatch.undo()
    reference = _quiet(_estimator(cls, max_iter=kept).fit, X_small)
    assert_same_state(est, reference)
    # Both train on alike: the optimiser state matches the weights it is kept with.
    _quiet(est.partial_fit, X_small)
    _quiet(reference.partial_fit, X_small)
    assert_same_state(est, reference)


@pytest.mark.parametrize("where", INTERRUPTS)
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_an_interrupted_fit_keeps_the_datas_location(cls, where, X_small, monkeypatch):
    # Training reads centred rows with the networks' location set to zero; an
    # interrupt at any point must leave the data's own location in the model.
    X = 1e4 + X_small
    INTERRUPTS[where][0](monkeypatch)
    est = _estimator(cls, max_iter=5)
    with pytest.warns(UserWarning, match="interrupted"):
        est.fit(X)
    location = torch.as_tensor(X.mean(axis=0), dtype=torch.float32)
    assert torch.equal(est.encoder_[0].mean, location) and torch.equal(est.decoder_[-1].mean, location)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_interrupt_in_the_progress_printer_keeps_that_epoch(cls, X_small, monkeypatch, capsys):
    _interrupt_call(monkeypatch, base_module._ProgressPrinter, "__call__", {3})
    est = _estimator(cls, max_iter=5, verbose=1)
    with pytest.warns(UserWarning, match=r"interrupted.*n_iter_=3\)"):
        est.fit(X_small)
    monkeypatch.undo()
    assert_same_state(est, _quiet(_estimator(cls, max_iter=3).fit, X_small))


@pytest.mark.parametrize("where", ["mid-epoch", "fit pass"])
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_interrupted_warm_start_equals_the_uninterrupted_one(cls, where, X_small, monkeypatch):
    est = _quiet(_estimator(cls, max_iter=3).fit, X_small)
    est.set_params(warm_start=True, max_iter=5)
    inject, kept = INTERRUPTS[where]
    inject(monkeypatch)
    with pytest.warns(UserWarning, match=rf"interrupted.*n_iter_={3 + kept}\)"):
        est.fit(X_small)
    monkeypatch.undo()
    reference = _quiet(_estimator(cls, max_iter=3).fit, X_small)
    _quiet(reference.set_params(warm_start=True, max_iter=kept).fit, X_small)
    assert_same_state(est, reference)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_partial_fit_interrupted_mid_epoch_changes_nothing(cls, X_small, monkeypatch):
    est = _quiet(_estimator(cls, max_iter=3).fit, X_small)
    before = _state(est)
    _interrupt_at_step(monkeypatch, 2)
    with pytest.warns(UserWarning, match=r"interrupted.*n_iter_=3\)"):
        est.partial_fit(X_small[:40] * 2)  # other data: its summary must not be kept either
    monkeypatch.undo()
    reference = _quiet(_estimator(cls, max_iter=3).fit, X_small)
    assert_same_state(est, reference)
    assert before[2] == est.n_iter_


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("incremental", [False, True])
def test_a_second_interrupt_in_the_fit_pass_leaves_the_estimator_as_before(cls, incremental, X_small, monkeypatch):
    est = _quiet(_estimator(cls, max_iter=3, warm_start=True).fit, X_small)
    before = _state(est)
    attributes = dict(vars(est))
    random_state = est._random_state.get_state()
    calls = _interrupt_call(monkeypatch, base_module._BaseAutoencoder, "_fit_statistics", {1, 2})
    with pytest.raises(KeyboardInterrupt):
        est.partial_fit(X_small) if incremental else est.fit(X_small)
    assert calls["n"] == 2
    monkeypatch.undo()
    assert vars(est).keys() == attributes.keys()
    assert all(vars(est)[name] is value for name, value in attributes.items())
    assert_same_state(est, _quiet(_estimator(cls, max_iter=3).fit, X_small))
    assert before[2] == est.n_iter_
    after = est._random_state.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(after, random_state))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_fresh_fit_abandoned_in_the_fit_pass_is_not_fitted(cls, X_small, monkeypatch):
    _interrupt_call(monkeypatch, base_module._BaseAutoencoder, "_fit_statistics", {1, 2})
    est = _estimator(cls)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X_small)
    assert not [name for name in vars(est) if name.endswith("_") or name.startswith("_data")]


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_a_refit_interrupted_before_its_first_epoch_keeps_the_old_model(cls, X_small, monkeypatch):
    est = _quiet(_estimator(cls, max_iter=3).fit, X_small)
    attributes = dict(vars(est))
    _interrupt_at_step(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X_small * 1000)  # a fresh fit on other data: its scale must not be kept
    assert vars(est).keys() == attributes.keys()
    assert all(vars(est)[name] is value for name, value in attributes.items())


def test_interrupt_in_the_latent_mixture_reruns_the_summary(X_small, monkeypatch):
    from skae import AutoencoderTransformer
    from skae import autoencoder as autoencoder_module

    _interrupt_call(monkeypatch, autoencoder_module.AutoencoderTransformer, "_latent_mixture", {1})
    est = _estimator(AutoencoderTransformer, max_iter=3, latent_sampler="gmm")
    with pytest.warns(UserWarning, match=r"interrupted.*n_iter_=3\)"):
        est.fit(X_small)
    assert est.n_iter_ == len(est.loss_curve_) == 3
    assert est.latent_means_.shape[1] == 2 and np.isfinite(est.sample(3, random_state=0)).all()


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_early_stopping_keeps_the_best_epochs_optimiser_state(cls, X_small, monkeypatch):
    kept = []
    real = trainer_module._Kept.take.__func__

    def take(kind, model, optimizer, n_epochs):
        kept.append(real(kind, model, optimizer, n_epochs))
        return kept[-1]

    monkeypatch.setattr(trainer_module._Kept, "take", classmethod(take))
    est = _quiet(_estimator(cls, max_iter=8, early_stopping=True, validation_fraction=0.2).fit, X_small)
    best = int(np.argmax(est.validation_scores_)) + 1
    snapshot = kept[best]
    assert snapshot.n_epochs == best
    for name, value in est._engine_model().state_dict().items():
        assert torch.equal(value, snapshot.weights[name])
    steps = {float(state["step"]) for state in est._optimizer_state["state"].values()}
    assert steps == {float(best * math.ceil(48 / BATCH))}
