"""A corpus of hostile ``.skae`` files, generated from two small fitted models (issue 16).

Each :class:`Case` is one file an attacker could hand to :func:`skae.load`,
grouped by the class of attack it belongs to:

- ``"memory"``: tensors and values that reach native code (the Adam state and
  its step counters, the random state, weights, the latent density) edited so
  they no longer fit the network;
- ``"integrity"``: the JSON document or the tensors changed without redoing the
  checksum (single digits, swapped references, random byte flips);
- ``"cost"``: files that would cost far more to read than their size (declared
  string widths, huge or lying headers, deep nesting, FIFOs and devices);
- ``"deep_errors"``: values that used to fail deep inside (unknown activation,
  impossible sizes, a zero data scale);
- ``"payload"``: pickles planted in every part of the file;
- ``"format"``: wrong format names and versions.

"Sealed" cases are written with a valid checksum (an attacker can always
compute one), so that they reach the checks behind it; the others keep the
original checksum. Every case must be refused with a ``ValueError`` whose
message matches the case's ``match`` (the field it names), except the few
marked ``expect="valid"``: files skae could have written.

Some cases form the families the issue counted, in the same numbers: 61
tensor edits (each of the VAE file's 53 tensors edited once, and 8 swapped
Adam-state references), 200 single-digit edits and 300 random byte flips of
the header, 18 planted pickles (``Case.family``).

Run as a script to write the corpus to a folder::

    python tests/hostile_files.py OUTDIR
"""

import json
import os
import pickle
import random
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ATTACKS", "PAYLOAD_MARKER", "Case", "cases", "make_base_files", "parse", "write_case"]

ATTACKS = ("memory", "integrity", "cost", "deep_errors", "payload", "format")

# How many of each bulk edit (the attacker tried 200 digits and 300 flips).
N_DIGIT_EDITS = 200
N_HEADER_FLIPS = 300
N_TENSOR_FLIPS = 40


@dataclass
class Case:
    """One hostile file: ``make(path)`` writes it (a file, a FIFO or a link) at ``path``."""

    attack: str
    name: str
    base: str  # the base model it was made from: "vae" or "ae"
    make: object
    # "refused": load raises a ValueError whose message matches ``match``. "valid":
    # a model skae could have saved (a parameter set after fit), which loads, and
    # whose use fails only with a clear ValueError.
    expect: str = "refused"
    # A regular expression the ValueError's message must match: the field it names.
    match: str = None
    # The counted families ("tensor edits", "header digit edits", ...), if one.
    family: str = ""


#: What a planted pickle creates (in the current folder) if anything ever unpickles it.
PAYLOAD_MARKER = ".skae-hostile-payload-ran"


class _Payload:
    """What a planted pickle would run; never unpickled by the corpus itself."""

    def __reduce__(self):
        return (os.mkdir, (PAYLOAD_MARKER,))


PICKLE = pickle.dumps(_Payload(), protocol=0)


# ------------------------------------------------------------------ base files


def make_base_files(directory):
    """Fit two tiny models and save them in ``directory``; return ``{"vae": path, "ae": path}``."""
    from sklearn.exceptions import ConvergenceWarning

    from skae import AutoencoderTransformer, VAETransformer

    X = np.random.RandomState(0).uniform(size=(40, 5))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    common = dict(n_components=2, hidden_layer_sizes=(4, 4), max_iter=3, random_state=0, device="cpu")
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, est in {
            "vae": VAETransformer(**common),
            "ae": AutoencoderTransformer(latent_sampler="gmm", **common),
        }.items():
            est.fit(X)
            paths[name] = directory / f"{name}.skae"
            est.save(paths[name])
    return paths


def base_data():
    """The training data of the base models (for comparing a loaded model with its base)."""
    return np.random.RandomState(0).uniform(size=(40, 5))


# ------------------------------------------------------------------ editing files


def parse(data):
    """``(header_size, header, document, arrays)`` of a .skae file's bytes."""
    from safetensors.numpy import load

    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    document = json.loads(header["__metadata__"]["skae"])
    return size, header, document, dict(load(data))


def _sealed(data, edit):
    """The file with ``edit(document, arrays)`` applied and a checksum that matches again."""
    from skae import persistence

    _, _, document, arrays = parse(data)
    edit(document, arrays)
    # np.array: edits of 0-d arrays (``-scale``) give NumPy scalars.
    return persistence._file_bytes(document, {name: np.array(value, order="C") for name, value in arrays.items()})


def _sealed_case(attack, name, base, edit, expect="refused", match=None, family=""):
    """A case whose file is the base file with ``edit(document, arrays)`` applied, sealed."""
    return Case(attack, name, base, lambda path, data: path.write_bytes(_sealed(data, edit)), expect, match, family)


def _unsealed(data, edit):
    """The file with ``edit(document)`` applied to its JSON, every checksum left as it was."""
    size, header, document, _ = parse(data)
    edit(document)
    header["__metadata__"]["skae"] = json.dumps(document)
    return _header_bytes(header) + data[8 + size :]


def _header_bytes(header):
    # As safetensors writes it: compact JSON padded with spaces to a multiple of 8.
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text


def _document_span(data):
    """``(start, end)`` of the JSON document's text inside the file's header."""
    size = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + size]
    start = header.index(b'"skae":"') + len(b'"skae":"')
    end = start
    while header[end : end + 1] != b'"':
        end += 2 if header[end : end + 1] == b"\\" else 1
    return 8 + start, 8 + end


def _state(document):
    return document["state"]


def _attributes(document):
    return document["state"]["attributes"]


def _adam(document):
    """``{index: entry}`` of the optimizer state's per-parameter entries, in the document."""
    return dict(_state(document)["optimizer"]["state"]["items"])


def _ref(document, index, key):
    """The tensor name the document's Adam entry ``index`` uses for ``key``."""
    return _adam(document)[index][key]["array"]["tensor"]


def _set_attribute(name, value):
    return lambda document, arrays: _attributes(document).__setitem__(name, value)


def _set_param(name, value):
    return lambda document, arrays: _state(document)["params"].__setitem__(name, value)


def _tuple(*items):
    return {"__skae__": "tuple", "items": list(items)}


def _tensor_ref(name):
    return {"__skae__": "ndarray", "tensor": name}


# ------------------------------------------------------------------ the cases


# Edits of one tensor each, by its role in the state: every one leaves the tensor
# unusable for its network (a shape, a dtype, a value out of range).
_MOMENT_EDITS = {
    "empty": lambda a: np.zeros(0, np.float32),
    "float64": lambda a: a.astype(np.float64),
    "reshaped": lambda a: np.zeros((a.size + 1, 1), a.dtype),
    "one_more": lambda a: np.zeros(a.size + 1, a.dtype),
    "nan": lambda a: np.full_like(a, np.nan),
    "inf": lambda a: np.full_like(a, np.inf),
}
_SECOND_MOMENT_EDITS = {**_MOMENT_EDITS, "negative": lambda a: -1 - a}
_STEP_EDITS = {
    "float64": lambda a: np.array(3.0),
    "vector": lambda a: np.array([3.0, 3.0], np.float32),
    "negative": lambda a: np.array(-5.0, np.float32),
    "zero": lambda a: np.array(0.0, np.float32),
    "fraction": lambda a: np.array(2.5, np.float32),
    "nan": lambda a: np.array(np.nan, np.float32),
    "huge": lambda a: np.array(3e38, np.float32),
    "int64": lambda a: np.array(3, np.int64),
}
_WEIGHT_EDITS = {
    "float64": lambda w: w.astype(np.float64),
    "nan": lambda w: np.full_like(w, np.nan),
    "empty": lambda w: np.zeros(0, w.dtype),
    "extra_row": lambda w: np.zeros((w.shape[0] + 1, *w.shape[1:]), w.dtype),
    "inf": lambda w: np.full_like(w, -np.inf),
    "int32": lambda w: w.astype(np.int32),
}
_STANDARDIZE_EDITS = {
    "mean": {"longer": lambda m: np.zeros(m.size + 1, m.dtype), "nan": lambda m: np.full_like(m, np.nan)},
    "scale": {"zero": np.zeros_like, "negative": lambda s: -s},
}
_ADAM_TENSOR = re.compile(r"state/optimizer/state/items/(\d+)/1/(exp_avg|exp_avg_sq|step)/array")
_NETWORK_TENSOR = re.compile(r"state/networks/(encoder_|decoder_)/(.*)")


def _tensor_edit(name, role_counts):
    """``(case name, change, match)``: the edit of the tensor ``name``, the next one for its role."""
    adam, network = _ADAM_TENSOR.fullmatch(name), _NETWORK_TENSOR.fullmatch(name)
    if adam:
        index, key = adam.groups()
        edits = {"exp_avg": _MOMENT_EDITS, "exp_avg_sq": _SECOND_MOMENT_EDITS, "step": _STEP_EDITS}[key]
        where, match = f"adam_{index}_{key}", rf"the optimizer state's entry {index} "
    elif network:
        net, key = network.groups()
        role = key.rsplit(".", 1)[1]
        edits = _STANDARDIZE_EDITS.get(role, _WEIGHT_EDITS)
        where, match = f"{net}{key}", f"network '{net}'"
        key = role if role in _STANDARDIZE_EDITS else "weight"
    elif name.endswith("_random_state/state/state/key"):
        edits, where, match, key = {"short": lambda k: k[:100]}, "rng_key", r"'_random_state'\['state'\]\['key'\]", "key"
    else:
        raise ValueError(f"no edit for tensor {name!r}: tests/hostile_files.py needs one for its role")
    count = role_counts[key] = role_counts.get(key, -1) + 1
    change = list(edits)[count % len(edits)]
    return f"{where}_{change}", edits[change], match


def _memory_cases(files):
    """Tensors and values that reach native code, edited so they no longer fit their network."""
    out = []
    _, _, _, arrays = parse(files["vae"].read_bytes())

    def tensor(name, change):
        def edit(document, arrays):
            arrays[name] = change(arrays[name])

        return edit

    # Every tensor of the VAE's file, edited once (as the attacker edited 61).
    role_counts = {}
    for name in sorted(arrays):
        case_name, change, match = _tensor_edit(name, role_counts)
        out.append(("vae", case_name, tensor(name, change), match, "tensor edits"))

    def swap_refs(a, b, key_a="exp_avg", key_b="exp_avg"):
        def edit(document, arrays):
            entries = _adam(document)
            first, second = entries[a][key_a], entries[b][key_b]
            first["array"], second["array"] = second["array"], first["array"]

        return edit

    # Parameters 0-5 are the encoder's (4x5, 4, 4x4, 4, 4x4, 4), 6-11 the decoder's
    # (4x2, 4, 4x4, 4, 5x4, 5): each pair differs in shape.
    for a, b in [(0, 1), (0, 2), (2, 3), (5, 6), (9, 10), (3, 11), (1, 10)]:
        out.append(("vae", f"adam_swap_{a}_{b}", swap_refs(a, b), rf"the optimizer state's entry ({a}|{b}) ",
                    "tensor edits"))
    out.append(("vae", "adam_swap_avg_and_step", swap_refs(0, 0, "exp_avg", "step"), "the optimizer state's entry 0 ",
                "tensor edits"))

    def adam(edit):
        return lambda document, arrays: edit(_state(document)["optimizer"])

    def group(key, value):
        return adam(lambda opt: opt["param_groups"][0].__setitem__(key, value))

    settings = [
        ("adam_group_params_repeated", group("params", [0] * 12)),
        ("adam_group_params_short", group("params", list(range(11)))),
        ("adam_group_params_out_of_range", group("params", list(range(11)) + [40])),
        ("adam_amsgrad_without_its_state", group("amsgrad", True)),
        ("adam_fused_and_foreach", group("foreach", True)),
        ("adam_capturable", group("capturable", True)),
        ("adam_betas_out_of_range", group("betas", _tuple(2.0, -1.0))),
        ("adam_lr_negative", group("lr", -1.0)),
        ("adam_unknown_setting", group("unknown_setting", 1)),
        ("adam_two_groups", adam(lambda opt: opt["param_groups"].append(dict(opt["param_groups"][0])))),
        ("adam_index_out_of_range", adam(lambda opt: opt["state"]["items"][0].__setitem__(0, 99))),
        ("adam_index_negative", adam(lambda opt: opt["state"]["items"][0].__setitem__(0, -1))),
        ("adam_index_duplicate", adam(lambda opt: opt["state"]["items"][1].__setitem__(0, 0))),
        (
            "adam_extra_entry_key",
            adam(lambda opt: opt["state"]["items"][0][1].update(max_exp_avg_sq=opt["state"]["items"][0][1]["exp_avg"])),
        ),
        ("adam_missing_entry_key", adam(lambda opt: opt["state"]["items"][0][1].pop("exp_avg_sq"))),
        ("adam_entry_not_a_dict", adam(lambda opt: opt["state"]["items"][0].__setitem__(1, [1, 2]))),
        ("adam_state_unknown_section", adam(lambda opt: opt.update(extra=1))),
    ]
    out += [("vae", name, edit, "optimizer", "") for name, edit in settings]

    def rng(edit):
        return lambda document, arrays: edit(_attributes(document)["_random_state"]["state"], arrays)

    def key_int64(state, arrays):
        name = state["state"]["key"]["tensor"]
        arrays[name] = arrays[name].astype(np.int64)

    random_states = [
        ("rng_pos_beyond_key", rng(lambda s, a: s["state"].__setitem__("pos", 10**6))),
        ("rng_pos_negative", rng(lambda s, a: s["state"].__setitem__("pos", -1))),
        ("rng_key_int64", rng(key_int64)),
        ("rng_has_gauss_5", rng(lambda s, a: s.__setitem__("has_gauss", 5))),
        ("rng_gauss_nan", rng(lambda s, a: s.__setitem__("gauss", float("nan")))),
        ("rng_other_generator_name", rng(lambda s, a: s.__setitem__("bit_generator", "PCG64"))),
        ("rng_unknown_generator", rng(lambda s, a: s.__setitem__("bit_generator", "os.system"))),
        ("rng_extra_key", rng(lambda s, a: s.__setitem__("extra", 1))),
    ]
    out += [("vae", name, edit, "attribute '_random_state'", "") for name, edit in random_states]

    def latent(name, change):
        def edit(document, arrays):
            name_ = _attributes(document)[name]["tensor"]
            arrays[name_] = change(arrays[name_])

        return edit

    densities = [
        ("latent_weights_negative", latent("latent_weights_", lambda w: -w), "latent_weights_"),
        ("latent_weights_zero", latent("latent_weights_", np.zeros_like), "latent_weights_"),
        ("latent_weights_shorter", latent("latent_weights_", lambda w: w[:-1]), "latent_means_"),
        ("latent_means_wider", latent("latent_means_", lambda m: np.zeros((m.shape[0], 3))), "latent_means_"),
        ("latent_covariances_flat", latent("latent_covariances_", lambda c: c.reshape(len(c), -1)),
         "latent_covariances_"),
        ("latent_covariances_asymmetric", latent("latent_covariances_", lambda c: c + np.triu(np.ones_like(c))),
         "latent_covariances_"),
        ("latent_mean_nan", latent("latent_mean_", lambda m: np.full_like(m, np.nan)), "latent_mean_"),
        ("latent_means_float32", latent("latent_means_", lambda m: m.astype(np.float32)), "latent_means_"),
    ]
    out += [("ae", name, edit, f"attribute '{match}'", "") for name, edit, match in densities]
    return [
        _sealed_case("memory", name, base, edit, match=match, family=family)
        for base, name, edit, match, family in out
    ]


# What a file changed after it was written is refused for: its checksum, or, where the
# change breaks the layout first, the layout (JSON, version, tensor table, size).
CHANGED_FILE = r"does not match its checksum|is corrupted|is not a skae model file|in file format version"


def _integrity_cases(files):
    out = []
    vae = files["vae"]

    def unsealed(base, name, edit):
        out.append(Case("integrity", name, base, lambda path, data, e=edit: path.write_bytes(_unsealed(data, e)),
                        match="does not match its checksum"))

    unsealed("vae", "observation_variance_x10", lambda d: _attributes(d).update(
        observation_variance_=10 * _attributes(d)["observation_variance_"]))
    unsealed("vae", "n_iter_plus_one", lambda d: _attributes(d).update(n_iter_=_attributes(d)["n_iter_"] + 1))
    unsealed("ae", "verbose_param", lambda d: _state(d)["params"].update(verbose=1))

    def swap(network, a, b):
        def edit(document):
            weights = _state(document)["networks"][network]
            weights[a], weights[b] = weights[b], weights[a]

        return edit

    # Same-shaped tensors (hidden layers of 4): a silently different model without a checksum.
    unsealed("vae", "swap_bias_refs_encoder", swap("encoder_", "1.body.0.bias", "1.body.2.bias"))
    unsealed("vae", "swap_bias_refs_decoder", swap("decoder_", "0.0.bias", "0.2.bias"))
    unsealed("ae", "swap_weight_refs_across_networks", _swap_across("1.2.weight", "0.2.weight"))
    unsealed("vae", "swap_adam_refs", lambda d: _swap_adam_avg(d, 0, 1))

    data = vae.read_bytes()
    start, end = _document_span(data)
    digits = [i for i in range(start, end) if data[i : i + 1].isdigit()]
    rng = random.Random(16)
    for n, position in enumerate(sorted(rng.sample(digits, min(N_DIGIT_EDITS, len(digits))))):
        new = str((int(data[position : position + 1]) + rng.randint(1, 9)) % 10).encode()
        out.append(
            Case("integrity", f"digit_{n:03d}_at_{position}", "vae",
                 lambda path, data, p=position, c=new: path.write_bytes(data[:p] + c + data[p + 1 :]),
                 match=CHANGED_FILE, family="header digit edits")
        )
    size = int.from_bytes(data[:8], "little")
    for n in range(N_HEADER_FLIPS):
        position, mask = rng.randrange(8 + size), rng.randrange(1, 256)
        out.append(Case("integrity", f"header_flip_{n:03d}_at_{position}", "vae", _flip(position, mask),
                        match=CHANGED_FILE, family="header byte flips"))
    for n in range(N_TENSOR_FLIPS):
        position, mask = rng.randrange(8 + size, len(data)), 1 << rng.randrange(8)
        out.append(Case("integrity", f"tensor_flip_{n:02d}_at_{position}", "vae", _flip(position, mask),
                        match="does not match its checksum", family="tensor byte flips"))
    out += [
        Case("integrity", "truncated_by_one", "vae", lambda path, data: path.write_bytes(data[:-1]),
             match="truncated or extended"),
        Case("integrity", "extended_by_eight", "vae", lambda path, data: path.write_bytes(data + bytes(8)),
             match="truncated or extended"),
        Case("integrity", "empty", "vae", lambda path, data: path.write_bytes(b""), match="only 0 bytes long"),
    ]
    return out


def _swap_across(encoder_key, decoder_key):
    def edit(document):
        networks = _state(document)["networks"]
        encoder, decoder = networks["encoder_"], networks["decoder_"]
        encoder[encoder_key], decoder[decoder_key] = decoder[decoder_key], encoder[encoder_key]

    return edit


def _swap_adam_avg(document, a, b):
    entries = _adam(document)
    entries[a]["exp_avg"], entries[b]["exp_avg"] = entries[b]["exp_avg"], entries[a]["exp_avg"]


def _flip(position, mask):
    def make(path, data):
        path.write_bytes(data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :])

    return make


def _cost_cases():
    def sealed(name, edit, match):
        return _sealed_case("cost", name, "vae", edit, match=match)

    def header_size(value):
        return lambda path, data: path.write_bytes(value.to_bytes(8, "little") + data[8:])

    def huge_header(path, data):
        # A well-formed file whose JSON holds 2 million numbers (10 MB of header).
        path.write_bytes(_sealed(data, lambda d, a: _attributes(d).update(loss_curve_=[0.5] * (2 * 10**6))))

    def many_values(path, data):
        # Under the header size cap, over the cap on JSON values.
        path.write_bytes(_sealed(data, lambda d, a: _attributes(d).update(loss_curve_=[0] * 400_000)))

    def nested(depth):
        # Too deep for json.dumps: the nested lists are put in the document's text.
        def make(path, data):
            from skae import persistence

            _, _, document, arrays = parse(data)
            _attributes(document)["loss_curve_"] = "NESTED"
            text = json.dumps(document).replace('"NESTED"', "[" * depth + "]" * depth)
            path.write_bytes(persistence._file_bytes(text, arrays))

        return make

    def padded_header(n_bytes):
        # The header padded with spaces (valid JSON) to ``n_bytes`` more: a large header that is cheap to make.
        def make(path, data):
            size = int.from_bytes(data[:8], "little")
            with open(path, "wb") as file:
                file.write((size + n_bytes).to_bytes(8, "little"))
                file.write(data[8 : 8 + size])
                file.write(b" " * n_bytes)
                file.write(data[8 + size :])

        return make

    def fifo(path, data):
        os.mkfifo(path)

    def link_to(target):
        def make(path, data):
            os.symlink(target, path)

        return make

    too_deep = "nests JSON more than 40 levels deep"
    not_regular = "not a skae model file: it is a {}, not a regular file"
    return [
        sealed("str_array_declared_400MB", _set_attribute(
            "feature_names_in_", {"__skae__": "str_array", "items": ["a"] * 5, "dtype": "<U100000000"}),
            match="attribute 'feature_names_in_' declares dtype '<U100000000'"),
        sealed("str_array_in_parameter", _set_param(
            "activation", {"__skae__": "str_array", "items": ["relu"], "dtype": "<U50000000"}),
            match="parameter 'activation' declares dtype '<U50000000'"),
        sealed("scalar_of_string_dtype", _set_attribute(
            "n_iter_", {"__skae__": "scalar", "dtype": "<U100000000", "value": 3}),
            match="attribute 'n_iter_' has a scalar 3 of dtype '<U100000000'"),
        Case("cost", "nesting_30", "vae", nested(30), match="attribute 'loss_curve_' must be a list of finite numbers"),
        Case("cost", "nesting_900", "vae", nested(900), match=too_deep),
        Case("cost", "nesting_3000", "vae", nested(3000), match=too_deep),
        sealed("string_of_8MB", _set_param("device", "x" * (8 << 20)),
               match="holds a string of 8,388,608 characters, more than 65,536"),
        sealed("long_attribute_name", lambda d, a: _attributes(d).update({"a" * 100_000: 1}),
               match="holds a string of 100,000 characters, more than 65,536"),
        Case("cost", "many_json_values", "vae", many_values, match="JSON values, more than 262,144"),
        Case("cost", "header_of_2M_numbers", "vae", huge_header, match="JSON values, more than 262,144"),
        Case("cost", "header_of_86MB_padded", "vae", padded_header(86 << 20),
             match=r"its header takes [\d,]+ bytes, more than 16,777,216"),
        Case("cost", "header_size_beyond_file", "vae", header_size(10**6),
             match="declare a header of 1,000,000 bytes, more than the rest of the file"),
        Case("cost", "header_size_2_63", "vae", header_size(2**63),
             match="declare a header of 9,223,372,036,854,775,808 bytes"),
        Case("cost", "tensor_declared_1e12_elements", "vae", _declared_tensor([10**6, 10**6]),
             match=r"tensor '.*' of shape \[1000000, 1000000\] takes 16 bytes"),
        Case("cost", "tensor_declared_overflowing_shape", "vae", _declared_tensor([2**40, 2**40, 2**40]),
             match=r"tensor '.*' of shape \[1099511627776, 1099511627776, 1099511627776\]"),
        Case("cost", "fifo", "vae", fifo, match=not_regular.format("FIFO")),
        Case("cost", "link_to_dev_zero", "vae", link_to("/dev/zero"), match=not_regular.format("character device")),
        Case("cost", "link_to_dev_urandom", "vae", link_to("/dev/urandom"),
             match=not_regular.format("character device")),
    ]


def _declared_tensor(shape):
    """A file whose safetensors header declares a tensor of ``shape`` over 8 bytes."""

    def make(path, data):
        size, header, _, _ = parse(data)
        name = next(key for key in header if key != "__metadata__")
        header[name]["shape"] = shape
        path.write_bytes(_header_bytes(header) + data[8 + size :])

    return make


def _deep_error_cases():
    arch = lambda d: _attributes(d)["_fitted_architecture"]["items"]  # noqa: E731

    def set_arch(index, value):
        return lambda d, a: arch(d).__setitem__(index, value)

    invalid_param = "the state holds invalid parameters: The '{}' parameter"
    fitted_arch = "attribute '_fitted_architecture' holds invalid parameters \\(The '{}' parameter"
    edits = {  # name: (edit, what the message must name)
        "activation_bogus_param": (_set_param("activation", "bogus"), invalid_param.format("activation")),
        "activation_bogus_fitted": (set_arch(2, "bogus"), fitted_arch.format("activation")),
        "architecture_bogus_fitted": (set_arch(4, "bogus"), fitted_arch.format("architecture")),
        "loss_bogus_fitted": (set_arch(3, "bogus"), fitted_arch.format("reconstruction_loss")),
        "fitted_architecture_short": (lambda d, a: arch(d).pop(), "attribute '_fitted_architecture' must be a tuple"),
        "fitted_architecture_not_a_tuple": (
            _set_attribute("_fitted_architecture", [2]), "attribute '_fitted_architecture' must be a tuple"),
        "n_features_in_minus_one": (_set_attribute("n_features_in_", -1), "attribute 'n_features_in_' must be an"),
        "n_features_in_zero": (_set_attribute("n_features_in_", 0), "attribute 'n_features_in_' must be an"),
        "n_features_in_1e12": (_set_attribute("n_features_in_", 10**12), "declares n_features_in_ = 1000000000000"),
        "n_features_in_float": (_set_attribute("n_features_in_", 5.0), "attribute 'n_features_in_' must be an"),
        "n_features_in_bool": (_set_attribute("n_features_in_", True), "attribute 'n_features_in_' must be an"),
        "n_features_in_string": (_set_attribute("n_features_in_", "5"), "attribute 'n_features_in_' must be an"),
        "n_features_in_missing": (lambda d, a: _attributes(d).pop("n_features_in_"), "'n_features_in_'"),
        "hidden_layers_1e5_fitted": (set_arch(1, _tuple(100000, 100000)), "declares hidden layer 0 = 100000"),
        "hidden_layers_1e5_param": (_set_param("hidden_layer_sizes", _tuple(100000, 100000)), None),
        "n_components_1e12_fitted": (set_arch(0, 10**12), "attribute 'n_components_' is 2"),
        "n_components_mismatch": (_set_attribute("n_components_", 3), "attribute 'n_components_' is 3"),
        "beta_1e300_param": (_set_param("beta", 1e300), invalid_param.format("beta")),
        "data_scale_zero": (_set_attribute("_data_scale", 0.0), "attribute '_data_scale' must be positive"),
        "data_scale_negative": (_set_attribute("_data_scale", -1.0), "attribute '_data_scale' must be positive"),
        "data_scale_nan": (_set_attribute("_data_scale", float("nan")), "attribute '_data_scale' must be a finite"),
        "data_scale_string": (_set_attribute("_data_scale", "1"), "attribute '_data_scale' must be a finite"),
        "min_observation_variance_zero": (
            _set_attribute("_min_observation_variance", 0.0), "attribute '_min_observation_variance'"),
        "observation_variance_negative": (
            _set_attribute("observation_variance_", -1.0), "attribute 'observation_variance_'"),
        "observation_variance_none_for_mse": (
            _set_attribute("observation_variance_", None), "attribute 'observation_variance_'"),
        "image_shape_wrong_product": (_set_attribute("image_shape_", _tuple(2, 2)), "attribute 'image_shape_'"),
        "device_huge_index": (
            _set_attribute("device_", {"__skae__": "device", "value": "cuda:99999999999999999999"}),
            "attribute 'device_'"),
        "device_bogus": (_set_attribute("device_", {"__skae__": "device", "value": "bogus"}), "attribute 'device_'"),
        "n_iter_negative": (_set_attribute("n_iter_", -1), "attribute 'n_iter_'"),
        "loss_curve_strings": (_set_attribute("loss_curve_", ["a", "b", "c"]), "attribute 'loss_curve_'"),
        "loss_curve_nan": (_set_attribute("loss_curve_", [float("nan")] * 3), "attribute 'loss_curve_'"),
        "best_loss_not_the_minimum": (_set_attribute("best_loss_", -5.0), "attribute 'best_loss_'"),
        "validation_scores_without_best": (
            _set_attribute("validation_scores_", [1.0]), "attribute 'best_validation_score_'"),
        "feature_names_wrong_length": (
            _set_attribute("feature_names_in_", {"__skae__": "str_array", "items": ["a", "b"], "dtype": "|O"}),
            "attribute 'feature_names_in_' has 2 names"),
        "unknown_attribute": (_set_attribute("extra_", 1), "attribute 'extra_' is not an attribute skae stores"),
        "fitted_attributes_without_networks": (
            lambda d, a: _state(d).update(networks=None, optimizer=None), "tensors nothing refers to"),
        "networks_without_fitted_attributes": (
            lambda d, a: _state(d).update(attributes={}), "tensors nothing refers to"),
    }
    # set_params may give a fitted model any valid parameters: its file loads, and
    # continuing to train it is a clear ValueError (the network's shape changed).
    return [
        _sealed_case("deep_errors", name, "vae", edit, "refused" if match else "valid", match)
        for name, (edit, match) in edits.items()
    ]


def _payload_cases():
    text = PICKLE.decode("latin-1")

    def sealed(name, edit, match):
        return _sealed_case("payload", name, "ae", edit, match=match)

    def uint8_tensor(document, arrays):
        arrays["state/attributes/_payload"] = np.frombuffer(PICKLE, np.uint8).copy()
        _attributes(document)["_payload"] = _tensor_ref("state/attributes/_payload")

    def float_tensor(document, arrays):
        padded = PICKLE + bytes(-len(PICKLE) % 8)
        arrays["state/attributes/_payload"] = np.frombuffer(padded, np.float64).copy()
        _attributes(document)["_payload"] = _tensor_ref("state/attributes/_payload")

    def in_tensor_bytes(path, data):
        size = int.from_bytes(data[:8], "little")
        path.write_bytes(data[: 8 + size] + PICKLE + data[8 + size + len(PICKLE) :])

    def header_field(path, data):
        size, header, _, _ = parse(data)
        header["payload"] = {"dtype": "U8", "shape": [len(PICKLE)], "data_offsets": [0, len(PICKLE)], "x": text}
        path.write_bytes(_header_bytes(header) + data[8 + size :])

    def metadata_key(path, data):
        size, header, _, _ = parse(data)
        header["__metadata__"]["pickle"] = text
        path.write_bytes(_header_bytes(header) + data[8 + size :])

    def raw(content):
        return lambda path, data: path.write_bytes(content)

    refused_attribute = "attribute '{}' is not an attribute skae stores"
    out = [
        sealed("attribute_str", _set_attribute("_payload", text), refused_attribute.format("_payload")),
        sealed("attribute_hex", _set_attribute("_payload", PICKLE.hex()), refused_attribute.format("_payload")),
        sealed("attribute_list_of_bytes", _set_attribute("_payload", list(PICKLE)),
               refused_attribute.format("_payload")),
        sealed("attribute_uint8_tensor", uint8_tensor, refused_attribute.format("_payload")),
        sealed("attribute_float_tensor", float_tensor, refused_attribute.format("_payload")),
        sealed("fitted_attribute_str", _set_attribute("latent_mean_", text), "tensors nothing refers to"),
        sealed("parameter_str", _set_param("activation", text), "The 'activation' parameter"),
        sealed("parameter_device_str", _set_param("device", text), "parameter 'device' is"),
        sealed("tagged_pickle", _set_attribute("n_iter_", {"__skae__": "pickle", "data": text}),
               "attribute 'n_iter_' has an unknown type tag 'pickle'"),
        sealed("tagged_reduce", _set_attribute("n_iter_", {"__skae__": "reduce", "callable": "os.system"}),
               "attribute 'n_iter_' has an unknown type tag 'reduce'"),
        sealed("estimator_class", _set_param("latent_sampler", {"__skae__": "estimator", "class": "os.system",
                                                               "params": {}}),
               "parameter 'latent_sampler' names an estimator class skae does not store: 'os.system'"),
        sealed("dunder_attribute", _set_attribute("__reduce__", text), refused_attribute.format("__reduce__")),
        sealed("document_class", lambda d, a: d.update({"class": "subprocess.Popen"}),
               "unknown estimator class 'subprocess.Popen'"),
        Case("payload", "tensor_bytes", "ae", in_tensor_bytes, match="does not match its checksum"),
        Case("payload", "header_field", "ae", header_field, match="header entry 'payload' is not a tensor's"),
        Case("payload", "metadata_key", "ae", metadata_key, match=r"metadata has unknown or missing entries \['pickle'\]"),
        Case("payload", "plain_pickle_file", "ae", raw(PICKLE), match="does not start with a safetensors header"),
        Case("payload", "pickle_after_header_size", "ae", raw(len(PICKLE).to_bytes(8, "little") + PICKLE),
             match="header is not valid JSON"),
    ]
    for case in out:
        case.family = "planted pickles"
    return out


def _format_cases():
    from skae.persistence import FORMAT_VERSION

    def version(value):
        return document(
            f"format_version_{json.dumps(value)}",
            lambda d, a: d.update(format_version=value),
            rf"in file format version {re.escape(repr(value))}; this skae reads version {FORMAT_VERSION} only",
        )

    def document(name, edit, match):
        return _sealed_case("format", name, "vae", edit, match=match)

    not_skae = "its metadata is not skae's"
    return [
        *(version(v) for v in (-1, True, False, str(FORMAT_VERSION), float(FORMAT_VERSION), None, [FORMAT_VERSION],
                               FORMAT_VERSION + 1, FORMAT_VERSION - 1, 10**30)),
        document("format_name_other", lambda d, a: d.update(format="Skae"), not_skae),
        document("format_name_missing", lambda d, a: d.pop("format"), not_skae),
        document("class_missing", lambda d, a: d.pop("class"), "unknown estimator class 'None'"),
        document("class_private_base", lambda d, a: d.update({"class": "_BaseAutoencoder"}),
                 "unknown estimator class '_BaseAutoencoder'"),
        document("class_other_skae", lambda d, a: d.update({"class": "AutoencoderTransformer"}),
                 "AutoencoderTransformer has no parameter 'beta'"),
        document("document_is_a_list", lambda d, a: (d.clear(), d.update(state=[])), not_skae),
        document("state_layout_version_true", lambda d, a: _state(d).update(skae_state=True),
                 "the state has layout version True"),
    ]


def cases(files):
    """Every hostile case, made from the base files ``files`` (see :func:`make_base_files`)."""
    return [
        *_memory_cases(files),
        *_integrity_cases(files),
        *_cost_cases(),
        *_deep_error_cases(),
        *_payload_cases(),
        *_format_cases(),
    ]


def write_case(case, files, directory):
    """Write ``case`` in ``directory``; return its path."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / f"{case.attack}__{case.name}.skae"
    case.make(path, Path(files[case.base]).read_bytes())
    return path


def main(directory):
    files = make_base_files(Path(directory) / "base")
    for case in cases(files):
        write_case(case, files, directory)
    print(f"wrote {len(cases(files))} hostile files to {directory}")


if __name__ == "__main__":
    main(sys.argv[1])
