"""The training loop: the data stays one tensor on the device, batches are slices.

Per epoch the loop draws one permutation on the device, slices it into
batches, takes an optimiser step per batch, and reads the accumulated loss back
to the host once. Everything that decides when to stop (tolerance, early
stopping, divergence, Ctrl-C) runs between epochs, so no per-batch host work
slows the inner loop.

At the end of each completed epoch the loop keeps a copy of the weights and of
the optimiser's state (its moments and step counters) together with the number
of epochs they belong to, as one object assigned in one step: whenever
training stops early (divergence, ``KeyboardInterrupt`` at any point, even
while that copy is being taken) the model, the optimiser and the history go
back to that epoch together.
"""

import math
from dataclasses import dataclass, field

import torch

from .adam import step_function
from .backprop import autograd_step, manual_step
from .chain import set_threads
from .interrupts import interrupts_deferred
from . import threads as thread_choice
from .threads import in_threads, threads_scope

__all__ = ["TrainingHistory", "make_optimizer", "train"]


@dataclass
class TrainingHistory:
    """What one call to :func:`train` did.

    Attributes
    ----------
    losses : list of float
        Mean training loss per completed epoch.
    validation_scores : list of float
        Validation score (higher is better) per completed epoch; empty without
        validation data.
    stop_reason : {"max_epochs", "converged", "diverged", "interrupted"}
        Why training ended.
    """

    losses: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    stop_reason: str = "max_epochs"


def make_optimizer(parameters, learning_rate, device):
    """Adam with the fused kernel where this torch and device offer it, else foreach."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(parameters, lr=learning_rate, foreach=device.type != "cpu" or None)


def _snapshot(model):
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _copied(state):
    """One parameter's optimiser state with its tensors copied."""
    return {key: value.clone() if isinstance(value, torch.Tensor) else value for key, value in state.items()}


def _optimizer_snapshot(optimizer):
    """A copy of the optimiser's per-parameter state (Adam's moments and step counters)."""
    return {parameter: _copied(state) for parameter, state in optimizer.state.items()}


def _restore_optimizer(optimizer, snapshot):
    """Give the optimiser ``snapshot``'s state (copied: a snapshot may be restored again).

    A parameter without state in ``snapshot`` (its first step came later) loses its
    state. Training does not step again after a restore (each call of :func:`train`
    builds its step function anew), so the state's tensors may be new ones.
    """
    optimizer.state.clear()
    optimizer.state.update({parameter: _copied(state) for parameter, state in snapshot.items()})


@dataclass(frozen=True)
class _Kept:
    """The model and optimiser as they were after ``n_epochs`` completed epochs of this call."""

    weights: dict
    optimizer: dict
    n_epochs: int

    @classmethod
    def take(cls, model, optimizer, n_epochs):
        return cls(_snapshot(model), _optimizer_snapshot(optimizer), n_epochs)

    def restore(self, model, optimizer, history):
        # Deferred so that a second Ctrl-C cannot leave a half-restored model.
        with interrupts_deferred():
            model.load_state_dict(self.weights)
            _restore_optimizer(optimizer, self.optimizer)
            del history.losses[self.n_epochs :]
            del history.validation_scores[self.n_epochs :]


class _Plateau:
    """Counts epochs without a relative improvement of more than ``tol`` (as MLPRegressor)."""

    def __init__(self, tol, patience):
        self.tol = tol
        self.patience = patience
        self.best = -math.inf
        self.count = 0

    def update(self, score):
        """Record a score (higher is better); return True when the best just improved."""
        if math.isfinite(self.best) and score < self.best + self.tol * abs(self.best):
            self.count += 1
        else:
            self.count = 0
        improved = score > self.best
        if improved:
            self.best = score
        return improved

    @property
    def exhausted(self):
        return self.count > self.patience


def _steps(model, optimizer, batch_size, base_threads, operation_threads):
    """``(gradients, update, switches)``: ``gradients(batch, generator) -> loss sum`` fills
    ``.grad``, ``update()`` applies the optimiser step, ``switches`` says whether
    the operations change the thread count themselves."""
    gradients = manual_step(model)
    if gradients is None:
        return autograd_step(model), optimizer.step, False
    switches = operation_threads is not None and set_threads(
        gradients.chains, batch_size, thread_choice.FIT_FLOPS_PER_THREAD, base_threads, operation_threads
    )
    # The hand-written pass reuses the .grad buffers, so the update can be prepared once.
    return gradients, step_function(optimizer, list(model.parameters())), switches


def _run_epoch(gradients, update, X, batch_size, generator):
    """One pass over ``X``: the mean training loss, as the model computes it."""
    n_samples = X.shape[0]
    order = torch.randperm(n_samples, generator=generator, device=X.device)
    total = torch.zeros((), device=X.device)
    for start in range(0, n_samples, batch_size):
        total.add_(gradients(X.index_select(0, order[start : start + batch_size]), generator))
        update()
    return (total / n_samples).item()


def _epoch_loss(model, X, mean_loss):
    """``mean_loss`` in the data's units where the model trains in other ones (in float64)."""
    to_input_units = getattr(model, "loss_in_input_units", None)
    if to_input_units is None or not math.isfinite(mean_loss):
        return mean_loss
    return to_input_units(mean_loss, X.shape[1])


def train(
    model,
    optimizer,
    X,
    *,
    n_epochs,
    batch_size,
    generator,
    tol=0.0,
    n_iter_no_change=None,
    validation_score=None,
    on_epoch_end=None,
    threads=None,
    operation_threads=None,
):
    """Train ``model`` on ``X`` for up to ``n_epochs`` passes.

    Parameters
    ----------
    model : torch.nn.Module
        Has ``training_loss(batch, generator) -> scalar tensor``, and may have
        ``loss_in_input_units(mean_loss, n_features) -> float``, which turns
        the epoch's mean loss into the figure reported and judged.
    optimizer : torch.optim.Optimizer
        Over ``model.parameters()``.
    X : torch.Tensor of shape (n_samples, n_features)
        Training data, already on the model's device.
    n_epochs : int
        Maximum number of passes over ``X``.
    batch_size : int
        Rows per optimiser step; the last batch of an epoch may be smaller.
    generator : torch.Generator
        Source of the shuffling order and of the model's noise.
    tol : float, default=0.0
        Relative improvement that counts as progress.
    n_iter_no_change : int or None, default=None
        Stop once this many epochs in a row made no progress (on the validation
        score if given, else on the training loss). None never stops early.
    validation_score : callable or None, default=None
        ``validation_score() -> float`` (higher is better), called after each
        epoch. When given, the weights of the best-scoring epoch are restored at
        the end.
    on_epoch_end : callable or None, default=None
        ``on_epoch_end(loss, validation_score_or_None)`` after each epoch.
    threads : int or None, default=None
        Intra-op threads for the training (see :mod:`skae.engine.threads`);
        None leaves torch's setting as it is.
    operation_threads : int or None, default=None
        With hand-written passes, the most threads one large matrix product
        or convolution may use: each gets one per
        :data:`~skae.engine.threads.FIT_FLOPS_PER_THREAD` of its work (see
        :func:`~skae.engine.chain.set_threads`), the rest ``threads``. None
        runs everything on ``threads``.

    Returns
    -------
    TrainingHistory
        On divergence (a non-finite epoch loss) or ``KeyboardInterrupt`` the
        weights and the optimiser state of the last completed finite epoch
        are restored first, and ``losses`` ends with that epoch. With
        ``validation_score``, the best epoch's weights and optimiser state
        are restored at the end.
    """
    history = TrainingHistory()
    plateau = _Plateau(tol, n_iter_no_change if n_iter_no_change is not None else math.inf)
    kept = _Kept.take(model, optimizer, 0)
    best = kept
    model.train()
    base_threads = torch.get_num_threads() if threads is None else threads
    gradients, update, switches = _steps(model, optimizer, batch_size, base_threads, operation_threads)
    # Operations that set their own thread count need a scope to restore it, even
    # when the count they start from is the current one.
    with threads_scope(base_threads) if switches else in_threads(threads):
        try:
            for _ in range(n_epochs):
                loss = _epoch_loss(model, X, _run_epoch(gradients, update, X, batch_size, generator))
                score = None
                if validation_score is not None and math.isfinite(loss):
                    model.eval()
                    score = validation_score()
                    model.train()
                if not math.isfinite(loss) or (score is not None and not math.isfinite(score)):
                    kept.restore(model, optimizer, history)
                    history.stop_reason = "diverged"
                    break
                history.losses.append(loss)
                if score is not None:
                    history.validation_scores.append(score)
                # One assignment commits the epoch: an interrupt before it
                # returns to the previous epoch, history included.
                kept = _Kept.take(model, optimizer, len(history.losses))
                if on_epoch_end is not None:
                    on_epoch_end(loss, score)
                improved = plateau.update(-loss if score is None else score)
                if improved and score is not None:
                    best = kept
                if plateau.exhausted:
                    history.stop_reason = "converged"
                    break
        except KeyboardInterrupt:
            kept.restore(model, optimizer, history)
            history.stop_reason = "interrupted"
    try:
        with interrupts_deferred():
            if validation_score is not None and history.validation_scores and best is not kept:
                # The best epoch's weights with its optimiser state; the history
                # keeps every epoch run, as MLPRegressor's does.
                model.load_state_dict(best.weights)
                _restore_optimizer(optimizer, best.optimizer)
            model.zero_grad(set_to_none=True)
            model.eval()
    except KeyboardInterrupt:
        # Delivered once the block was complete: the training is over and whole.
        history.stop_reason = "interrupted"
    return history
