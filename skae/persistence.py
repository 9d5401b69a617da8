"""Saving and loading estimators in a format that cannot carry code.

A skae model file is one `safetensors <https://github.com/huggingface/safetensors>`_
file: the tensors (network weights, numeric arrays, optimiser state) are its
tensors, and everything else (class, parameters, fitted attributes, versions)
is one JSON document in its metadata. Reading it parses JSON and raw numbers
only; nothing is ever unpickled, so a planted pickle payload is refused as an
unreadable file instead of being run.

Values that JSON has no word for (tuples, numpy arrays, torch devices, random
states) are written as small tagged objects; anything else (a user-supplied
torch module, a callable) cannot be saved, and :func:`save` says so.
"""

import hashlib
import json
import os
import re
import tempfile

import numpy as np
import torch
from sklearn.base import clone

from ._base import _ARCHITECTURE_PARAMETERS

__all__ = ["FORMAT_VERSION", "load", "save"]

#: Version of the file layout; :func:`load` refuses files from a newer layout.
FORMAT_VERSION = 1

_FORMAT_NAME = "skae"
_TAG = "__skae__"
_NETWORKS = ("encoder_", "decoder_")
_ATTRIBUTE_NAME = re.compile(r"^_?[A-Za-z][A-Za-z0-9_]*$")
# A header larger than this is not a skae file (ours are a few kB).
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def _estimator_classes():
    from .autoencoder import AutoencoderTransformer
    from .vae import VAETransformer

    return {cls.__name__: cls for cls in (AutoencoderTransformer, VAETransformer)}


# ------------------------------------------------------------------ encoding


class _Encoder:
    """Turns Python values into JSON, collecting tensors on the side."""

    def __init__(self, params):
        self.tensors = {}
        self.params = params

    def _tensor(self, value, path):
        self.tensors[path] = value.detach().cpu().clone().contiguous()
        return path

    def encode(self, value, path):
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, np.random.RandomState):
            for name, param in self.params.items():
                if param is value:
                    return {_TAG: "param", "name": name}
            kind, keys, pos, has_gauss, cached = value.get_state()
            return {_TAG: "random_state", "state": [kind, keys.tolist(), pos, has_gauss, cached]}
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return {_TAG: "scalar", "dtype": value.dtype.name, "value": value.item()}
        if isinstance(value, list):
            return [self.encode(item, f"{path}/{i}") for i, item in enumerate(value)]
        if isinstance(value, tuple):
            items = [self.encode(item, f"{path}/{i}") for i, item in enumerate(value)]
            return {_TAG: "tuple", "items": items}
        if isinstance(value, dict):
            items = []
            for key, item in value.items():
                if type(key) not in (str, int):
                    raise TypeError(f"{path} has a key {key!r} that skae's safe format cannot store.")
                items.append([key, self.encode(item, f"{path}/{key}")])
            return {_TAG: "dict", "items": items}
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "bif":
                return {_TAG: "ndarray", "tensor": self._tensor(torch.from_numpy(value), path)}
            if value.dtype.kind in "OU" and all(isinstance(item, str) for item in value.flat):
                return {_TAG: "str_array", "items": value.tolist(), "dtype": value.dtype.str}
        if isinstance(value, torch.Tensor):
            return {_TAG: "tensor", "tensor": self._tensor(value, path)}
        if isinstance(value, torch.device):
            return {_TAG: "device", "value": str(value)}
        raise TypeError(
            f"{path} holds a {type(value).__name__}, which skae's safe format cannot store "
            "(it keeps only plain data and tensors, so that loading can never run code). "
            "Use pickle or joblib instead, and load such files only from trusted sources."
        )


def _checksum(tensors):
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
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
        If the estimator is not a skae estimator, or a parameter or fitted
        attribute holds something the safe format cannot store.

    See Also
    --------
    load : Read the file back.

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
    from safetensors.torch import save as safetensors_save

    from . import __version__

    name = type(estimator).__name__
    if _estimator_classes().get(name) is not type(estimator):
        raise TypeError(f"skae.save stores skae estimators, got a {name}.")
    params = estimator.get_params(deep=False)
    encoder = _Encoder({})
    document = {
        "format": _FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "skae_version": __version__,
        "torch_version": torch.__version__,
        "class": name,
        "params": {key: encoder.encode(value, f"parameter {key!r}") for key, value in params.items()},
        "attributes": {},
        "networks": {},
    }
    encoder.params = params  # attributes may share an object with a parameter
    for key, value in vars(estimator).items():
        if key in params:
            continue
        if key in _NETWORKS and isinstance(value, torch.nn.Module):
            document["networks"][key] = {
                state_key: encoder._tensor(tensor, f"{key}/{state_key}")
                for state_key, tensor in value.state_dict().items()
            }
        else:
            document["attributes"][key] = encoder.encode(value, f"attribute {key!r}")
    document["checksum"] = _checksum(encoder.tensors)
    data = safetensors_save(encoder.tensors, metadata={_FORMAT_NAME: json.dumps(document)})
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


# ------------------------------------------------------------------ decoding


class _Decoder:
    """The inverse of :class:`_Encoder`, refusing anything it would not write."""

    def __init__(self, tensors, params, source):
        self.tensors = tensors
        self.used = set()
        self.params = params
        self.source = source

    def fail(self, path, why):
        raise ValueError(f"{self.source} is not a valid skae model file: {path} {why}.")

    def tensor(self, name, path):
        if not isinstance(name, str) or name not in self.tensors or name in self.used:
            self.fail(path, f"refers to a missing tensor {name!r}")
        self.used.add(name)
        return self.tensors[name]

    def decode(self, value, path):
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, list):
            return [self.decode(item, f"{path}/{i}") for i, item in enumerate(value)]
        if not isinstance(value, dict) or not isinstance(value.get(_TAG), str):
            self.fail(path, f"holds an untagged {type(value).__name__}")
        tag = value[_TAG]
        try:
            if tag == "tuple":
                return tuple(self.decode(item, f"{path}/{i}") for i, item in enumerate(value["items"]))
            if tag == "dict":
                result = {}
                for key, item in value["items"]:
                    if type(key) not in (str, int):
                        self.fail(path, f"has a key {key!r}")
                    result[key] = self.decode(item, f"{path}/{key}")
                return result
            if tag == "ndarray":
                return self.tensor(value["tensor"], path).numpy().copy()
            if tag == "tensor":
                return self.tensor(value["tensor"], path).clone()
            if tag == "str_array":
                if not all(isinstance(item, str) for item in value["items"]):
                    self.fail(path, "holds a non-string item in a string array")
                return np.array(value["items"], dtype=np.dtype(value["dtype"]))
            if tag == "scalar":
                if np.dtype(value["dtype"]).kind not in "biuf":
                    self.fail(path, f"has a scalar of dtype {value['dtype']!r}")
                return np.dtype(value["dtype"]).type(value["value"])
            if tag == "device":
                return torch.device(value["value"])
            if tag == "random_state":
                kind, keys, pos, has_gauss, cached = value["state"]
                state = np.random.RandomState()
                state.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
                return state
            if tag == "param":
                if value["name"] not in self.params:
                    self.fail(path, f"refers to an unknown parameter {value['name']!r}")
                return self.params[value["name"]]
        except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
            self.fail(path, f"holds a malformed {tag!r} value ({exc})")
        self.fail(path, f"has an unknown type tag {tag!r}")


def _read(path):
    """The file's tensors and its JSON document, or a ValueError saying what is wrong."""
    from safetensors.torch import load as safetensors_load

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
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{source} was written by skae {document.get('skae_version')!r} in file format "
            f"version {version!r}; this skae reads up to version {FORMAT_VERSION}. Upgrade skae."
        )
    try:
        tensors = safetensors_load(data)
    except Exception as exc:  # safetensors reports corruption with its own error types
        raise ValueError(f"{source} is corrupted: its tensors cannot be read ({exc}).") from None
    if document.get("checksum") != _checksum(tensors):
        raise ValueError(f"{source} is corrupted: its tensors do not match their checksum.")
    return tensors, document, source


def _rebuild_networks(estimator, state_dicts, decoder):
    """Networks of the fitted architecture, filled with the saved weights."""
    fitted = dict(zip(_ARCHITECTURE_PARAMETERS, estimator._fitted_architecture))
    if fitted.get("encoder") is not None or fitted.get("decoder") is not None:
        decoder.fail("'attributes'", "describe user-supplied networks, which are never saved")
    fitted.pop("encoder", None)
    fitted.pop("decoder", None)
    if fitted.get("conv_channels") is None:
        fitted.pop("conv_channels", None)
    builder = clone(estimator).set_params(**fitted)
    n_features = estimator.n_features_in_
    with torch.device("meta"):
        networks = builder._build_networks(
            n_features, builder._hidden_layer_sizes(), getattr(estimator, "image_shape_", None)
        )
        networks = builder._wrap_networks(*networks, np.zeros(n_features), 1.0)
    for name, network in zip(_NETWORKS, networks):
        network.to_empty(device="cpu")
        state = {key: decoder.tensor(t, f"network {name!r}") for key, t in state_dicts[name].items()}
        expected = network.state_dict()
        mismatched = [
            key for key in state if key in expected and state[key].dtype != expected[key].dtype
        ]
        try:
            if mismatched:
                raise RuntimeError(f"wrong dtype for {mismatched}")
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            decoder.fail(f"network {name!r}", f"does not match its architecture ({exc})")
        network.eval()
        setattr(estimator, name, network)


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
        If it is not a skae model file, is corrupted, comes from a newer file
        format, or holds anything but plain data and tensors.

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
    from ._base import _BaseAutoencoder
    from .engine.device import resolve_device

    tensors, document, source = _read(path)
    cls = _estimator_classes().get(document.get("class"))
    if cls is None:
        raise ValueError(f"{source} holds an unknown estimator class {document.get('class')!r}.")
    for key in ("params", "attributes", "networks"):
        if not isinstance(document.get(key), dict):
            raise ValueError(f"{source} is not a valid skae model file: {key!r} is missing.")
    decoder = _Decoder(tensors, {}, source)
    params = {key: decoder.decode(value, f"parameter {key!r}") for key, value in document["params"].items()}
    estimator = cls()
    try:
        estimator.set_params(**params)
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source} holds invalid parameters: {exc}") from None
    decoder.params = estimator.get_params(deep=False)
    for key, value in document["attributes"].items():
        if (
            not isinstance(key, str)
            or not _ATTRIBUTE_NAME.match(key)
            or key in decoder.params
            or key in _NETWORKS
            or hasattr(_BaseAutoencoder, key)
            or hasattr(cls, key)
        ):
            decoder.fail(f"attribute {key!r}", "is not an attribute skae stores")
        setattr(estimator, key, decoder.decode(value, f"attribute {key!r}"))
    networks = document["networks"]
    if networks:
        if set(networks) != set(_NETWORKS) or not all(isinstance(v, dict) for v in networks.values()):
            decoder.fail("'networks'", f"names {sorted(networks)}, not the encoder and decoder")
        if not hasattr(estimator, "_fitted_architecture") or not hasattr(estimator, "n_features_in_"):
            decoder.fail("'attributes'", "lack the fitted architecture")
        _rebuild_networks(estimator, networks, decoder)
    unused = set(tensors) - decoder.used
    if unused:
        decoder.fail("the tensor section", f"has tensors nothing refers to: {sorted(unused)[:5]}")
    if networks:
        target = getattr(estimator, "device_", torch.device("cpu")) if device is None else device
        try:
            target = resolve_device(target)
        except ValueError:
            if device is not None:
                raise
            target = torch.device("cpu")
        estimator.device_ = target
        for name in _NETWORKS:
            getattr(estimator, name).to(target)
    return estimator
