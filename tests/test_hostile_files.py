"""Hostile .skae files: the corpus of tests/hostile_files.py, and fuzzed edits of the header.

Every file of the corpus is refused with a ValueError (or loads as stated in
its case), without running code and without hanging; the crash, hang and
memory checks of each file in a guarded process are in
``benchmarks/hostile_files.py``.
"""

import collections
import contextlib
import json
import os
import re
import signal
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import skae

from .hostile_files import ATTACKS, PAYLOAD_MARKER, _sealed, base_data, cases, make_base_files, parse, write_case

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hostile")
    files = make_base_files(directory / "base")
    return files, cases(files), directory


@contextlib.contextmanager
def _time_limit(seconds):
    """Raise TimeoutError in the test if the block runs longer (a FIFO that blocks, say)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _behaviour(est, X):
    Z = est.transform(X)
    return [Z, est.inverse_transform(Z), est.score_samples(X), est.sample(5, random_state=0)]


def _outcome(case, path, base_path):
    """What loading ``path`` did, as a short string ("refused" for a ValueError naming what it should)."""
    try:
        with _time_limit(10):
            est = skae.load(path)
    except ValueError as exc:
        if case.match is not None and not re.search(case.match, str(exc)):
            return f"refused, but the message does not match {case.match!r}: {exc}"
        return "refused"
    except Exception as exc:  # noqa: BLE001 - the test reports it
        return f"load raised {type(exc).__name__}: {exc}"
    X = base_data()
    same = all(np.array_equal(a, b) for a, b in zip(_behaviour(est, X), _behaviour(skae.load(base_path), X)))
    if case.expect == "valid":
        try:
            est.partial_fit(X)
        except ValueError:
            pass
        return "valid"
    return "loaded unchanged" if same else "loaded a different model"


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_hostile_file_is_refused(attack, corpus, tmp_path, monkeypatch):
    files, all_cases, directory = corpus
    monkeypatch.chdir(tmp_path)  # where a planted pickle would leave its marker, if it ran
    expected = {"refused": {"refused"}, "valid": {"valid"}}
    chosen = [case for case in all_cases if case.attack == attack]
    assert chosen
    failures = []
    for case in chosen:
        path = write_case(case, files, directory / attack)
        outcome = _outcome(case, path, files[case.base])
        if outcome not in expected[case.expect]:
            failures.append(f"{case.name}: {outcome}")
        assert not os.path.exists(PAYLOAD_MARKER), f"{case.name} ran its payload"
        if attack == "cost":
            path.unlink()  # the large ones take 100 MB
    assert not failures, f"{len(failures)} of {len(chosen)} {attack} files not handled:\n" + "\n".join(failures)


def test_families_have_the_issues_counts(corpus):
    """The corpus replays the attacks the issue counted, in the same numbers."""
    _, all_cases, _ = corpus
    families = collections.Counter(case.family for case in all_cases)
    assert families["tensor edits"] == 61
    assert families["header digit edits"] == 200
    assert families["header byte flips"] == 300
    assert families["planted pickles"] == 18
    assert all(case.match for case in all_cases if case.expect == "refused")


SINGLE_BYTE_FAMILIES = ("header digit edits", "header byte flips", "tensor byte flips")
# A refusal may allocate this multiple of the file's size, plus a fixed allowance.
ALLOCATION_PER_BYTE = 8
ALLOCATION_ALLOWANCE = 1 << 20


def test_hostile_files_are_refused_without_allocating_much_more_than_their_size(corpus, tmp_path):
    """Peak Python and NumPy allocation of each refusal (tracemalloc), for the corpus's files: all of
    them but the single-byte edits (one in ten) and the memory class (one in five), which differ from
    the base file in a byte or a small tensor and are slow to load under tracemalloc."""
    files, all_cases, _ = corpus
    refused = [case for case in all_cases if case.expect == "refused"]
    sampled = {
        "single-byte edits": ([c for c in refused if c.family in SINGLE_BYTE_FAMILIES], 10),
        "memory": ([c for c in refused if c.attack == "memory"], 5),
    }
    chosen = [c for c in refused if c.family not in SINGLE_BYTE_FAMILIES and c.attack != "memory"]
    for cases_, step in sampled.values():
        chosen += cases_[::step]
    failures = []
    for case in chosen:
        path = write_case(case, files, tmp_path / "bounded")
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        tracemalloc.start()
        try:
            with _time_limit(10), pytest.raises(ValueError):
                skae.load(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        if peak > ALLOCATION_PER_BYTE * size + ALLOCATION_ALLOWANCE:
            failures.append(f"{case.name}: {peak:,} bytes for a file of {size:,}")
        if os.path.lexists(path):
            path.unlink()
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def base_file(corpus):
    files, _, _ = corpus
    return files["vae"].read_bytes()


def test_sealing_an_unchanged_file_keeps_it_loadable(base_file, tmp_path):
    """The corpus's sealed files are refused for their edits, not for how they are sealed."""
    path = tmp_path / "resealed.skae"
    path.write_bytes(_sealed(base_file, lambda document, arrays: None))
    X = base_data()
    for a, b in zip(_behaviour(skae.load(path), X), _behaviour(skae.load(_write(tmp_path, base_file)), X)):
        assert_array_equal(a, b)


def _write(tmp_path, data, name="model.skae"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_refusals_name_the_field(base_file, tmp_path):
    cases = {
        r"the optimizer state's entry 0 has 'exp_avg' of shape \(0,\)": lambda d, a: a.__setitem__(
            _adam_ref(d, 0, "exp_avg"), np.zeros(0, np.float32)
        ),
        "attribute '_data_scale' must be positive": lambda d, a: d["state"]["attributes"].update(_data_scale=0.0),
        "declares n_features_in_ = 1000000000000": lambda d, a: d["state"]["attributes"].update(
            n_features_in_=10**12
        ),
        r"\['pos'\] must be an integer in \[0, 624\]": lambda d, a: d["state"]["attributes"]["_random_state"][
            "state"
        ]["state"].update(pos=10**6),
        "attribute '_payload' is not an attribute skae stores": lambda d, a: d["state"]["attributes"].update(
            _payload="cos\nsystem\n"
        ),
    }
    for match, edit in cases.items():
        with pytest.raises(ValueError, match=match):
            skae.load(_write(tmp_path, _sealed(base_file, edit)))


def _adam_ref(document, index, key):
    return dict(document["state"]["optimizer"]["state"]["items"])[index][key]["array"]["tensor"]


# ------------------------------------------------------------------ fuzzing


def _paths(value, prefix=()):
    """Every path (keys and indices) into the JSON document."""
    yield prefix
    if type(value) is dict:
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif type(value) is list:
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


_TAGS = ["tuple", "dict", "scalar", "str_array", "tensor", "device", "random_state", "param", "estimator", "ndarray"]
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["relu", "cpu", "mse", "conv", "auto", "state/networks/encoder_/0.mean"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=3)
    | st.fixed_dictionaries({"__skae__": st.sampled_from(_TAGS)}, optional={"items": children, "value": children}),
    max_leaves=8,
)


@st.composite
def _header_edits(draw, document):
    """``(describe, edit)``: a change to the JSON document at a drawn place."""
    paths = [path for path in _paths(document) if path]
    path = draw(st.sampled_from(paths))
    kind = draw(st.sampled_from(["replace", "replace", "nudge", "delete", "insert"]))
    value = draw(_JSON)
    if kind == "nudge":
        value = draw(st.sampled_from([0, -1, 1, 2, 10**12, 0.0, -0.5, 1e300, True, None]))
    new_key = draw(st.text(min_size=1, max_size=6))

    def edit(doc):
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if kind == "delete":
            del parent[key]
        elif kind == "insert" and type(parent) is dict:
            parent[new_key] = value
        elif kind == "insert":
            parent.insert(key, value)
        elif kind == "nudge" and _is_number(parent[key]):
            parent[key] = parent[key] + value if _is_number(value) else value
        else:
            parent[key] = value

    return f"{kind} {path} {value!r}", edit


def _is_number(value):
    return type(value) in (int, float)


@pytest.fixture(scope="module")
def fuzz_base(corpus):
    files, _, _ = corpus
    data = files["vae"].read_bytes()
    _, _, document, _ = parse(data)
    return data, document


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_header_edits_are_refused_or_load_a_working_model(data, fuzz_base, tmp_path):
    """With the checksum computed again, an edited file is refused, or loads a model whose use
    raises nothing but a clear ValueError (a valid file from an attacker is still just a model)."""
    base, document = fuzz_base
    describe, edit = data.draw(_header_edits(document))

    def sealed_edit(doc, arrays):
        edit(doc)

    try:
        content = _sealed(base, sealed_edit)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return  # not JSON (a float key, say): nothing to load
    path = _write(tmp_path, content, "fuzzed.skae")
    try:
        est = skae.load(path)
    except ValueError:
        return
    X = base_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for use in (
            lambda: _behaviour(est, X),
            lambda: est.partial_fit(X),
            lambda: est.set_params(warm_start=True, max_iter=1).fit(X),
        ):
            try:
                use()
            except ValueError:
                pass
            except Exception as exc:  # pragma: no cover - what the test looks for
                raise AssertionError(f"{describe}: loaded, then {type(exc).__name__}: {exc}") from exc


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_header_edits_without_a_new_checksum_are_refused(data, fuzz_base, tmp_path):
    base, document = fuzz_base
    describe, edit = data.draw(_header_edits(document))
    size, header, document, _ = parse(base)
    try:
        edit(document)
        text = json.dumps(document)
    except (TypeError, ValueError, OverflowError):
        return
    if text == header["__metadata__"]["skae"]:
        return  # no change
    header["__metadata__"]["skae"] = text
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    path = _write(tmp_path, len(encoded).to_bytes(8, "little") + encoded + base[8 + size :], "edited.skae")
    with pytest.raises(ValueError):
        skae.load(path)
