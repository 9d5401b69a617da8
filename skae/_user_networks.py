"""Encoders and decoders the user passes as ``encoder=`` / ``decoder=``.

skae trains deep copies, so the user's modules are never changed and clones,
grid searches and pickles each get their own. Before training, a dry run on two
rows checks the contract, so a module of the wrong shape is a clear
``ValueError`` rather than a torch traceback in the middle of an epoch.
"""

import copy

import torch

__all__ = ["check_user_decoder", "check_user_encoder", "copy_user_network", "fingerprint"]


def fingerprint(module):
    """What identifies a user's network for warm starts: its layers, not its weights."""
    return None if module is None else repr(module)


def copy_user_network(module, name):
    """A float32 deep copy of the user's ``module`` (the original stays untouched)."""
    try:
        copied = copy.deepcopy(module)
    except Exception as exc:
        raise TypeError(
            f"{name}={type(module).__name__}(...) cannot be deep-copied, which skae needs "
            f"to train it without changing yours: {exc}"
        ) from exc
    return copied.float()


def _dry_run(module, batch, name, expected_columns, contract):
    module.eval()
    try:
        with torch.no_grad():
            output = module(batch)
    except Exception as exc:
        raise ValueError(
            f"The {name} failed on a float32 batch of shape {tuple(batch.shape)}: {exc}. "
            f"It must map {contract}."
        ) from exc
    expected = (batch.shape[0], expected_columns)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != expected:
        got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            f"The {name} maps a batch of shape {tuple(batch.shape)} to {got}, but it must "
            f"map {contract}, here {tuple(batch.shape)} to {expected}."
        )
    return output


def check_user_encoder(encoder, X, n_outputs, outputs_meaning):
    """Check that ``encoder`` maps ``(n, n_features)`` rows of ``X`` to ``(n, n_outputs)``.

    ``outputs_meaning`` says what the columns are, for the error message.
    """
    contract = f"(n, n_features={X.shape[1]}) to (n, {outputs_meaning})"
    _dry_run(encoder, X[:2], "encoder", n_outputs, contract)


def check_user_decoder(decoder, n_components, n_features, device):
    """Check that ``decoder`` maps ``(n, n_components)`` codes to ``(n, n_features)``."""
    codes = torch.zeros((2, n_components), device=device)
    contract = f"(n, n_components={n_components}) to (n, n_features={n_features})"
    _dry_run(decoder, codes, "decoder", n_features, contract)
