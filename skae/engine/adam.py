"""Fused Adam steps without the ``Optimizer.step`` wrapper's per-call overhead.

``torch.optim.Adam(fused=True).step()`` spends about as long in Python (hooks,
profiler records, grouping tensors by device, reading the state) as in its one
fused kernel when the network is small. When the gradient buffers stay the
same tensors from step to step (as with the hand-written backward pass), all of
that can be done once: :func:`step_function` returns a function that bumps the
step counters (one operation for all) and calls the fused kernel on lists
gathered up front, updating the optimiser's own state tensors in place, so
``optimizer.state_dict()`` stays exact. Anything unusual falls back to
``optimizer.step``.
"""

import torch
from torch.optim import optimizer as _optimizer_module

__all__ = ["step_function"]

# Capability check for the private kernel; tests turn it off to check that a
# torch without it trains the same models through optimizer.step.
_FUSED_ADAM = hasattr(torch, "_fused_adam_")


def step_function(optimizer, parameters):
    """A zero-argument function that applies one optimiser step.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    parameters : list of torch.Tensor
        The optimiser's parameters; their ``.grad`` must be allocated and must
        not be replaced between steps for the lean path to be used.

    Returns
    -------
    callable
        ``optimizer.step`` itself unless ``optimizer`` is a plain fused Adam
        over ``parameters``; else a function that runs ``optimizer.step`` once
        (to create the state) and the fused kernel directly from then on.
    """
    if not _plain_fused_adam(optimizer, parameters):
        return optimizer.step
    group = optimizer.param_groups[0]
    lean = None

    def step():
        nonlocal lean
        if lean is None:
            optimizer.step()
            lean = _kernel_call(optimizer, parameters, group)
        else:
            lean()

    return step


def _plain_fused_adam(optimizer, parameters):
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    if not _FUSED_ADAM:
        return False
    group = optimizer.param_groups[0]
    plain = (
        group.get("fused")
        and not group.get("amsgrad")
        and not group.get("maximize")
        and not group.get("capturable")
        and not group.get("differentiable")
        and not group.get("decoupled_weight_decay")
        and not isinstance(group.get("lr"), torch.Tensor)
        and not isinstance(group.get("betas", (0,))[0], torch.Tensor)
    )
    hooks = (
        optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or getattr(_optimizer_module, "_global_optimizer_pre_hooks", None)
        or getattr(_optimizer_module, "_global_optimizer_post_hooks", None)
    )
    same = [id(p) for p in group["params"]] == [id(p) for p in parameters]
    grads = all(p.grad is not None for p in parameters)
    return bool(plain) and not hooks and same and grads


def _kernel_call(optimizer, parameters, group):
    states = [optimizer.state[p] for p in parameters]
    # The step counters become views of one tensor, so that one add_ bumps them
    # all: foreach_add_ on the CPU is a loop of one dispatch per parameter
    # (about 20 us a step for 12 parameters). Each state still holds its own
    # 0-d counter, as Optimizer.step and state_dict expect.
    counters = torch.stack([state["step"] for state in states])
    steps = list(counters.unbind())
    for state, step in zip(states, steps):
        state["step"] = step
    exp_avgs = [state["exp_avg"] for state in states]
    exp_avg_sqs = [state["exp_avg_sq"] for state in states]
    grads = [p.grad for p in parameters]
    beta1, beta2 = group["betas"]
    options = dict(
        amsgrad=False,
        lr=group["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=group["weight_decay"],
        eps=group["eps"],
        maximize=False,
        grad_scale=None,
        found_inf=None,
    )

    @torch.no_grad()
    def run():
        counters.add_(1)
        torch._fused_adam_(parameters, grads, exp_avgs, exp_avg_sqs, [], steps, **options)

    return run
