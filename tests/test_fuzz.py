"""Fuzzing every reader of untrusted files: model files, checkpoints, IDX (plain and gzip), CSV,
NPZ and svmlight; and hostile download mirrors (at the end).

Each case mutates a valid file (bit flips, byte changes, truncations, deletions, insertions,
duplicated or spliced chunks, 32-bit fields overwritten) or changes a field of its header (IDX
magic and dimensions, .npy shape/dtype headers inside NPZ archives, zip directory sizes, JSON
metadata of model files and checkpoints, CSV and svmlight tokens), writes it, and reads it with a
time limit and with tracemalloc on.  A case passes when the reader either returns a usable result
or raises one of the library's own errors (a SoftmaxRegError) with a message -- never another
exception, never after trying to allocate memory (no MemoryError anywhere in the error's chain),
never a hang, and never an allocation larger than the file justifies (deflate expands at most
1032-fold).

Hypothesis runs derandomized (the same cases on every run, in CI too) with a fixed number of
examples per test; the last test checks the total volume.  About 11,000 cases, about a minute.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import math
import os
import re
import signal
import struct
import tempfile
import threading
import time
import tracemalloc
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris

from softmaxreg import SoftmaxNetwork, SoftmaxRegError, SoftmaxRegression
from softmaxreg.checkpoint import Checkpointer, load_checkpoint
from softmaxreg.io import mnist, read_csv, read_idx, read_npz, read_svmlight
from softmaxreg.network import Network
from softmaxreg.optim import Adam, constant
from softmaxreg.persistence import load_bundle, save
from softmaxreg.preprocessing import Scaling
from softmaxreg.training import History, Position, Run, TrainConfig, train

CASES: Counter = Counter()  # cases run, per reader
FUZZ_TESTS: set = set()  # the hypothesis tests that ran
N_FUZZ_TESTS = 11
OUTCOMES: Counter = Counter()  # ("loaded" | "refused", reader)
TIME_LIMIT_S = 10
DEFLATE_RATIO = 1032
MEASURED_PEAK = {  # bytes, the largest tracemalloc peak over all the (derandomized) cases
    "model file": 87_316, "checkpoint": 86_939, "IDX": 4_603_098, "NPZ": 75_681,
    "CSV": 739_122, "svmlight": 11_623,
}


WARMED: set[str] = set()


def fuzz(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="softmaxreg-fuzz-") as folder:
        yield Path(folder)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("ran past its time limit: a hang")


def check(reader: str, load, data: bytes, path: Path):
    """Write ``data`` to ``path`` and read it with ``load``; see the module's docstring."""
    path.write_bytes(data)
    CASES[reader] += 1
    FUZZ_TESTS.add(os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0].split("[")[0])
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S)
    try:
        if reader not in WARMED:  # a reader's first calls import lazily (each path of it its
            WARMED.add(reader)  # own modules): keep that out of the peak, with its seed files
            for seed in [*SEEDS[reader], data]:
                path.write_bytes(seed)
                with contextlib.suppress(SoftmaxRegError):
                    load(path)
        result, error, peak = _traced(load, path)
        # twice what these cases took when measured, or 8 bytes a byte of a larger file (the
        # shrinker tries some: 200 KB of one letter takes 0.8 MB in the svmlight parser)
        bound = max(2 * MEASURED_PEAK.get(reader, math.inf), 8 * len(data))
        if peak > bound:  # once more: a one-off (a first call, another thread) is not the file's
            result, error, peak = _traced(load, path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    allowed = 32 * 2**20 + (DEFLATE_RATIO + 64) * len(data)  # what the file can justify
    assert peak <= allowed, f"{reader}: {peak} bytes allocated for a {len(data)}-byte file"
    assert peak <= bound, f"{reader}: {peak} bytes for {len(data)}, twice: more than {bound}"
    OUTCOMES["loaded" if error is None else "refused", reader] += 1
    if error is not None:
        assert str(error).strip(), f"{reader}: {type(error).__name__} without a message"
        assert not _memory_error_in(error), f"{reader}: tried to allocate first: {error}"
    return result, error


def _traced(load, path: Path):
    """(result, error, peak bytes traced) of ``load(path)``; error: its SoftmaxRegError."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result, error = load(path), None
    except SoftmaxRegError as exc:
        result, error = None, exc
    finally:
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    return result, error, peak


def _memory_error_in(exc: BaseException | None) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, MemoryError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


# -- byte-level mutations ------------------------------------------------------------------------
U32 = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 10**9, 60000]
where = st.floats(0, 1, exclude_max=True)
byte_op = st.one_of(
    st.tuples(st.just("flip"), where, st.integers(0, 7)),
    st.tuples(st.just("set"), where, st.sampled_from([0, 1, 0x7F, 0xFF]) | st.integers(0, 255)),
    st.tuples(st.just("truncate"), where),
    st.tuples(st.just("delete"), where, st.integers(1, 64)),
    st.tuples(st.just("insert"), where, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("duplicate"), where, st.integers(1, 64), where),
    st.tuples(st.just("splice"), where, where),
    st.tuples(st.just("u32"), where, st.sampled_from(U32), st.sampled_from("<>")),
)


def mutate(data: bytes, ops, donor: bytes) -> bytes:
    """Apply byte-level ``ops``; positions are fractions of the current length."""
    b = bytearray(data)
    for op, *args in ops:
        n = len(b)
        at = int(args[0] * n) if n else 0
        if op == "flip" and n:
            b[at] ^= 1 << args[1]
        elif op == "set" and n:
            b[at] = args[1]
        elif op == "truncate":
            del b[at:]
        elif op == "delete":
            del b[at:at + args[1]]
        elif op == "insert":
            b[at:at] = args[1]
        elif op == "duplicate":
            to = int(args[2] * (n + 1))
            b[to:to] = b[at:at + args[1]]
        elif op == "splice":  # this file's start, another valid file's end
            b = b[:at] + donor[int(args[1] * len(donor)):]
        elif op == "u32" and n >= 4:
            at = min(at, n - 4)
            b[at:at + 4] = struct.pack(f"{args[2]}I", args[1])
    return bytes(b)


def mutations_of(seeds: list[bytes]):
    """A seed file with 1 to 4 byte-level mutations (another seed donates splices)."""
    return st.tuples(st.sampled_from(seeds), st.lists(byte_op, min_size=1, max_size=4),
                     st.sampled_from(seeds)).map(lambda t: mutate(*t))


# -- zip and .npy building blocks with header changes --------------------------------------------
SHAPES = [(10**12,), (10**6, 10**6), (2**31,), (3, 10**9), (-1, 3), (0, 3), (4,), (4, 3),
          (4, 3, 1), (), (2, 2, 2), (10**12, 784), (0, 2**62, 2**62)]
DESCRS = ["<f8", "<f4", ">f8", "<f2", "<c16", "<i8", "|u1", "|b1", "<U5", "<U0", "|S3", "|S0",
          "|O", "|V8", "|V0", "<m8", "<M8[s]", "<U1000000000", "[('a', '<f8')]"]


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


@st.composite
def npy_header_change(draw, array: np.ndarray) -> bytes:
    """``array`` as .npy bytes whose header claims another shape, dtype or order (or garbage)."""
    raw = npy_bytes(array)
    length = struct.unpack("<H", raw[8:10])[0]
    header = eval(raw[10:10 + length].decode("latin1"))  # the dict literal numpy just wrote
    field = draw(st.sampled_from(["shape", "descr", "fortran_order", "garbage"]))
    if field == "shape":
        header["shape"] = draw(st.sampled_from(SHAPES))
    elif field == "descr":
        header["descr"] = draw(st.sampled_from(DESCRS))
    elif field == "fortran_order":
        header["fortran_order"] = draw(st.sampled_from([True, 1, "yes", None]))
    else:
        header = draw(st.sampled_from([{}, [1], "x", {"descr": "<f8"}, {"shape": (1,)}]))
    text = repr(header).encode("latin1")
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    return raw[:8] + struct.pack("<H", len(text)) + text + raw[10 + length:]


def zip_of(members: dict[str, bytes], deflated: bool) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, raw in members.items():
            zf.writestr(f"{name}.npy", raw)
    return buf.getvalue()


def patch_directory(data: bytes, field: int, value: int, method: int | None) -> bytes:
    """Overwrite the first central-directory entry's sizes (field 20/24) or method (10)."""
    at = data.find(b"PK\x01\x02")
    if at < 0:
        return data
    b = bytearray(data)
    if field == 10:
        b[at + 10:at + 12] = struct.pack("<H", method)
    else:
        b[at + field:at + field + 4] = struct.pack("<I", value)
    return bytes(b)


directory_patch = st.tuples(st.sampled_from([20, 24, 10]), st.sampled_from(U32),
                            st.sampled_from([1, 9, 12, 14, 99]))


@st.composite
def archive(draw, arrays: dict[str, np.ndarray], replacements: list[np.ndarray]):
    """An npz of ``arrays`` with one member's header changed, replaced or removed, then maybe a
    patched zip directory and byte-level mutations on top."""
    members = {name: npy_bytes(a) for name, a in arrays.items()}
    name = draw(st.sampled_from(sorted(members)))
    change = draw(st.sampled_from(["header", "replace", "remove", "foreign", "none"]))
    if change == "header":
        members[name] = draw(npy_header_change(arrays[name]))
    elif change == "replace":
        members[name] = npy_bytes(draw(st.sampled_from(replacements)))
    elif change == "remove":
        del members[name]
    elif change == "foreign":
        members[name] = draw(st.binary(max_size=64))
    data = zip_of(members, deflated=draw(st.booleans()))
    if draw(st.booleans()):
        data = patch_directory(data, *draw(directory_patch))
    if draw(st.integers(0, 3)) == 0:
        data = mutate(data, draw(st.lists(byte_op, min_size=1, max_size=3)), data)
    return data


REPLACEMENTS = [np.zeros(0), np.full(3, np.nan), np.array(["a", "b"]), np.zeros((2, 2)),
                np.array(1.0), np.zeros(7, np.float16), np.zeros(3, complex), np.array([b"x"]),
                np.array([1, 2], dtype="m8[s]"), np.array([np.inf, 1.0]), np.arange(3)]


# -- model files ---------------------------------------------------------------------------------
def _model_seeds() -> list[dict[str, np.ndarray]]:
    X, y = load_iris(return_X_y=True)
    Xs = (X - X.mean(0)) / X.std(0)
    seeds = []
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as folder:
        warnings.simplefilter("ignore")
        fitted = [(SoftmaxRegression().fit(Xs, y), Scaling("standard").fit(X)),
                  (SoftmaxNetwork((3,), max_iter=5, random_state=0).fit(Xs, (y == 1) * 1),
                   None),
                  (SoftmaxRegression().fit(Xs, np.array(["a", "b", "c"])[y]), None)]
        for i, (estimator, scaling) in enumerate(fitted):
            path = Path(folder) / f"m{i}.npz"
            save(estimator, path, scaling=scaling)
            with np.load(path) as npz:
                seeds.append({k: npz[k] for k in npz.files})
    return seeds


MODELS = _model_seeds()
MODEL_FILES = [zip_of({k: npy_bytes(v) for k, v in m.items()}, deflated)
               for m in MODELS for deflated in (False, True)]
JSON_VALUES = [None, 0, -1, 1.5, 10**12, 1e308, float("nan"), "x", "", [], {}, True,
               [4, 2**31 - 1, 3], [2**31 - 1, 2**31 - 1], [4, 10**6, 3], [4, 0], [4, -3],
               [4, 3, 3], "float16", "relu", "tanh", {"C": -1}, {"solver": "newton"},
               {"hidden_layer_sizes": [10**9]}, {"dtype": "complex"}, ["a"] * 4]


@st.composite
def json_change(draw, meta: dict) -> dict:
    """A copy of ``meta`` with one field (or one field of a nested object) changed or removed."""
    meta = json.loads(json.dumps(meta))
    key = draw(st.sampled_from(sorted(meta)))
    target, field = meta, key
    if isinstance(meta[key], dict) and meta[key] and draw(st.booleans()):
        target, field = meta[key], draw(st.sampled_from(sorted(meta[key])))
    if draw(st.integers(0, 5)) == 0:
        del target[field]
    else:
        target[field] = draw(st.sampled_from(JSON_VALUES))
    return meta


@st.composite
def model_field_changes(draw) -> bytes:
    arrays = dict(draw(st.sampled_from(MODELS)))
    if draw(st.booleans()):
        meta = draw(json_change(json.loads(str(arrays["metadata"]))))
        arrays["metadata"] = np.array(json.dumps(meta))
        return zip_of({k: npy_bytes(v) for k, v in arrays.items()}, draw(st.booleans()))
    return draw(archive(arrays, REPLACEMENTS))


def load_model(path: Path):
    estimator, scaling, _ = load_bundle(path)
    P = estimator.predict_proba(np.zeros((2, estimator.n_features_in_)))
    assert P.shape == (2, len(estimator.classes_))
    if scaling is not None:
        assert scaling.n_features == estimator.n_features_in_
    return estimator


@fuzz(1500)
@given(data=mutations_of(MODEL_FILES))
def test_model_file_byte_mutations(workdir, data):
    check("model file", load_model, data, workdir / "model.npz")


@pytest.mark.slow
@fuzz(1500)
@given(data=model_field_changes())
def test_model_file_header_and_field_changes(workdir, data):
    check("model file", load_model, data, workdir / "model.npz")


# -- checkpoints ---------------------------------------------------------------------------------
def _checkpoint_seed() -> tuple[dict[str, np.ndarray], tuple]:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    config = TrainConfig(epochs=2, batch_size=16, progress=False, early_stopping=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.ckpt"
        net = Network((3, 4, 3)).initialize(0)
        with Checkpointer(path) as hooks:
            train(net, Adam().init(net.params), constant(0.01), X, y, config, hooks=hooks,
                  validation=(X, y))
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}, (X, y, config)


CHECKPOINT, CHECKPOINT_RUN = _checkpoint_seed()
CHECKPOINT_FILES = [zip_of({k: npy_bytes(v) for k, v in CHECKPOINT.items()}, d)
                    for d in (False, True)]


def load_and_restore(path: Path):
    """Read a checkpoint and restore it into a run of the network it was written for."""
    X, y, config = CHECKPOINT_RUN
    saved = load_checkpoint(path)
    net = Network((3, 4, 3))
    run = Run(net, Adam().init(net.params), History(), config, Position())
    from softmaxreg.io import data_fingerprint

    saved.restore(run, data_fingerprint(X, y), X.shape[0])
    assert np.all(np.isfinite(net.params)) and run.position.epoch <= config.epochs
    return run


@st.composite
def checkpoint_field_changes(draw) -> bytes:
    arrays = dict(CHECKPOINT)
    if draw(st.booleans()):
        meta = draw(json_change(json.loads(str(arrays["metadata"]))))
        arrays["metadata"] = np.array(json.dumps(meta))
        return zip_of({k: npy_bytes(v) for k, v in arrays.items()}, draw(st.booleans()))
    return draw(archive(arrays, REPLACEMENTS))


@fuzz(600)
@given(data=mutations_of(CHECKPOINT_FILES))
def test_checkpoint_byte_mutations(workdir, data):
    check("checkpoint", load_and_restore, data, workdir / "run.ckpt")


@fuzz(900)
@given(data=checkpoint_field_changes())
def test_checkpoint_header_and_field_changes(workdir, data):
    check("checkpoint", load_and_restore, data, workdir / "run.ckpt")


# -- data sets -----------------------------------------------------------------------------------
def usable(dataset):
    """A data set loaded from a damaged file must still be one a model can be trained on."""
    parts = [(dataset.X, dataset.y)]
    if dataset.X_test is not None:
        parts.append((dataset.X_test, dataset.y_test))
    for X, y in parts:
        values = X.data if sp.issparse(X) else X
        assert X.ndim == 2 and values.dtype.kind in "biuf", (X.shape, values.dtype)
        assert np.all(np.isfinite(values)), "non-finite features"
        assert y.ndim == 1 and len(y) == X.shape[0] and y.dtype.kind in "biufU", y.dtype
        assert y.dtype.kind != "f" or np.all(np.isfinite(y)), "non-finite labels"
    return dataset


def reading(reader):
    return lambda path: usable(reader(path))


# -- IDX -----------------------------------------------------------------------------------------
IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_file(code: int, dims: list[int], payload_dims: list[int] | None = None) -> bytes:
    n = math.prod(payload_dims if payload_dims is not None else dims)
    return (bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
            + np.arange(n).astype(IDX_TYPES[code]).tobytes())


IDX_FILES = [idx_file(0x08, [2, 3, 4]), idx_file(0x0D, [6]), idx_file(0x0C, [2, 2]),
             idx_file(0x0E, [1, 1, 1, 3])]
IDX_FILES += [gzip.compress(f) for f in IDX_FILES]


@st.composite
def idx_header_changes(draw) -> bytes:
    """A valid IDX file, then a changed type code, dimension count or dimension (10¹² items:
    2³²−1 × 2³²−1 × …), trailing or missing bytes, then maybe gzip (and damage to the gzip)."""
    code = draw(st.sampled_from(sorted(IDX_TYPES)))
    dims = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))
    data = bytearray(idx_file(code, dims))
    change = draw(st.sampled_from(["dim", "dims", "magic", "ndims", "trail", "cut", "none"]))
    if change == "dim":
        i = draw(st.integers(0, len(dims) - 1))
        data[4 + 4 * i:8 + 4 * i] = struct.pack(">I", draw(st.sampled_from(U32 + [232830])))
    elif change == "dims":  # 10¹² items claimed by three dimensions of 10⁴
        data = bytearray(bytes([0, 0, code, 3]) + struct.pack(">3I", 10**4, 10**4, 10**4))
    elif change == "magic":
        data[draw(st.integers(0, 3))] = draw(st.sampled_from([0, 1, 3, 7, 0x0A, 0x0F, 0xFF]))
    elif change == "ndims":
        data[3] = draw(st.sampled_from([0, 1, 2, 5, 255]))
    elif change == "trail":
        data += draw(st.binary(min_size=1, max_size=16))
    elif change == "cut":
        del data[draw(st.integers(0, len(data) - 1)):]
    if draw(st.booleans()):
        data = bytearray(gzip.compress(bytes(data)))
        extra = draw(st.sampled_from(["none", "cut", "member", "bomb"]))
        if extra == "cut":
            del data[draw(st.integers(0, len(data) - 1)):]
        elif extra == "member":  # a second gzip member: more payload than the header says
            data += gzip.compress(b"\0" * 64)
        elif extra == "bomb":
            data += gzip.compress(b"\0" * (8 << 20))
    return bytes(data)


@fuzz(1500)
@given(data=mutations_of(IDX_FILES))
def test_idx_byte_mutations(workdir, data):
    check("IDX", read_idx, data, workdir / "file.idx")


@fuzz(1000)
@given(data=idx_header_changes())
def test_idx_header_changes(workdir, data):
    check("IDX", read_idx, data, workdir / "file.idx")


# -- NPZ data sets ---------------------------------------------------------------------------------
NPZ_ARRAYS = [
    {"X": np.arange(12.0).reshape(4, 3), "y": np.array([0, 1, 0, 1])},
    {"X": np.arange(12.0).reshape(4, 3), "y": np.array([0, 1, 0, 1]), "X_test": np.ones((2, 3)),
     "y_test": np.array([1, 0]), "feature_names": np.array(["a", "b", "c"])},
    {"X": np.zeros((2, 2, 2), np.uint8), "y": np.array(["a", "b"])},
]
NPZ_FILES = [zip_of({k: npy_bytes(v) for k, v in a.items()}, d)
             for a in NPZ_ARRAYS for d in (False, True)]


@fuzz(1000)
@given(data=mutations_of(NPZ_FILES))
def test_npz_byte_mutations(workdir, data):
    check("NPZ", reading(read_npz), data, workdir / "data.npz")


@fuzz(1000)
@given(data=st.sampled_from(NPZ_ARRAYS).flatmap(lambda a: archive(a, REPLACEMENTS)))
def test_npz_header_changes(workdir, data):
    check("NPZ", reading(read_npz), data, workdir / "data.npz")


# -- CSV and svmlight -----------------------------------------------------------------------------
TOKENS = ["0", "1", "-1", "2.5", "1e400", "-1e400", "nan", "inf", "1e-400", "0x1A", "1_000",
          "", " ", '"', '""', "'", ",", ";", "\t", "\n", "\r", "\r\n", "\x00", "é", "\ufeff",
          "label", "99999999999999999999", "-9223372036854775809", "3.0", "1e300", "#", "1:2",
          "qid:1", "0:1", "-3:1", "1:1e400", "1:nan", "2147483648:1", "4294967296:1",
          "1000000000000:1", ":", "1::2", "1:2:3", "a" * 200_000]
CSV_FILES = [b"a,b,label\n1,2,x\n3,4,y\n5.5,-1e3,x\n", b"1;2;0\n3;4;1\n",
             b"x\ty\tlabel\n1\t2\tcat\n3\t4\tdog\n"]
SVM_FILES = [b"1 1:0.5 3:2\n0 2:1.5\n# a comment\n2 1:1 2:2 3:3\n", b"1 qid:3 1:1\n-1 qid:3 2:2\n"]
SEEDS = {"model file": MODEL_FILES, "checkpoint": CHECKPOINT_FILES, "IDX": IDX_FILES,
         "NPZ": NPZ_FILES, "CSV": CSV_FILES, "svmlight": SVM_FILES}  # each reader's valid files


@st.composite
def token_edits(draw, seeds: list[bytes], separator: str) -> bytes:
    """Replace, insert or append tokens in the fields of a valid text file."""
    lines = [line.split(separator) for line in draw(st.sampled_from(seeds)).decode().split("\n")]
    for _ in range(draw(st.integers(1, 3))):
        row = lines[draw(st.integers(0, len(lines) - 1))]
        at = draw(st.integers(0, len(row)))
        token = draw(st.sampled_from(TOKENS))
        how = draw(st.sampled_from(["replace", "insert", "append", "label"]))
        if how == "label":  # the last field: the label of CSV, an index:value pair of svmlight
            row[-1] = token
        elif how == "insert" or at == len(row):
            row.insert(at, token)
        elif how == "replace":
            row[at] = token
        else:
            row[at] += token
    text = "\n".join(separator.join(row) for row in lines)
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])), "replace")


@fuzz(800)
@given(data=mutations_of(CSV_FILES))
def test_csv_byte_mutations(workdir, data):
    check("CSV", reading(read_csv), data, workdir / "data.csv")


@fuzz(800)
@given(data=token_edits([CSV_FILES[0], b"a,b,label\n1,2,0\n3,4,1\n"], ","))
def test_csv_field_changes(workdir, data):
    check("CSV", reading(read_csv), data, workdir / "data.csv")


@fuzz(600)
@given(data=mutations_of(SVM_FILES) | token_edits(SVM_FILES, " "))
def test_svmlight_mutations(workdir, data):
    check("svmlight", reading(read_svmlight), data, workdir / "data.svm")


def test_fuzz_volume():
    """The volume the README reports (when the whole module ran)."""
    if len(FUZZ_TESTS) < N_FUZZ_TESTS:
        pytest.skip("run every fuzz test of the module to count the cases")
    total = sum(CASES.values())
    print(f"\nfuzz cases run: {total} {dict(CASES)}; outcomes {dict(OUTCOMES)}")
    assert total >= 10_000


# -- the failure modes the fuzzing found, one by one ---------------------------------------------
def _npz_with(members: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return buf.getvalue()


def _claiming(shape) -> bytes:
    """A .npy member whose header claims ``shape`` float64 values but holds 4 of them."""
    raw = npy_bytes(np.zeros(4))
    return raw.replace(b"(4,)", repr(shape).encode().ljust(4), 1)


def _with_meta(change) -> bytes:
    arrays = dict(MODELS[0])
    meta = json.loads(str(arrays["metadata"]))
    change(meta, arrays)
    arrays["metadata"] = np.array(json.dumps(meta))
    return zip_of({k: npy_bytes(v) for k, v in arrays.items()}, deflated=False)


def _method(data: bytes, method: int) -> bytes:
    return patch_directory(data, 10, 0, method)


Y = npy_bytes(np.arange(4))
CLAIM = r"has a header for \(.*\) but holds \d+ bytes"
NOT_NPY = "does not begin with NumPy.s .npy header"
FOUND = {
    # NPZ data sets
    "npz: a .npy header claiming 10^12 values (allocated before reading: MemoryError)":
        ("NPZ", _npz_with({"X.npy": _claiming((10**12, 1)), "y.npy": Y}), CLAIM),
    "npz: a header claiming 12 GB (allocated, then EOF)":
        ("NPZ", _npz_with({"X.npy": _claiming((3, 5 * 10**8)), "y.npy": Y}), CLAIM),
    "npz: an unsupported compression method (NotImplementedError)":
        ("NPZ", _method(_npz_with({"X.npy": npy_bytes(np.eye(4)), "y.npy": Y}), 14),
         "compression method 14"),
    "npz: an encrypted member (RuntimeError)":
        ("NPZ", _npz_with({"X.npy": npy_bytes(np.eye(4)), "y.npy": Y}).replace(
            b"PK\x01\x02\x14\x03\x14\x00\x00", b"PK\x01\x02\x14\x03\x14\x00\x01", 1),
         "encrypted"),
    "npz: a member that is not .npy (bytes, AttributeError)":
        ("NPZ", _npz_with({"X.npy": b"hello", "y.npy": Y}), NOT_NPY),
    "npz: timedelta labels accepted": ("NPZ", _npz_with({
        "X.npy": npy_bytes(np.eye(2)), "y.npy": npy_bytes(np.array([1, 2], "m8[s]"))}),
        "expected integer, finite float or string labels"),
    "npz: NaN features accepted": ("NPZ", _npz_with({
        "X.npy": npy_bytes(np.array([[np.nan, 1.0]])), "y.npy": npy_bytes(np.array([1]))}),
        "NaN or infinity"),
    # model files
    "model: a .npy header claiming 10^12 parameters (tried to allocate 7 TiB first)":
        ("model file", zip_of({**{k: npy_bytes(v) for k, v in MODELS[0].items()},
                               "params": _claiming((10**12,))}, False), CLAIM),
    "model: a member that is not .npy (AttributeError)":
        ("model file", zip_of({**{k: npy_bytes(v) for k, v in MODELS[0].items()},
                               "classes": b"\x00" * 9}, False), NOT_NPY),
    "model: layer_sizes [2^31-1, 2^31-1] (the network allocated before the check)":
        ("model file", _with_meta(lambda m, a: m.update(layer_sizes=[2**31 - 1, 2**31 - 1])),
         r"n_features_in: is 4, but W\[1\] takes 2147483647"),  # (the schema's check, first)
    "model: estimator parameters not a JSON object (AttributeError)":
        ("model file", _with_meta(lambda m, a: m.update(params=1.5)), "must be a JSON object"),
    "model: invalid estimator parameters accepted (C = -1)":
        ("model file", _with_meta(lambda m, a: m["params"].update(C=-1)),
         "bad estimator parameters"),
    "model: preprocessing of another number of features accepted":
        ("model file", _with_meta(lambda m, a: a.update({"scaling.mean": np.zeros(3),
                                                          "scaling.scale": np.ones(3)})),
         "scales 3 features, the model has 4"),
    # CSV, svmlight, IDX
    "csv: an integer label beyond int64 (OverflowError)":
        ("CSV", b"a,label\n1,99999999999999999999\n2,1\n", ["99999999999999999999", "1"]),
    "svmlight: a feature index beyond int32 (OverflowError)":
        ("svmlight", b"1 2147483648:1\n0 1:1\n", "not a valid svmlight"),
    "svmlight: NaN or infinite values accepted":
        ("svmlight", b"1 1:nan\n0 1:1\n", "not a finite number"),
    "svmlight: a label of 1e300 wrapped around to an int64":
        ("svmlight", b"1e300 1:1\n0 1:1\n", [1e300, 0.0]),
    "idx: dimensions (0, 2^32-1, 2^32-1) numpy cannot shape (ValueError)":
        ("IDX", bytes([0, 0, 8, 3]) + struct.pack(">3I", 0, 2**32 - 1, 2**32 - 1),
         "no array has the dimensions"),
}
READERS = {"NPZ": (reading(read_npz), "data.npz"), "model file": (load_model, "model.npz"),
           "CSV": (reading(read_csv), "data.csv"), "svmlight": (reading(read_svmlight), "d.svm"),
           "IDX": (read_idx, "file.idx")}


@pytest.mark.parametrize("case", list(FOUND))
def test_failure_modes_found_by_fuzzing_are_fixed(workdir, case):
    reader, data, message = FOUND[case]
    load, name = READERS[reader]
    result, error = check(reader, load, data, workdir / name)
    if isinstance(message, list):  # it loads, with these labels
        assert error is None and result.y.tolist() == message
    else:
        assert error is not None and re.search(message, str(error)), error


# -- hostile mirrors -----------------------------------------------------------------------------
# test_datasets.py covers mirrors that are down, silent, 404, or serve a flipped, truncated, wrong
# or oversized (Content-Length) file, and a server-suggested file name.  Here: bodies that never
# end (no length, chunked, or one byte at a time), a stall mid-body, a lying Content-Length, a
# Content-Encoding bomb, and redirects to other names.  Each mirror must be abandoned within a
# bounded time and size for the next one, and the cache must hold only our own file name.
LABELS = np.arange(200, dtype=np.uint8) % 10
LABELS_RAW = struct.pack(">HBBI", 0, 8, 1, len(LABELS)) + LABELS.tobytes()
LABELS_GZ = gzip.compress(LABELS_RAW)
BOMB = gzip.compress(bytes(8 << 20), compresslevel=9)  # 8 MiB of zeros in 8 KiB


class HostileHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        kind = self.path.split("/")[1]
        self.server.log.append(kind)
        try:
            getattr(self, "serve_" + kind.replace("-", "_"))()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            pass

    def head(self, length=None, **headers) -> None:
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()

    def serve_good(self):
        self.head(len(LABELS_GZ), Content_Disposition='attachment; filename="../evil.gz"')
        self.wfile.write(LABELS_GZ)

    def serve_endless(self):  # no Content-Length: the body ends when the connection does
        self.head(Connection="close")
        while True:
            self.wfile.write(b"\x1f\x8b" * 32768)

    def serve_chunked(self):
        self.head(Transfer_Encoding="chunked")
        while True:
            self.wfile.write(b"10000\r\n" + bytes(65536) + b"\r\n")

    def serve_drip(self):  # a byte every 0.1 s, for ever: every byte resets a read timeout
        self.head(len(LABELS_GZ) * 1000)
        while True:
            self.wfile.write(b"\x1f")
            self.wfile.flush()
            time.sleep(0.1)

    def serve_stall(self):
        self.head(len(LABELS_GZ))
        self.wfile.write(LABELS_GZ[:10])
        self.wfile.flush()
        time.sleep(20)

    def serve_lying_length(self):  # claims more than it sends, then hangs up
        self.head(10**9, Connection="close")
        self.wfile.write(LABELS_GZ)

    def serve_encoding_bomb(self):  # requests expands a gzip Content-Encoding on the fly
        self.head(len(BOMB), Content_Encoding="gzip")
        self.wfile.write(BOMB)

    def serve_wrong(self):  # a valid IDX file, but not the one asked for
        body = gzip.compress(LABELS_RAW[:-1] + b"\x07")
        self.head(len(body))
        self.wfile.write(body)

    def serve_redirect(self):
        self.send_response(302)
        self.send_header("Location", "/good/evil-name.gz?as=../../evil-name.gz")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


class HostileServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """Quiet: abandoned downloads break the connection on purpose."""


@pytest.fixture(scope="module")
def hostile():
    server = HostileServer(("127.0.0.1", 0), HostileHandler)
    server.log = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        # one good download first: the first one imports requests and friends, which the
        # memory bounds below must not count
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        mnist._download(SPEC, Path(folder) / "warm.gz",
                        [f"http://127.0.0.1:{server.server_address[1]}/good/"], {}, False)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast_limits(monkeypatch):
    """A 1 s read timeout and a 2 s deadline per file, no proxy in the way, and a test that
    hangs fails after 30 s instead."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(mnist, "_TIMEOUT_S", 1.0)
    monkeypatch.setattr(mnist, "_DEADLINE_S", 2.0)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


SPEC = mnist._MnistFile("train-labels-idx1-ubyte", hashlib.sha256(LABELS_RAW).hexdigest(),
                        (len(LABELS),))
HOSTILE = {
    "endless": "sent more than",
    "chunked": "sent more than",
    "drip": "took longer than 2 s",
    "stall": "sent nothing for 1 s",
    "lying-length": "broke off",
    "encoding-bomb": "sent more than",
    "wrong": "is not MNIST's train-labels-idx1-ubyte",
}


HOSTILE_PEAK = {  # bytes, the larger of two measurements (tracemalloc); a case may take twice
    "endless": 2_738_347, "chunked": 181_289, "drip": 92_405, "stall": 105_201,
    "lying-length": 100_692, "encoding-bomb": 234_279, "wrong": 349_135,
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_hostile_mirror_is_abandoned_for_the_next(hostile, fast_limits, tmp_path, kind):
    base = f"http://127.0.0.1:{hostile.server_address[1]}"
    failures: dict = {}
    tracemalloc.start()
    start = time.monotonic()
    try:
        array = mnist._download(SPEC, tmp_path / "train-labels-idx1-ubyte.gz",
                                [f"{base}/{kind}/", f"{base}/good/"], failures, False)
    finally:
        seconds, peak = time.monotonic() - start, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert np.array_equal(array, LABELS)
    assert HOSTILE[kind] in failures[f"{base}/{kind}/"], failures
    assert seconds < 5 and peak < 2 * HOSTILE_PEAK[kind], (seconds, peak)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-labels-idx1-ubyte.gz"]


def test_redirects_and_suggested_names_do_not_name_the_cache(hostile, fast_limits, tmp_path):
    base = f"http://127.0.0.1:{hostile.server_address[1]}"
    cache = tmp_path / "cache"
    cache.mkdir()
    array = mnist._download(SPEC, cache / "train-labels-idx1-ubyte.gz",
                            [f"{base}/redirect/"], {}, False)
    assert np.array_equal(array, LABELS)
    assert [p.name for p in tmp_path.rglob("*")] == ["cache", "train-labels-idx1-ubyte.gz"]


def test_mnist_download_past_endless_and_dripping_mirrors(hostile, fast_limits, tmp_path,
                                                         monkeypatch):
    """load_mnist itself: the first file finds both bad mirrors out, the rest skip them."""
    folder = os.environ.get("SOFTMAXREG_DATA")
    if not folder or not Path(folder).is_dir():
        pytest.skip("SOFTMAXREG_DATA does not name the MNIST folder")
    monkeypatch.delenv("SOFTMAXREG_DATA")
    files = {p.name: p.read_bytes() for p in Path(folder).glob("*.gz")}
    monkeypatch.setattr(HostileHandler, "serve_mnist", lambda self: (
        self.head(len(files[self.path.rsplit("/", 1)[1]])),
        self.wfile.write(files[self.path.rsplit("/", 1)[1]])), raising=False)
    base = f"http://127.0.0.1:{hostile.server_address[1]}"
    hostile.log.clear()
    start = time.monotonic()
    ds = mnist.load_mnist(cache_dir=tmp_path, progress=False,
                          mirrors=[f"{base}/endless/", f"{base}/drip/", f"{base}/mnist/"])
    assert time.monotonic() - start < 20
    assert ds.X.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert hostile.log.count("endless") == hostile.log.count("drip") == 1
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(files)
