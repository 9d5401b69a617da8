"""Saving and loading estimators in a format that cannot carry code.

A skae model file is one `safetensors <https://github.com/huggingface/safetensors>`_
file holding the estimator's plain-data state (see :mod:`skae._state`, the
same state pickle and skops store): its arrays (network weights, numeric
fitted attributes, optimiser state) are the file's tensors, and everything
else (class, parameters, fitted attributes, versions) is one JSON document in
its metadata, each array replaced by a reference to its tensor. Reading it
parses JSON and raw numbers only; nothing is ever unpickled, so a planted
pickle payload is refused as an unreadable file instead of being run.

Pipelines and other scikit-learn objects that contain skae estimators are
saved with skops: ``skops.io.dump(pipe, path)``, then
``skops.io.load(path, trusted=skae.skops_trusted_types())``.
"""

import hashlib
import json
import os
import tempfile

import numpy as np
import torch

from . import _state
# The estimator modules register their classes with _state as they are defined;
# ``import skae`` is lazy, so a file or skops_trusted_types() may come first.
from . import autoencoder, vae  # noqa: F401

__all__ = ["FORMAT_VERSION", "load", "save", "skops_trusted_types"]

#: Version of the file layout; :func:`load` reads this version only.
FORMAT_VERSION = 2

_FORMAT_NAME = "skae"
# A header larger than this is not a skae file (ours are a few kB).
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def skops_trusted_types():
    """The types to trust when loading a skops file that holds skae estimators.

    ``skops.io.load(path, trusted=skae.skops_trusted_types())`` loads a
    Pipeline (or any scikit-learn object) that contains skae estimators, and
    still refuses every other type that scikit-learn does not trust by
    default. Trusting these is safe: a skae estimator is rebuilt from plain
    data alone (numbers, strings, lists and arrays; the networks from their
    weights and the fitted architecture), and nothing in the file is
    imported, called or unpickled.

    Returns
    -------
    list of str
        The full names of skae's estimator classes, as skops writes them
        (``"skae.autoencoder.AutoencoderTransformer"``, ...).

    See Also
    --------
    save : skae's own file format, for one estimator.

    Examples
    --------
    >>> import skae
    >>> skae.skops_trusted_types()
    ['skae.autoencoder.AutoencoderTransformer', 'skae.vae.VAETransformer']
    """
    return sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in _state.estimator_classes().values())


# ------------------------------------------------------------------ writing


def _to_document(value, arrays, path):
    """The plain state ``value`` as JSON, its arrays moved to ``arrays`` by reference."""
    if type(value) is np.ndarray:
        arrays[path] = value
        return {_state.TAG: "ndarray", "tensor": path}
    if type(value) is dict:
        return {key: _to_document(item, arrays, f"{path}/{key}") for key, item in value.items()}
    if type(value) is list:
        return [_to_document(item, arrays, f"{path}/{i}") for i, item in enumerate(value)]
    if type(value) is _state.PickleOnly:
        value.refuse()
    return value


def _checksum(arrays):
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.reshape(-1).view(np.uint8).tobytes())
    return digest.hexdigest()


def save(estimator, path):
    """Write ``estimator`` to ``path`` as JSON metadata plus safetensors weights.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted or not.
    path : str or os.PathLike
        File to write. It is written to a temporary file first and then moved
        into place, so an interrupted save never leaves a half-written model.

    Raises
    ------
    TypeError
        If the estimator is not a skae estimator (save a Pipeline with skops,
        see :func:`skops_trusted_types`), or a parameter or fitted attribute
        holds something the safe format cannot store, such as a user-supplied
        torch module.

    See Also
    --------
    load : Read the file back.
    skops_trusted_types : Save and load Pipelines that contain skae estimators.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import load_iris
    >>> import skae
    >>> X = load_iris().data
    >>> ae = skae.AutoencoderTransformer(max_iter=5, random_state=0).fit(X)
    >>> path = Path(tempfile.mkdtemp()) / "ae.skae"
    >>> skae.save(ae, path)
    >>> path.stat().st_size > 0
    True
    """
    from safetensors.numpy import save as safetensors_save

    from . import __version__

    name = type(estimator).__name__
    if _state.estimator_class(name) is not type(estimator):
        raise TypeError(
            f"skae.save stores one skae estimator, got a {name}. Save a Pipeline or any "
            "other scikit-learn object that contains skae estimators with skops: "
            "skops.io.dump(obj, path), then skops.io.load(path, "
            "trusted=skae.skops_trusted_types())."
        )
    arrays = {}
    document = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skae_version": __version__,
        "torch_version": torch.__version__,
        "class": name,
        "state": _to_document(_state.estimator_state(estimator), arrays, "state"),
    }
    document["checksum"] = _checksum(arrays)
    data = safetensors_save(arrays, metadata={_FORMAT_NAME: json.dumps(document)})
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".skae-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# ------------------------------------------------------------------ reading


def _from_document(value, arrays, used, where):
    """The inverse of :func:`_to_document`: each tensor reference replaced by its array, once."""
    if type(value) is list:
        return [_from_document(item, arrays, used, f"{where}[{i}]") for i, item in enumerate(value)]
    if type(value) is not dict:
        return value
    if value.get(_state.TAG) == "ndarray":
        name = value.get("tensor")
        if set(value) != {_state.TAG, "tensor"} or not isinstance(name, str) or name not in arrays or name in used:
            raise _state.InvalidStateError(f"{where} refers to a missing tensor {name!r}")
        used.add(name)
        return arrays[name]
    return {key: _from_document(item, arrays, used, f"{where}[{key!r}]") for key, item in value.items()}


def _read(path):
    """The file's arrays and its JSON document, or a ValueError saying what is wrong."""
    from safetensors.numpy import load as safetensors_load

    source = repr(os.fspath(path))
    with open(path, "rb") as file:  # a missing file is the OSError it should be
        data = file.read()
    not_ours = f"{source} is not a skae model file (written by skae's save)"
    if len(data) < 8:
        raise ValueError(f"{not_ours}: it is only {len(data)} bytes long.")
    header_size = int.from_bytes(data[:8], "little")
    if header_size > min(len(data) - 8, _MAX_HEADER_BYTES):
        raise ValueError(f"{not_ours}: it does not start with a safetensors header.")
    try:
        header = json.loads(data[8 : 8 + header_size].decode("utf-8"))
        document = json.loads(header["__metadata__"][_FORMAT_NAME])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{not_ours}: its header has no skae metadata ({exc}).") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT_NAME:
        raise ValueError(f"{not_ours}: its metadata is not skae's.")
    version = document.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        raise ValueError(
            f"{source} was written by skae {document.get('skae_version')!r} in file format "
            f"version {version!r}; this skae reads version {FORMAT_VERSION} only. "
            + ("Upgrade skae." if newer else "Load it with the skae that wrote it and refit or pickle it.")
        )
    try:
        arrays = safetensors_load(data)
    except Exception as exc:  # safetensors reports corruption with its own error types
        raise ValueError(f"{source} is corrupted: its tensors cannot be read ({exc}).") from None
    if document.get("checksum") != _checksum(arrays):
        raise ValueError(f"{source} is corrupted: its tensors do not match their checksum.")
    return arrays, document, source


def load(path, *, device=None):
    """Read an estimator written by :meth:`save`, without unpickling anything.

    Parameters
    ----------
    path : str or os.PathLike
        File written by ``estimator.save(path)`` or :func:`skae.save`.
    device : str, torch.device or None, default=None
        Where to put the networks. None uses the device the model was fitted
        on when this machine has it, else the CPU (as unpickling does).

    Returns
    -------
    estimator : AutoencoderTransformer or VAETransformer
        Of the saved class, with the saved parameters and, if it was fitted,
        its fitted state: ``transform`` and ``sample(random_state=...)`` give
        bit-identical results on the CPU, and ``partial_fit`` or a
        ``warm_start`` fit continues from the saved optimiser state.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not a skae model file, is corrupted, comes from another
        version of the file format, or holds anything but plain data and
        tensors.

    See Also
    --------
    save : Write an estimator to a file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> import skae
    >>> X = load_iris().data
    >>> vae = skae.VAETransformer(max_iter=5, random_state=0).fit(X)
    >>> path = Path(tempfile.mkdtemp()) / "vae.skae"
    >>> vae.save(path)
    >>> loaded = skae.load(path, device="cpu")
    >>> loaded.get_params() == vae.get_params()
    True
    >>> np.array_equal(loaded.transform(X), vae.transform(X))
    True
    """
    arrays, document, source = _read(path)
    cls = _state.estimator_class(document.get("class"))
    if cls is None:
        raise ValueError(f"{source} holds an unknown estimator class {document.get('class')!r}.")
    estimator = cls.__new__(cls)
    try:
        used = set()
        state = _from_document(document.get("state"), arrays, used, "the state")
        _state.restore_estimator(estimator, state, device=device)
        unused = set(arrays) - used
        if unused:
            raise _state.InvalidStateError(f"the tensor section has tensors nothing refers to: {sorted(unused)[:5]}")
    except _state.InvalidStateError as exc:
        raise ValueError(f"{source} is not a valid skae model file: {exc}.") from None
    return estimator
