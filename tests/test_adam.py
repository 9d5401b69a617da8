"""The lean fused-Adam step updates exactly as ``optimizer.step`` does."""

import copy

import torch
from torch import nn

from skae.engine.adam import step_function


def _setup(**adam):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    parameters = list(model.parameters())
    for p in parameters:
        p.grad = torch.zeros_like(p)
    return model, parameters, torch.optim.Adam(parameters, **{"lr": 1e-2, "fused": True, **adam})


def _train(model, parameters, update, n_steps=5):
    generator = torch.Generator().manual_seed(1)
    for _ in range(n_steps):
        for p in parameters:  # new gradients, written into the same buffers
            p.grad.copy_(torch.randn(p.shape, generator=generator))
        update()


def test_lean_step_matches_optimizer_step_exactly():
    model, parameters, optimizer = _setup(weight_decay=0.1, eps=1e-6, betas=(0.8, 0.9))
    reference = copy.deepcopy(model)
    reference_parameters = list(reference.parameters())
    for p in reference_parameters:
        p.grad = torch.zeros_like(p)
    reference_optimizer = torch.optim.Adam(
        reference_parameters, lr=1e-2, fused=True, weight_decay=0.1, eps=1e-6, betas=(0.8, 0.9)
    )
    update = step_function(optimizer, parameters)
    assert update != optimizer.step
    _train(model, parameters, update)
    _train(reference, reference_parameters, reference_optimizer.step)
    for p, q in zip(parameters, reference_parameters):
        assert torch.equal(p, q)
    state, expected = optimizer.state_dict()["state"], reference_optimizer.state_dict()["state"]
    for key in expected:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state[key][name], expected[key][name])


def test_other_optimisers_keep_their_own_step():
    model, parameters, optimizer = _setup(amsgrad=True)
    assert step_function(optimizer, parameters) == optimizer.step
    model, parameters, _ = _setup()
    not_fused = torch.optim.Adam(parameters, lr=1e-2)
    assert step_function(not_fused, parameters) == not_fused.step
    sgd = torch.optim.SGD(parameters, lr=1e-2)
    assert step_function(sgd, parameters) == sgd.step
    model, parameters, optimizer = _setup()
    optimizer.register_step_post_hook(lambda *args: None)
    assert step_function(optimizer, parameters) == optimizer.step
    model, parameters, optimizer = _setup()
    parameters[0].grad = None
    assert step_function(optimizer, parameters) == optimizer.step


def test_step_counters_stay_one_per_parameter():
    model, parameters, optimizer = _setup()
    _train(model, parameters, step_function(optimizer, parameters), n_steps=3)
    optimizer.step()  # the generic path after lean steps bumps each counter once
    assert [float(optimizer.state[p]["step"]) for p in parameters] == [4.0] * len(parameters)
    # A new lean step function over the same state (as partial_fit makes) continues from there.
    _train(model, parameters, step_function(optimizer, parameters), n_steps=2)
    assert [float(optimizer.state[p]["step"]) for p in parameters] == [6.0] * len(parameters)
    restored = torch.optim.Adam(parameters, lr=1e-2, fused=True)
    restored.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    assert [float(restored.state[p]["step"]) for p in parameters] == [6.0] * len(parameters)
