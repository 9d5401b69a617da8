"""Turn the user's ``device`` parameter into a :class:`torch.device`."""

import torch

__all__ = ["resolve_device"]


def _mps_available():
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def resolve_device(device):
    """Return the :class:`torch.device` named by ``device``.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` picks CUDA, then MPS, then the CPU. Any other string is
        parsed by :class:`torch.device` (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
        ``"mps"``).

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the name is unknown or the device is not available on this machine.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"device={device!r} is not a device name torch understands; use 'auto', "
            "'cpu', 'cuda', 'cuda:<index>' or 'mps'."
        ) from exc
    if resolved.type == "cpu":
        return resolved
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine; use device='auto' or device='cpu'."
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(
                f"device={device!r} was requested but this machine has {count} CUDA "
                f"device(s) (indices 0 to {count - 1})."
            )
        return resolved
    if resolved.type == "mps":
        if not _mps_available():
            raise ValueError(
                f"device={device!r} was requested but MPS is not available on this "
                "machine; use device='auto' or device='cpu'."
            )
        return resolved
    raise ValueError(
        f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda', "
        "'cuda:<index>' or 'mps'."
    )
