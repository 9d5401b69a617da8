"""Saving and loading estimators in a format that cannot carry code.

A skae model file is one `safetensors <https://github.com/huggingface/safetensors>`_
file holding the estimator's plain-data state (see :mod:`skae._state`, the
same state pickle and skops store): its arrays (network weights, numeric
fitted attributes, optimiser state) are the file's tensors, and everything
else (class, parameters, fitted attributes, versions) is one JSON document in
its metadata, each array replaced by a reference to its tensor, next to a
SHA-256 checksum of the whole file. Reading it parses JSON and raw numbers
only; nothing is ever unpickled, so a planted pickle payload is never run.

:func:`load` reads the header first and within bounds (size, JSON values,
nesting, string lengths), refuses files that are not regular files, checks
that the tensors tile the file and that the checksum matches, and only then
hands the state to :func:`skae._state.restore_estimator`, which checks every
value against the schema of :mod:`skae._schema` before using it.

Pipelines and other scikit-learn objects that contain skae estimators are
saved with skops: ``skops.io.dump(pipe, path)``, then
``skops.io.load(path, trusted=skae.skops_trusted_types())``.
"""

import errno
import hashlib
import hmac
import io
import json
import math
import os
import re
import secrets
import stat

import numpy as np
import torch

from . import _state
from .autoencoder import AutoencoderTransformer
from .vae import VAETransformer

__all__ = ["FORMAT_VERSION", "load", "save", "skops_trusted_types"]

# The estimator classes a .skae file may name, and skops users trust.
_CLASSES = {cls.__name__: cls for cls in (AutoencoderTransformer, VAETransformer)}

#: Version of the file layout; :func:`load` reads this version only.
FORMAT_VERSION = 3

_FORMAT_NAME = "skae"
_CHECKSUM_KEY = "skae_sha256"
_DOCUMENT_KEYS = {"format", "format_version", "skae_version", "torch_version", "class", "state"}

# Bounds on what a file may declare, checked before anything is allocated for it.
# skae's own headers are a few kB (a value per epoch of loss_curve_ and per
# feature name); save refuses a state that would exceed them.
#: Largest JSON header, in bytes.
MAX_HEADER_BYTES = 16 * 2**20
#: Most values (numbers, strings, lists, dicts) in the header's JSON.
MAX_JSON_VALUES = 2**18
#: Deepest nesting of the JSON document (the state's values nest up to _state.MAX_DEPTH).
MAX_JSON_DEPTH = _state.MAX_DEPTH + 8
#: Longest string in the JSON document (a feature name, a parameter).
MAX_STRING_CHARS = 2**16

# safetensors' dtype names, for the dtypes a state's arrays may have (_state._plain_number_dtype).
_DTYPES = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}
_TENSOR_KEYS = {"dtype", "shape", "data_offsets"}
_CHECKSUM = re.compile(r"[0-9a-f]{64}")
_PLACEHOLDER = "0" * 64


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
    return sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in _CLASSES.values())


# ------------------------------------------------------------------ writing


def _to_document(value, arrays, path):
    """The plain state ``value`` as JSON, its arrays moved to ``arrays`` by reference."""
    if type(value) is np.ndarray:
        arrays[path] = value
        return {_state.TAG: "ndarray", "tensor": path}
    if type(value) is dict:
        return {key: _to_document(item, arrays, f"{path}/{key}") for key, item in value.items()}
    if type(value) is list:
        if _state._all_scalars(value):
            return value
        return [_to_document(item, arrays, f"{path}/{i}") for i, item in enumerate(value)]
    if type(value) is _state.PickleOnly:
        value.refuse()
    return value


def _file_bytes(document, arrays):
    """The bytes of a .skae file holding ``document`` (a dict, or its JSON text) and ``arrays``.

    The checksum is the SHA-256 of the whole file with the checksum's own 64
    hex digits written as zeros; it sits in the safetensors metadata next to
    the document.
    """
    from safetensors.numpy import save as safetensors_save

    text = document if isinstance(document, str) else json.dumps(document)
    data = bytearray(safetensors_save(arrays, metadata={_FORMAT_NAME: text, _CHECKSUM_KEY: _PLACEHOLDER}))
    at = _checksum_position(data, _PLACEHOLDER)
    if at is None:  # safetensors wrote the metadata differently: nothing to read back
        raise RuntimeError("skae could not find the checksum's place in the file it wrote")
    data[at : at + 64] = _digest(data, at).encode()
    return bytes(data)


def _checksum_position(data, checksum):
    """Where the 64 hex digits of ``checksum`` stand in ``data``'s header, if they stand there once."""
    header = data[8 : 8 + int.from_bytes(data[:8], "little")]
    token = f'"{checksum}"'.encode()
    if header.count(token) != 1:
        return None
    return 8 + header.index(token) + 1


def _digest(data, at):
    """SHA-256 of ``data`` with the 64 bytes at ``at`` (the checksum) taken as zeros."""
    digest = hashlib.sha256(memoryview(data)[:at])
    digest.update(_PLACEHOLDER.encode())
    digest.update(memoryview(data)[at + 64 :])
    return digest.hexdigest()


def save(estimator, path):
    """Write ``estimator`` to ``path`` as JSON metadata plus safetensors weights.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted or not.
    path : str or os.PathLike
        File to write. It is written in full and flushed to the disk
        (``fsync``) before it takes the place of any file already at
        ``path``, so an interrupted save, even a killed process, never leaves
        a half-written model; nor a temporary file, except on systems without
        ``O_TMPFILE`` when the process is killed (``.skae-*.tmp`` next to
        ``path``). A new file gets the mode the umask allows (``0o666 &
        ~umask``, as ``open`` gives); a file that is replaced keeps its mode.
        A symbolic link at ``path`` is followed: the file it points to is
        replaced and the link kept, as ``open(path, "w")`` would.

    Raises
    ------
    TypeError
        If the estimator is not a skae estimator (save a Pipeline with skops,
        see :func:`skops_trusted_types`), or a parameter or fitted attribute
        holds something the safe format cannot store, such as a user-supplied
        torch module.
    ValueError
        If ``path`` names something other than a regular file (a folder, a
        FIFO, a device), or the state is too large for a ``.skae`` header
        (see :func:`load`).

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
    from . import __version__

    name = type(estimator).__name__
    if _CLASSES.get(name) is not type(estimator):
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
    data = _file_bytes(document, arrays)
    try:  # what load would refuse for its size is not written
        _read_header(io.BytesIO(data).read, len(data), "the file")
    except _BeyondBounds as exc:
        raise ValueError(
            f"This {name}'s state does not fit in a .skae file: {exc.reason}. Save it with skops or joblib."
        ) from None
    _write_replacing(path, data)


def _write_replacing(path, data):
    """Write ``data`` to a new file, flush it to the disk, then move it to ``path`` (see save)."""
    target = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(target)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    else:
        if not stat.S_ISREG(mode):
            raise ValueError(
                f"{os.fspath(path)!r} is not a regular file; skae.save replaces files, not "
                f"{_kind(mode)}s."
            )
        mode = stat.S_IMODE(mode)
    fd, temporary = _new_file(directory)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        os.fsync(fd)
        if temporary is None:
            temporary = _link_anonymous(fd, directory)
        os.replace(temporary, target)
        temporary = None
        _fsync_directory(directory)
    except BaseException:  # KeyboardInterrupt included: no temporary file is left behind
        if temporary is not None:
            try:
                os.remove(temporary)
            except FileNotFoundError:
                pass
        raise
    finally:
        os.close(fd)


def _new_file(directory):
    """``(fd, name)`` of a new file in ``directory`` with mode ``0o666 & ~umask``.

    Where the system has ``O_TMPFILE`` the file has no name (None) until it is
    complete, so a killed process leaves nothing behind.
    """
    if hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd"):
        try:
            return os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666), None
        except OSError:  # a file system without O_TMPFILE: a named temporary file
            pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    while True:
        name = os.path.join(directory, f".skae-{secrets.token_hex(8)}.tmp")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue


def _link_anonymous(fd, directory):
    """Give the unnamed file ``fd`` a temporary name in ``directory``; return it."""
    directory_fd = os.open(directory, os.O_RDONLY)
    try:
        while True:
            name = f".skae-{secrets.token_hex(8)}.tmp"
            try:
                # With a directory fd, os.link calls linkat, which follows the /proc link
                # to the open file (plain link() would try to link the symbolic link).
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=directory_fd, follow_symlinks=True)
                return os.path.join(directory, name)
            except FileExistsError:
                continue
    finally:
        os.close(directory_fd)


def _fsync_directory(directory):
    """Flush the directory entry of the renamed file (where the system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _kind(mode):
    for test, name in (
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


# ------------------------------------------------------------------ reading


def _parse_json(text, what, max_depth, max_string):
    """``text`` parsed as JSON within the bounds above, or a ValueError saying which was passed.

    The number of values is bounded from the text before parsing (each value
    but the first follows a ``[``, ``{``, ``,`` or ``:``), so parsing costs at
    most a few hundred milliseconds; duplicate keys are refused, since readers
    disagree on which one counts.
    """
    marks = "[{,:" if isinstance(text, str) else (b"[", b"{", b",", b":")
    values = 1 + sum(text.count(mark) for mark in marks)
    if values > MAX_JSON_VALUES:
        raise _BeyondBounds(f"{what} holds up to {values:,} JSON values, more than {MAX_JSON_VALUES:,}")
    try:
        parsed = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise _BeyondBounds(f"{what} nests JSON more than {MAX_JSON_DEPTH} levels deep") from None
    except (UnicodeDecodeError, json.JSONDecodeError, _DuplicateKey) as exc:
        raise ValueError(f"{what} is not valid JSON ({exc})") from None
    containers = [(parsed, 1)] if type(parsed) in (list, dict) else []
    strings = [parsed] if type(parsed) is str else []
    while containers:
        container, depth = containers.pop()
        if depth > max_depth:
            raise _BeyondBounds(f"{what} nests JSON more than {max_depth} levels deep")
        if type(container) is dict:
            strings.extend(container)
            container = list(container.values())
        kinds = set(map(type, container))  # a long list of numbers costs no call per item
        if str in kinds:
            strings.extend(item for item in container if type(item) is str)
        if list in kinds or dict in kinds:
            containers.extend((item, depth + 1) for item in container if type(item) in (list, dict))
    longest = max(map(len, strings), default=0)
    if longest > max_string:
        raise _BeyondBounds(f"{what} holds a string of {longest:,} characters, more than {max_string:,}")
    return parsed


class _DuplicateKey(ValueError):
    pass


class _BeyondBounds(ValueError):
    """A header beyond the bounds above; ``reason`` says which, without the file's name."""

    def __init__(self, message, reason=None):
        super().__init__(message)
        self.reason = reason or message


def _unique_keys(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        keys = [key for key, _ in pairs]
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise _DuplicateKey(f"the key {duplicate[:100]!r} appears twice in one object")
    return result


def _said_of_the_file(exc, not_ours):
    """The error ``exc`` of :func:`_parse_json`, prefixed with what the file is not (a bound stays one)."""
    message = f"{not_ours}: {exc}."
    return _BeyondBounds(message, str(exc)) if isinstance(exc, _BeyondBounds) else ValueError(message)


def _read_header(read, size, source):
    """Read and check a file's header: ``(header bytes, tensors, document, checksum)``.

    ``read(n)`` returns the file's next ``n`` bytes, ``size`` is its length.
    Reads ``8 + header size`` bytes at most, so a file is refused for its
    header before its tensors are read.
    """
    not_ours = f"{source} is not a skae model file (written by skae's save)"
    if size < 8:
        raise ValueError(f"{not_ours}: it is only {size} bytes long.")
    prefix = _read_exactly(read, 8, source)
    header_size = int.from_bytes(prefix, "little")
    if header_size > size - 8:
        raise ValueError(
            f"{not_ours}: it does not start with a safetensors header (its first 8 bytes declare a "
            f"header of {header_size:,} bytes, more than the rest of the file)."
        )
    if header_size > MAX_HEADER_BYTES:
        reason = f"its header takes {header_size:,} bytes, more than {MAX_HEADER_BYTES:,}"
        raise _BeyondBounds(f"{not_ours}: {reason}.", reason)
    header_bytes = prefix + _read_exactly(read, header_size, source)
    try:
        header = _parse_json(header_bytes[8:], "its header", 3, MAX_HEADER_BYTES)
    except ValueError as exc:
        raise _said_of_the_file(exc, not_ours) from None
    metadata = header.get("__metadata__") if type(header) is dict else None
    text = metadata.get(_FORMAT_NAME) if type(metadata) is dict else None
    if type(text) is not str:
        raise ValueError(f"{not_ours}: its header has no skae metadata.")
    try:
        document = _parse_json(text, "its JSON document", MAX_JSON_DEPTH, MAX_STRING_CHARS)
    except ValueError as exc:
        raise _said_of_the_file(exc, not_ours) from None
    if type(document) is not dict or document.get("format") != _FORMAT_NAME:
        raise ValueError(f"{not_ours}: its metadata is not skae's.")
    version = document.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        newer = type(version) is int and version > FORMAT_VERSION
        written_by = document.get("skae_version")
        written_by = repr(written_by) if type(written_by) is str and len(written_by) < 64 else "(unknown)"
        raise ValueError(
            f"{source} was written by skae {written_by} in file format version {_shortened(repr(version))}; "
            f"this skae reads version {FORMAT_VERSION} only. "
            + ("Upgrade skae." if newer else "Load it with the skae that wrote it and refit or pickle it.")
        )
    unknown = set(document) - _DOCUMENT_KEYS
    if unknown or set(metadata) != {_FORMAT_NAME, _CHECKSUM_KEY}:
        extra = sorted(unknown) or sorted(set(metadata) - {_FORMAT_NAME, _CHECKSUM_KEY})
        raise ValueError(f"{not_ours}: its metadata has unknown or missing entries {extra[:5]}.")
    tensors = _tensor_table(header, size - len(header_bytes), not_ours, source)
    return header_bytes, tensors, document, metadata[_CHECKSUM_KEY]


def _shortened(text, limit=40):
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tensor_table(header, data_size, not_ours, source):
    """``{name: (dtype, shape, start, end)}``: the tensors must tile the rest of the file exactly."""
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if type(entry) is not dict or set(entry) != _TENSOR_KEYS:
            raise ValueError(f"{not_ours}: its header entry {name[:100]!r} is not a tensor's.")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if (
            dtype not in _DTYPES
            or type(shape) is not list
            or not all(type(side) is int and side >= 0 for side in shape)
            or type(offsets) is not list
            or len(offsets) != 2
            or not all(type(offset) is int for offset in offsets)
        ):
            raise ValueError(f"{not_ours}: its header entry {name[:100]!r} is not a tensor's.")
        if math.prod(shape) * _DTYPES[dtype].itemsize != offsets[1] - offsets[0]:
            raise ValueError(
                f"{source} is corrupted: tensor {name[:100]!r} of shape {shape} takes "
                f"{offsets[1] - offsets[0]:,} bytes."
            )
        tensors[name] = (_DTYPES[dtype], tuple(shape), *offsets)
    end = 0
    for name, (_, _, start, stop) in sorted(tensors.items(), key=lambda item: item[1][2:]):
        if start != end:
            raise ValueError(f"{source} is corrupted: its tensors overlap or leave gaps (at {name[:100]!r}).")
        end = stop
    if end != data_size:
        raise ValueError(
            f"{source} is corrupted: its tensors take {end:,} bytes, but {data_size:,} follow its header "
            "(a truncated or extended file)."
        )
    return tensors


def _read_exactly(read, n, source):
    data = read(n)
    if len(data) != n:
        raise ValueError(f"{source} is corrupted: it ended early (truncated while being read?).")
    return data


def _open_regular(path, source):
    """A file descriptor of ``path``, and its size; refuses what is not a regular file.

    Opened without blocking, so that a FIFO is refused instead of waiting for
    a writer; a device (``/dev/zero``) is refused before anything is read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)  # a missing file is the OSError it should be
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(
                f"{source} is not a skae model file: it is a {_kind(info.st_mode)}, not a regular file."
            )
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def _from_document(value, arrays, used, where):
    """The inverse of :func:`_to_document`: each tensor reference replaced by its array, once."""
    if type(value) is list:
        if _state._all_scalars(value):
            return value
        return [_from_document(item, arrays, used, f"{where}[{i}]") for i, item in enumerate(value)]
    if type(value) is not dict:
        return value
    if value.get(_state.TAG) == "ndarray":
        name = value.get("tensor")
        if set(value) != {_state.TAG, "tensor"} or not isinstance(name, str) or name not in arrays or name in used:
            raise _state.InvalidStateError(f"{where} refers to a missing or already used tensor {str(name)[:100]!r}")
        used.add(name)
        return arrays[name]
    return {key: _from_document(item, arrays, used, f"{where}[{key!r}]") for key, item in value.items()}


def _read(path):
    """The file's arrays and its JSON document, or a ValueError saying what is wrong.

    In order: the header (bounded: size, JSON values, nesting, strings), the
    format and version, the layout of the tensors; then the tensors' bytes,
    the checksum over the whole file, and the arrays.
    """
    source = repr(os.fspath(path))
    fd, size = _open_regular(path, source)
    with os.fdopen(fd, "rb", buffering=0) as file:
        header_bytes, tensors, document, checksum = _read_header(file.read, size, source)
        data = _read_exactly(file.read, size - len(header_bytes), source)
        if file.read(1):
            raise ValueError(f"{source} is corrupted: it grew while being read.")
    at = _checksum_position(header_bytes, checksum) if type(checksum) is str and _CHECKSUM.fullmatch(checksum) else None
    if at is None:
        raise ValueError(f"{source} is corrupted: its checksum is missing or malformed.")
    digest = hashlib.sha256(header_bytes[:at])
    digest.update(_PLACEHOLDER.encode())
    digest.update(header_bytes[at + 64 :])
    digest.update(data)
    if not hmac.compare_digest(digest.hexdigest(), checksum):
        raise ValueError(f"{source} is corrupted: its content does not match its checksum.")
    arrays = {}
    for name, (dtype, shape, start, stop) in tensors.items():
        raw = np.frombuffer(data, np.uint8, stop - start, start) if stop > start else np.empty(0, np.uint8)
        if dtype.kind == "b" and (raw > 1).any():
            raise ValueError(f"{source} is corrupted: boolean tensor {name[:100]!r} holds values other than 0 and 1.")
        arrays[name] = raw.view(dtype).reshape(shape)
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
        If the file cannot be read (``IsADirectoryError`` for a folder).
    ValueError
        If it is not a regular file (a FIFO, a device), not a skae model
        file, corrupted (its checksum covers the whole file), from another
        version of the file format, beyond the bounds below, or if any value
        in it is not one skae could have written: an unknown attribute or
        key, a value of the wrong type or out of range, an array (weights,
        optimiser state, latent density, random state) whose shape or dtype
        does not fit the fitted architecture. The message names the field.

    See Also
    --------
    save : Write an estimator to a file.

    Notes
    -----
    A hostile file costs little to refuse: the header, read before the
    tensors, may take at most 16 MiB and hold at most 262,144 JSON values,
    nested at most 40 deep, with strings of at most 65,536 characters
    (``skae.persistence.MAX_HEADER_BYTES``, ``MAX_JSON_VALUES``,
    ``MAX_JSON_DEPTH``, ``MAX_STRING_CHARS``); the tensors must tile the rest
    of the file exactly, and the sizes the header declares must fit the
    weights the file holds, so nothing is allocated beyond a small multiple of
    the file's size. The checksum detects corruption and edits; it is not a
    signature.

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
    name = document.get("class")
    cls = _CLASSES.get(name) if type(name) is str else None
    if cls is None:
        raise ValueError(f"{source} holds an unknown estimator class {str(document.get('class'))[:100]!r}.")
    estimator = cls.__new__(cls)
    try:
        used = set()
        state = _from_document(document.get("state"), arrays, used, "the state")
        unused = set(arrays) - used
        if unused:
            raise _state.InvalidStateError(f"the tensor section has tensors nothing refers to: {sorted(unused)[:5]}")
        _state.restore_estimator(estimator, state, device=device)
    except _state.InvalidStateError as exc:
        raise ValueError(f"{source} is not a valid skae model file: {exc}.") from None
    return estimator
