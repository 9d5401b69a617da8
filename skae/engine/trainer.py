"""The training loop: the data stays one tensor on the device, batches are slices.

Per epoch the loop draws one permutation on the device, slices it into
batches, takes an optimiser step per batch, and reads the accumulated loss back
to the host once. Everything that decides when to stop (tolerance, early
stopping, divergence, Ctrl-C) runs between epochs, so no per-batch host work
slows the inner loop.
"""

import math
from dataclasses import dataclass, field

import torch

from .adam import step_function
from .backprop import autograd_step, manual_step
from .chain import set_threads
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
    n_samples = X.shape[0]
    order = torch.randperm(n_samples, generator=generator, device=X.device)
    total = torch.zeros((), device=X.device)
    for start in range(0, n_samples, batch_size):
        total.add_(gradients(X.index_select(0, order[start : start + batch_size]), generator))
        update()
    return (total / n_samples).item()


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
        Has ``training_loss(batch, generator) -> scalar tensor``.
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
        weights of the last completed finite epoch are restored first.
    """
    history = TrainingHistory()
    plateau = _Plateau(tol, n_iter_no_change if n_iter_no_change is not None else math.inf)
    last_good = _snapshot(model)
    best = last_good
    model.train()
    base_threads = torch.get_num_threads() if threads is None else threads
    gradients, update, switches = _steps(model, optimizer, batch_size, base_threads, operation_threads)
    # Operations that set their own thread count need a scope to restore it, even
    # when the count they start from is the current one.
    with threads_scope(base_threads) if switches else in_threads(threads):
        try:
            for _ in range(n_epochs):
                loss = _run_epoch(gradients, update, X, batch_size, generator)
                score = None
                if validation_score is not None and math.isfinite(loss):
                    model.eval()
                    score = validation_score()
                    model.train()
                if not math.isfinite(loss) or (score is not None and not math.isfinite(score)):
                    model.load_state_dict(last_good)
                    history.stop_reason = "diverged"
                    break
                last_good = _snapshot(model)
                history.losses.append(loss)
                if score is not None:
                    history.validation_scores.append(score)
                if on_epoch_end is not None:
                    on_epoch_end(loss, score)
                improved = plateau.update(-loss if score is None else score)
                if improved and score is not None:
                    best = last_good
                if plateau.exhausted:
                    history.stop_reason = "converged"
                    break
        except KeyboardInterrupt:
            model.load_state_dict(last_good)
            history.stop_reason = "interrupted"
    if validation_score is not None and history.validation_scores:
        model.load_state_dict(best)
    model.zero_grad(set_to_none=True)
    model.eval()
    return history
