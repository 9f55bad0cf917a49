"""Tests of softmaxreg.io: IDX parsing, MNIST (local, cache, download), CSV/NPZ/svmlight.

The MNIST tests need the real files: set SOFTMAXREG_DATA to their folder (CI uses
/work/shared/data/mnist). The download tests serve those files from a local HTTP server.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmaxreg.exceptions import DataError
from softmaxreg.io import (
    Dataset,
    load_bundled,
    load_dataset,
    load_mnist,
    mnist,
    read_csv,
    read_idx,
    read_idx_folder,
    read_npy,
    read_npz,
    read_svmlight,
)
from softmaxreg.io.dataset import DataSchema, check_held_out_labels

# From /work/shared/data/mnist/README.md, typed here independently of the library's registry.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
GZ_NAMES = sorted(f"{stem}.gz" for stem in MNIST_SHA256)

IDX_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, dims: tuple[int, ...] | None = None) -> bytes:
    """An IDX file written with struct: magic, big-endian uint32 dims, big-endian payload."""
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    dims = array.shape if dims is None else dims
    header = struct.pack(">HBB", 0, IDX_CODES[big], len(dims))
    header += struct.pack(f">{len(dims)}I", *dims)
    return header + array.astype(big).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def sha256_of_content(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    folder = os.environ.get("SOFTMAXREG_DATA")
    if not folder:
        pytest.skip("SOFTMAXREG_DATA is not set: point it at the folder of MNIST's IDX files "
                    "(CI uses /work/shared/data/mnist)")
    return Path(folder)


@pytest.fixture(scope="module")
def mnist_gz(mnist_dir: Path) -> dict[str, bytes]:
    """The four real .gz files, by name."""
    return {name: (mnist_dir / name).read_bytes() for name in GZ_NAMES}


@pytest.fixture(scope="module")
def mnist_reference(mnist_gz: dict[str, bytes]) -> dict[str, np.ndarray]:
    """The real arrays, decoded here with numpy from the known header layout (16/8 bytes)."""
    out = {}
    for name, data in mnist_gz.items():
        raw = gzip.decompress(data)
        offset = 16 if "images" in name else 8
        out[name.removesuffix(".gz")] = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    return out


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_uint8_round_trip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write(tmp_path / "images.idx", idx_bytes(images), gz)
    result = read_idx(path)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, images)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_multibyte_types_are_big_endian(tmp_path, gz):
    int32 = struct.pack(">HBBI", 0, 0x0C, 1, 3) + struct.pack(">3i", 1, -2, 70000)
    float32 = struct.pack(">HBBII", 0, 0x0D, 2, 1, 2) + struct.pack(">2f", 1.5, -0.25)
    int16 = struct.pack(">HBBI", 0, 0x0B, 1, 2) + struct.pack(">2h", -300, 300)
    float64 = struct.pack(">HBBI", 0, 0x0E, 1, 1) + struct.pack(">d", np.pi)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a", int32, gz)), [1, -2, 70000])
    np.testing.assert_array_equal(read_idx(write(tmp_path / "b", float32, gz)), [[1.5, -0.25]])
    np.testing.assert_array_equal(read_idx(write(tmp_path / "c", int16, gz)), [-300, 300])
    assert read_idx(write(tmp_path / "d", float64, gz))[0] == np.pi
    assert read_idx(tmp_path / "a").dtype == np.int32
    assert read_idx(tmp_path / "a").dtype.isnative


@settings(max_examples=40, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(["u1", "i1", ">i2", ">i4", ">f4", ">f8"]),
        shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    ),
    gz=st.booleans(),
)
def test_idx_round_trip_property(array, gz):
    with tempfile.TemporaryDirectory() as folder:
        result = read_idx(write(Path(folder) / "x.idx", idx_bytes(array), gz))
    assert result.shape == array.shape
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_payload(tmp_path, gz):
    data = idx_bytes(np.zeros(1000, np.uint8), dims=(60000, 28, 28))
    with pytest.raises(DataError) as err:
        read_idx(write(tmp_path / "t", data, gz))
    assert "is truncated: header says 60000×28×28 = 47040000 bytes" in str(err.value)
    if not gz:
        assert str(err.value).endswith("found 1000")
    assert str(tmp_path / "t") in str(err.value)


def test_idx_truncated_gzip_stream(tmp_path):
    data = gzip.compress(idx_bytes(np.random.default_rng(0).integers(0, 255, 5000, np.uint8)))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(write(tmp_path / "t.gz", data[: len(data) // 2]))


def test_idx_wrong_magic(tmp_path):
    path = write(tmp_path / "archive.zip", b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataError, match=r"archive\.zip is not an IDX file \(magic 0x504b0304\)"):
        read_idx(path)


@pytest.mark.parametrize("data", [b"", b"\0\0", b"\0\0\x07\x01" + bytes(8), b"\0\0\x08\x00"])
def test_idx_not_idx(tmp_path, data):
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(write(tmp_path / "x", data))


def test_idx_header_cut_inside_dims(tmp_path):
    with pytest.raises(DataError, match="announces 3 dimensions"):
        read_idx(write(tmp_path / "x", struct.pack(">HBBI", 0, 8, 3, 5)))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_huge_header_is_rejected_without_allocating(tmp_path, gz, peak_memory):
    data = struct.pack(">HBBII", 0, 0x08, 2, 10**6, 10**6) + bytes(100)  # 10^12 items
    path = write(tmp_path / "huge", data, gz)
    with peak_memory() as peak, pytest.raises(DataError,
                                              match=r"1000000×1000000 = 1000000000000 bytes"):
        read_idx(path)
    assert peak.bytes < 2 * (65_447 if gz else 9_675)  # twice the peak measured (tracemalloc)


def test_idx_gzip_bomb_stops_at_what_the_header_claims(tmp_path, peak_memory):
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as bomb:  # 1000 announced bytes, then 64 MiB of zeros
        bomb.write(idx_bytes(np.zeros(1000, np.uint8)))
        zeros = bytes(1 << 20)
        for _ in range(64):
            bomb.write(zeros)
    del zeros
    with peak_memory() as peak, pytest.raises(DataError,
                                              match="trailing data after the 1000 bytes"):
        read_idx(path)
    assert peak.bytes < 2 * 82_142  # twice the peak measured: the 64 MiB are never held


@pytest.mark.parametrize("gz", [False, True])
def test_idx_trailing_garbage(tmp_path, gz):
    data = idx_bytes(np.arange(10, dtype=np.uint8)) + b"junk"
    with pytest.raises(DataError, match="trailing data"):
        read_idx(write(tmp_path / "x", data, gz))


def test_idx_missing_file_is_a_data_error_and_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot open .*nothing-here"):
        read_idx(tmp_path / "nothing-here")


def write_idx_folder(folder: Path, n_train: int = 6, n_test: int | None = 3) -> dict:
    rng = np.random.default_rng(1)
    arrays = {"train": (rng.integers(0, 256, (n_train, 4, 5), np.uint8),
                        rng.integers(0, 10, n_train).astype(np.uint8))}
    if n_test is not None:
        arrays["t10k"] = (rng.integers(0, 256, (n_test, 4, 5), np.uint8),
                          rng.integers(0, 10, n_test).astype(np.uint8))
    folder.mkdir(exist_ok=True)
    for prefix, (images, labels) in arrays.items():
        write(folder / f"{prefix}-images-idx3-ubyte.gz", idx_bytes(images), gz=True)
        write(folder / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels))
    return arrays


def test_idx_folder(tmp_path):
    arrays = write_idx_folder(tmp_path / "fashion")
    ds = read_idx_folder(tmp_path / "fashion")
    np.testing.assert_array_equal(ds.X, arrays["train"][0].reshape(6, 20))
    np.testing.assert_array_equal(ds.y, arrays["train"][1])
    np.testing.assert_array_equal(ds.X_test, arrays["t10k"][0].reshape(3, 20))
    assert (ds.name, ds.pixels, ds.image_shape) == ("fashion", True, (4, 5))


def test_idx_folder_without_test_split_and_mismatched_counts(tmp_path):
    write_idx_folder(tmp_path / "a", n_test=None)
    assert read_idx_folder(tmp_path / "a").X_test is None
    write_idx_folder(tmp_path / "b")
    write(tmp_path / "b" / "train-labels-idx1-ubyte", idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match="6 images but .* 5 labels"):
        read_idx_folder(tmp_path / "b")
    (tmp_path / "b" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="no train-labels-idx1-ubyte"):
        read_idx_folder(tmp_path / "b")


# --------------------------------------------------------------------------------------------
# MNIST from a local folder
# --------------------------------------------------------------------------------------------


def check_mnist(ds: Dataset) -> None:
    assert ds.X.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.X.dtype == ds.y.dtype == ds.X_test.dtype == ds.y_test.dtype == np.uint8
    assert np.bincount(ds.y).tolist() == TRAIN_COUNTS
    assert np.bincount(ds.y_test).tolist() == TEST_COUNTS
    assert (ds.name, ds.pixels, ds.image_shape) == ("mnist", True, (28, 28))


def test_mnist_from_environment(mnist_dir, mnist_reference, monkeypatch):
    monkeypatch.setenv("SOFTMAXREG_DATA", str(mnist_dir))
    ds = load_mnist(progress=False)
    check_mnist(ds)
    np.testing.assert_array_equal(ds.X.ravel(), mnist_reference["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.y_test, mnist_reference["t10k-labels-idx1-ubyte"])


def test_mnist_data_dir_accepts_plain_files_and_rejects_wrong_ones(mnist_dir, tmp_path):
    copy_mnist(mnist_dir, tmp_path / "m")
    tmp_path = tmp_path / "m"
    raw = bytearray(gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)
    check_mnist(load_mnist(tmp_path))
    raw[100] = (raw[100] + 1) % 10  # still a valid IDX file, but not MNIST's
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(raw)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte is not MNIST's .*SHA-256"):
        load_mnist(tmp_path)


def test_mnist_data_dir_missing(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(DataError, match="has no train-labels-idx1-ubyte"):
        load_mnist(tmp_path)


# --------------------------------------------------------------------------------------------
# MNIST download from local mirrors
# --------------------------------------------------------------------------------------------


class MirrorHandler(http.server.BaseHTTPRequestHandler):
    """Serves /<kind>/<file>: the real file ('good') or a broken variant of it."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        _, kind, name = self.path.split("/", 2)
        self.server.requests.append((kind, name))
        body = self.server.body(kind, name)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        # Cache names are ours: a server-suggested name must be ignored.
        self.send_header("Content-Disposition", 'attachment; filename="evil.gz"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class MirrorServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), MirrorHandler)
        self.files = files
        self.requests: list[tuple[str, str]] = []

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{kind}/"

    def body(self, kind: str, name: str) -> bytes | None:
        if name not in self.files or kind == "missing":
            return None
        data = self.files[name]
        if kind == "flipped":
            middle = len(data) // 2
            return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
        if kind == "truncated":
            return data[: len(data) // 2]
        if kind == "wrong":  # a valid MNIST file, but the other split's
            swap = ("train", "t10k") if "train" in name else ("t10k", "train")
            return self.files[name.replace(*swap)]
        if kind == "huge":
            return bytes(4 << 20)
        return data

    def handle_error(self, request, client_address) -> None:
        """Quiet: clients that abandon an oversized download break the pipe on purpose."""

    def count(self, kind: str) -> int:
        return sum(k == kind for k, _ in self.requests)


@pytest.fixture(scope="module")
def mirror_server(mnist_gz):
    server = MirrorServer(mnist_gz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def server(mirror_server, monkeypatch):
    """The mirror server with a fresh request log, and an environment where only the
    arguments decide where MNIST comes from; every test is stopped after 60 s."""
    mirror_server.requests.clear()
    for name in ("SOFTMAXREG_DATA", "SOFTMAXREG_CACHE", "SOFTMAXREG_MNIST_MIRRORS",
                 "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(mnist, "_TIMEOUT_S", 1.0)
    with time_limit(60):
        yield mirror_server


@contextlib.contextmanager
def time_limit(seconds: int):
    def fail(*_):
        raise TimeoutError(f"test took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def down_mirror() -> str:
    """A port on which nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


@pytest.fixture
def silent_mirror():
    """A port that accepts connections (backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mnist/"


def copy_mnist(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for name in GZ_NAMES:
        shutil.copy(source / name, target / name)


def check_cache(cache: Path) -> None:
    """The cache holds exactly the four files under our names, each verified."""
    assert sorted(os.listdir(cache)) == GZ_NAMES
    for name in GZ_NAMES:
        assert sha256_of_content(cache / name) == MNIST_SHA256[name.removesuffix(".gz")]


def test_download_skips_down_and_corrupt_mirrors(server, down_mirror, tmp_path,
                                                 mnist_reference):
    mirrors = [down_mirror, server.url("flipped"), server.url("good")]
    ds = load_mnist(cache_dir=tmp_path, mirrors=mirrors, progress=False)
    check_mnist(ds)
    np.testing.assert_array_equal(ds.X_test.ravel(), mnist_reference["t10k-images-idx3-ubyte"])
    check_cache(tmp_path / "mnist")
    assert server.count("flipped") == 1  # abandoned after its first bad file
    assert server.count("good") == 4


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_the_download_bar_is_drawn_on_a_terminal_only(server, tmp_path, monkeypatch, terminal):
    """A log file (stderr not a terminal) gets no frames of the download bars."""
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    check_mnist(load_mnist(cache_dir=tmp_path, mirrors=[server.url("good")], progress=True))
    frames = stderr.getvalue()
    assert ("train-images-idx3-ubyte" in frames) == terminal, frames[:200]


def test_verified_cache_is_used_without_network(server, down_mirror, tmp_path, mnist_dir):
    copy_mnist(mnist_dir, tmp_path / "mnist")
    check_mnist(load_mnist(cache_dir=tmp_path, mirrors=[down_mirror], progress=False))
    assert server.requests == []


def test_corrupt_cached_file_is_replaced(server, down_mirror, tmp_path, mnist_dir, monkeypatch):
    cache = tmp_path / "mnist"
    copy_mnist(mnist_dir, cache)
    labels = cache / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-100])
    monkeypatch.setenv("SOFTMAXREG_CACHE", str(tmp_path))
    monkeypatch.setenv("SOFTMAXREG_MNIST_MIRRORS", f"{down_mirror},{server.url('good')}")
    monkeypatch.setattr(sys, "stderr", _Terminal())  # the download bar is drawn on a terminal
    check_mnist(load_mnist())
    check_cache(cache)
    assert server.requests == [("good", "t10k-labels-idx1-ubyte.gz")]
    assert "t10k-labels-idx1-ubyte" in sys.stderr.getvalue()  # the progress bar


def test_all_bad_mirrors_give_one_error_listing_each(server, down_mirror, silent_mirror,
                                                     tmp_path):
    reasons = {
        down_mirror: "connection failed ([Errno 111]",
        silent_mirror: "no answer within 1 s",
        server.url("flipped"): "corrupt or truncated gzip",
        server.url("truncated"): "corrupt or truncated gzip",
        server.url("wrong"): "is not MNIST's train-labels-idx1-ubyte",
        server.url("huge"): "sent more than",
        server.url("missing"): "HTTP error 404",
    }
    with pytest.raises(DataError) as err:
        load_mnist(cache_dir=tmp_path, mirrors=list(reasons), progress=False)
    message = str(err.value)
    assert "could not download MNIST's train-labels-idx1-ubyte.gz from any mirror" in message
    lines = message.splitlines()[1:1 + len(reasons)]  # then the ways forward (issue 12.7)
    for line, (mirror, reason) in zip(lines, reasons.items(), strict=True):
        assert line.strip().startswith(mirror) and reason in line, line
    assert "--data-dir" in message and "SOFTMAXREG_DATA" in message
    assert not (tmp_path / "mnist").exists()  # nothing bad (or temporary), no empty folder kept


def test_no_mirrors(monkeypatch):
    monkeypatch.delenv("SOFTMAXREG_DATA", raising=False)
    with pytest.raises(DataError, match="no MNIST mirrors"):
        load_mnist(cache_dir="/nonexistent", mirrors=[" "], progress=False)


# --------------------------------------------------------------------------------------------
# bundled sets
# --------------------------------------------------------------------------------------------


def test_bundled_sets_match_scikit_learn():
    from sklearn.datasets import load_breast_cancer, load_digits

    digits = load_bundled("digits")
    np.testing.assert_array_equal(digits.X, load_digits().data)
    assert (digits.pixels, digits.image_shape, digits.X.max()) == (False, (8, 8), 16)
    cancer = load_bundled("breast-cancer")
    assert cancer.feature_names == list(load_breast_cancer().feature_names)
    assert cancer.X.shape == (569, 30) and cancer.image_shape is None
    assert load_bundled("iris").X.shape == (150, 4)
    assert np.unique(load_bundled("wine").y).tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="unknown bundled dataset 'mnist'"):
        load_bundled("mnist")


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def csv_file(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_header_with_label_column_and_string_labels(tmp_path):
    path = csv_file(tmp_path, "a,label,b\n1,cat,2.5\n\n3,dog,-4\n")
    ds = read_csv(path)
    np.testing.assert_array_equal(ds.X, [[1, 2.5], [3, -4]])
    assert ds.y.tolist() == ["cat", "dog"]
    assert ds.feature_names == ["a", "b"] and ds.name == "data" and not ds.pixels


def test_csv_without_header_defaults_to_last_column(tmp_path):
    ds = read_csv(csv_file(tmp_path, "1,2,0\r\n3,4,1\r\n"))
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1]
    assert ds.feature_names == ["x0", "x1"] and ds.names_generated  # generated: no header
    assert ds.schema.label == 2 and not ds.schema.named


def test_csv_first_row_with_string_label_is_data(tmp_path):
    ds = read_csv(csv_file(tmp_path, "5.1,3.5,setosa\n6.2,2.9,virginica\n"))
    assert ds.X.shape == (2, 2) and ds.y.tolist() == ["setosa", "virginica"]


@pytest.mark.parametrize("label_column", [0, -3, "0", "y"])
def test_csv_label_column_by_index_or_name(tmp_path, label_column):
    text = "y,f1,f2\n1,10,11\n2,20,21\n" if label_column == "y" else "1,10,11\n2,20,21\n"
    ds = read_csv(csv_file(tmp_path, text), label_column=label_column)
    np.testing.assert_array_equal(ds.X, [[10, 11], [20, 21]])
    assert ds.y.tolist() == [1, 2]


def test_csv_tsv_and_semicolons(tmp_path):
    tsv = read_csv(csv_file(tmp_path, "x\ty\tlabel\n1\t2\ta\n", "d.tsv"))
    semi = read_csv(csv_file(tmp_path, "1;2;a\n3;4;b\n", "s.csv"))
    np.testing.assert_array_equal(tsv.X, [[1, 2]])
    np.testing.assert_array_equal(semi.X, [[1, 2], [3, 4]])


@settings(max_examples=25, deadline=None)
@given(
    X=hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 6)),
                 elements=st.floats(-1e9, 1e9, allow_subnormal=False)),
    data=st.data(),
)
def test_csv_round_trip_property(X, data):
    y = np.array(data.draw(st.lists(st.integers(-5, 5), min_size=len(X), max_size=len(X))))
    buffer = io.StringIO()
    np.savetxt(buffer, np.column_stack([X, y]), fmt="%.17g", delimiter=",")
    with tempfile.TemporaryDirectory() as folder:
        ds = read_csv(csv_file(Path(folder), buffer.getvalue()))
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,label\n1,2,0\n3,4\n", r"line 3: 2 fields, expected 3"),
        ("a,b,label\n1,2,0\n3,x,1\n", r"line 3, column 2 \('b'\): 'x' is not a finite number"),
        ("1,2,0\n,4,1\n", r"line 2, column 1: the cell is empty"),
        ("1,nan,0\n", r"line 1, column 2: 'nan' is not a finite number"),
        ("1,2,\n", r"line 1: the label \(column 3\) is empty \(the labels were taken from the "
                    r"column at index 2, chosen by default as the last column: if they are in "
                    r"another column, name it with --label-column"),
        ("a,b,label\n", "has a header but no data rows"),
        ("\n\n", "is empty"),
        ("1 2 3\n", "single column"),
    ],
)
def test_csv_errors_name_line_and_column(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_csv(csv_file(tmp_path, text))


def _wine_frame():
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[wine.target]
    frame["organic"] = np.arange(len(frame)) % 3 == 0  # a pandas bool column: True/False
    return frame


def test_csv_a_column_of_booleans_is_a_feature_beside_the_one_column_of_text(tmp_path):
    """'cultivar' is the only column of words: the labels, whatever column comes last; the
    bool column 'organic' is a feature of 1 and 0, in memory and streamed."""
    from softmaxreg.streaming import open_source

    frame = _wine_frame()
    frame.to_csv(tmp_path / "wine.csv", index=False)
    ds = read_csv(tmp_path / "wine.csv")
    assert (ds.label_column, ds.label_reason) == ("cultivar", "the only column of text")
    assert ds.y.tolist() == frame["cultivar"].tolist()
    expected = frame.drop(columns="cultivar").astype(float).to_numpy()
    np.testing.assert_array_equal(ds.X, expected)
    streamed = list(open_source(tmp_path / "wine.csv").chunks(50))
    np.testing.assert_array_equal(np.concatenate([X for X, _ in streamed]), expected)
    frame.drop(columns="cultivar").to_csv(tmp_path / "flags.csv", index=False)
    ds = read_csv(tmp_path / "flags.csv")  # no words: the column of True/False is the text
    assert ds.label_column == "organic" and sorted(set(ds.y)) == ["False", "True"]


def test_csv_errors_that_follow_from_a_default_label_name_it(tmp_path):
    """Two columns of words: the last column, 'organic', is taken; the error on the other says
    so and how to choose another; a column the user names is not explained."""
    frame = _wine_frame()
    frame.insert(3, "region", np.array(["east", "west"])[np.arange(len(frame)) % 2])
    frame.to_csv(tmp_path / "wine.csv", index=False)
    with pytest.raises(DataError) as err:
        read_csv(tmp_path / "wine.csv")
    assert str(err.value).startswith(f"{tmp_path / 'wine.csv'}, line 2, column 4 ('region'): "
                                     "'east' is not a finite number")
    assert ("(the labels were taken from the column 'organic', chosen by default as the last "
            "column: if they are in another column, name it with --label-column, "
            "label_column= in Python)") in str(err.value)
    with pytest.raises(DataError) as err:
        read_csv(tmp_path / "wine.csv", label_column="cultivar")
    assert "'east' is not a finite number" in str(err.value)
    assert "chosen by default" not in str(err.value)


def test_csv_a_column_of_categories_says_how_to_encode_it(tmp_path):
    """In memory and streamed, one message: the cell, and what to do with the column."""
    from softmaxreg.streaming import open_source

    path = csv_file(tmp_path, "a,region,label\n1,east,0\n2,west,1\n")
    expected = (f"{path}, line 2, column 2 ('region'): 'east' is not a finite number, and "
                "features are numbers: encode this column of categories as numbers, one column "
                "per category (e.g. pandas.get_dummies(frame, columns=['region'])), or drop it")
    for read in (read_csv, lambda p, **kw: list(open_source(p, **kw).chunks())):
        with pytest.raises(DataError) as err:
            read(path, label_column="label")
        assert str(err.value) == expected
    with pytest.raises(DataError) as err:  # NaN is a number, not a category
        read_csv(csv_file(tmp_path, "a,b,label\n1,nan,0\n"))
    assert "'nan' is not a finite number" in str(err.value)
    assert "categories" not in str(err.value)


def test_held_out_labels_no_training_row_has_are_refused():
    check_held_out_labels(np.array([0, 1, 1, 2]), np.array([2, 0]), "f.csv")  # all seen
    with pytest.raises(DataError) as err:
        check_held_out_labels(np.array([5, 6, 7]), np.array([8, 5, 9]), "f.csv", "proline",
                              "the last column")
    assert str(err.value) == (
        "f.csv: labels [8, 9] of the held-out test rows are in no training row, so the model "
        "could not score them; 5 distinct labels in 6 rows (the labels were taken from the "
        "column 'proline', chosen by default as the last column: if they are in another column, "
        "name it with --label-column, label_column= in Python); else give every class at least "
        "two rows")
    classes = np.array(["a", "b", "c"])
    with pytest.raises(DataError, match=r"labels \['c'\] of the held-out"):
        check_held_out_labels(np.array([0, 1]), np.array([2]), "f.csv", classes=classes)


def test_csv_bad_label_column(tmp_path):
    path = csv_file(tmp_path, "a,b\n1,2\n")
    with pytest.raises(DataError, match=r"no column named 'c': its columns are \['a', 'b'\]"):
        read_csv(path, label_column="c")
    with pytest.raises(DataError, match="label column 5 is out of range"):
        read_csv(path, label_column=5)


# --------------------------------------------------------------------------------------------
# NPZ and svmlight
# --------------------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (5, 3, 2), np.uint8), np.arange(5)
    Xt, yt = rng.integers(0, 256, (2, 3, 2), np.uint8), np.array([1, 0])
    np.savez(tmp_path / "pics.npz", X=X, y=y, X_test=Xt, y_test=yt)
    ds = read_npz(tmp_path / "pics.npz")
    np.testing.assert_array_equal(ds.X, X.reshape(5, 6))
    np.testing.assert_array_equal(ds.X_test, Xt.reshape(2, 6))
    assert (ds.pixels, ds.image_shape, ds.name) == (True, (3, 2), "pics")
    np.savez(tmp_path / "f.npz", X=X.reshape(5, 6) / 2.0, y=np.array(list("abcde")))
    ds = read_npz(tmp_path / "f.npz")
    assert not ds.pixels and ds.y.tolist() == list("abcde")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.array([[1], [2]], dtype=object), "y": np.arange(2)}, "'X' holds Python objects"),
        ({"X": np.ones((2, 2))}, "has no array y"),
        ({"X": np.ones((2, 2)), "y": np.arange(3)}, "X has 2 rows but y has 3 labels"),
        ({"X": np.ones((2, 2)), "y": np.arange(2), "X_test": np.ones((1, 2))}, "X_test and y_test"),
        ({"X": np.array([["a"]]), "y": np.arange(1)}, "expected numbers"),
        ({"X": np.ones(2), "y": np.arange(2)}, r"shape \(2,\)"),
        ({"X": np.array([[1.0, np.nan]]), "y": np.arange(1)}, "X contains NaN or infinity"),
        ({"X": np.ones((1, 2)), "y": np.arange(1), "X_test": np.array([[np.inf, 0]]),
          "y_test": np.arange(1)}, "X_test contains NaN or infinity"),
    ],
)
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        read_npz(tmp_path / "bad.npz")


def test_npz_member_claiming_more_than_deflate_can_produce_is_not_expanded(tmp_path, peak_memory):
    """A member whose directory entry and .npy header agree on 10⁹ bytes, from 57 compressed
    bytes: refused from the sizes alone (deflate expands at most ~1032×), before any allocation."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (125_000_000, 1)})
    path = tmp_path / "lying.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X.npy", header.getvalue())
        zf.writestr("y.npy", _npy_bytes(np.arange(3)))
    claimed = len(header.getvalue()) + 10**9
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")  # X.npy's central directory entry comes first
    data[central + 24:central + 28] = struct.pack("<I", claimed)  # its uncompressed size
    path.write_bytes(bytes(data))
    with peak_memory() as peak, pytest.raises(DataError, match="refusing to expand"):
        read_npz(path)
    assert peak.bytes < 2 * 10_178  # twice the peak measured; the claim was 10⁹ bytes


def _npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_npz_not_an_archive(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_npz(tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(DataError, match="single array"):
        read_npz(tmp_path / "single.npy")


def test_npy_holds_the_labels_in_its_last_column_or_the_one_named(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    y = np.array([2, 0, 1, 2])
    np.save(tmp_path / "xy.npy", np.column_stack([X, y]))
    ds = read_npy(tmp_path / "xy.npy")
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [2, 0, 1, 2]
    assert ds.label_column == 3 and ds.schema.label == 3 and not ds.pixels
    np.save(tmp_path / "yx.npy", np.column_stack([y, X]))
    for label_column in (0, "0", -4):
        ds = load_dataset(tmp_path / "yx.npy", label_column=label_column)
        np.testing.assert_array_equal(ds.X, X)
        assert ds.y.tolist() == [2, 0, 1, 2] and ds.label_column == 0
    schema = DataSchema(("x0", "x1", "x2"), named=False, label=0)
    assert load_dataset(tmp_path / "yx.npy", schema=schema).y.tolist() == [2, 0, 1, 2]
    np.save(tmp_path / "x.npy", X)  # the model's features alone: rows to predict
    ds = load_dataset(tmp_path / "x.npy", schema=schema, require_labels=False)
    assert ds.y is None
    np.testing.assert_array_equal(ds.X, X)


@pytest.mark.parametrize(
    ("array", "options", "message"),
    [
        (np.column_stack([np.ones((3, 2)), [0.5, 1.0, 2.0]]), {},
         r"column 2 holds 0.5, which is not a class label.*labels \(whole numbers\) in the "
         r"last column.*--label-column"),
        (np.array([[1.0, np.nan], [2.0, 1.0]]), {}, "column 1 holds nan, which is not a class"),
        (np.array([[np.inf, 1.0], [2.0, 1.0]]), {}, "a feature contains NaN or infinity"),
        (np.ones((3, 1)), {}, "a single column, no features beside the labels"),
        (np.ones(3), {}, r"shape \(3,\).*one array \(n, d \+ 1\)"),
        (np.array([["a", "b"]]), {}, "dtype <U1"),
        (np.ones((2, 3)), {"label_column": 3}, "label column 3 is out of range: .* 3 columns"),
        (np.ones((2, 3)), {"schema": DataSchema(("a", "b", "c"), named=True)},
         "holds the model's 3 features but no label column, and scoring needs the labels"),
        (np.ones((2, 5)), {"schema": DataSchema(("a", "b", "c"), named=True)},
         "has 5 columns, but the model takes 3 features"),
    ],
)
def test_npy_errors_state_the_layout(tmp_path, array, options, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=message):
        read_npy(tmp_path / "bad.npy", **options)


@pytest.mark.parametrize("kind", ["csv", "npy"])
def test_a_default_label_column_that_looks_like_a_feature_warns_once(tmp_path, kind):
    """read_csv and read_npy run the one check on a label column nobody named: numbers with
    more than 50 distinct values (or more distinct values than half the rows)."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(size=(200, 2)), rng.integers(0, 60, 200)])
    if kind == "csv":
        np.savetxt(tmp_path / "a.csv", X, delimiter=",", header="a,b,c", comments="")
        read, column = read_csv, "c"
    else:
        np.save(tmp_path / "a.npy", X)
        read, column = read_npy, 2
    distinct = len(np.unique(X[:, 2]))
    assert distinct > 50
    with pytest.warns(UserWarning) as caught:
        read(tmp_path / f"a.{kind}")
    assert [str(w.message) for w in caught] == [
        f"the label column {column!r} (chosen by default) holds {distinct} distinct numbers in "
        "200 rows: it looks like a feature, not labels; it was taken as the last column: if the "
        "labels are in another column, name it with --label-column (label_column= in Python)"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read(tmp_path / f"a.{kind}", label_column=column)  # named: not second-guessed
        np.savetxt(tmp_path / "few.csv", X[:, :2].round(), delimiter=",", fmt="%d")
        read_csv(tmp_path / "few.csv")  # few distinct numbers: labels
        np.savetxt(tmp_path / "two.csv", [[1, 2, 0], [3, 4, 1]], delimiter=",", fmt="%d")
        read_csv(tmp_path / "two.csv")  # 2 classes in 2 rows: too few rows to judge


def test_npy_that_is_not_one_array(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.ones((2, 2)), y=np.arange(2))
    (tmp_path / "a.npz").rename(tmp_path / "archive.npy")
    with pytest.raises(DataError, match="is an .npz archive, not a .npy file"):
        read_npy(tmp_path / "archive.npy")
    (tmp_path / "text.npy").write_text("hello")
    with pytest.raises(DataError, match="is not a readable .npy file"):
        load_dataset(tmp_path / "text.npy")


def test_svmlight_round_trip_with_scikit_learn(tmp_path):
    from sklearn.datasets import dump_svmlight_file

    rng = np.random.default_rng(0)
    dense = sp.random(20, 7, density=0.3, random_state=0).toarray()
    dense[:, 0] = 1.0  # makes the zero-based indexing detectable
    dense[:, -1] = 2.0  # and the number of features
    X = sp.csr_matrix(dense)
    y = rng.integers(0, 3, 20)
    dump_svmlight_file(X, y, str(tmp_path / "d.svm"), zero_based=True)
    ds = read_svmlight(tmp_path / "d.svm")
    assert sp.issparse(ds.X) and ds.X.format == "csr"
    np.testing.assert_allclose(ds.X.toarray(), X.toarray())
    assert ds.y.dtype == np.int64 and ds.y.tolist() == y.tolist()


def test_svmlight_errors(tmp_path):
    (tmp_path / "bad.svm").write_text("1 a:b\n")
    with pytest.raises(DataError, match="bad.svm is not a valid svmlight"):
        read_svmlight(tmp_path / "bad.svm")


# --------------------------------------------------------------------------------------------
# load_dataset
# --------------------------------------------------------------------------------------------


def test_load_dataset_dispatch(tmp_path):
    assert load_dataset("Iris").name == "iris"
    csv_path = csv_file(tmp_path, "label,a,b\n7,1,3\n8,2,4\n")
    assert load_dataset(str(csv_path)).y.tolist() == [7, 8]
    assert load_dataset(csv_path, label_column="b").y.tolist() == [3, 4]
    np.savez(tmp_path / "d.npz", X=np.ones((2, 2)), y=np.arange(2))
    assert load_dataset(tmp_path / "d.npz").X.shape == (2, 2)
    (tmp_path / "d.txt").write_text("1 1:0.5 2:1\n0 2:3\n")
    assert sp.issparse(load_dataset(tmp_path / "d.txt").X)
    write_idx_folder(tmp_path / "idx")
    assert load_dataset(tmp_path / "idx").image_shape == (4, 5)


def test_load_dataset_mnist(mnist_dir):
    check_mnist(load_dataset("mnist", data_dir=mnist_dir))


def test_load_dataset_errors(tmp_path):
    expected = ("unknown dataset 'foo': expected mnist, digits, iris, wine, breast_cancer, or a "
                "path to a .csv, .npz, .npy, .svmlight file or an IDX folder")
    with pytest.raises(DataError) as err:
        load_dataset("foo")
    assert str(err.value) == expected
    with pytest.raises(DataError, match="^no such file: .*missing.csv$"):
        load_dataset(tmp_path / "missing.csv")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(DataError, match="unknown file type '.parquet'"):
        load_dataset(tmp_path / "x.parquet")
    with pytest.raises(DataError, match="label_column applies to CSV and .npy files only"):
        load_dataset("iris", label_column=0)


def test_dataset_checks_shapes():
    with pytest.raises(DataError, match="X has 3 rows but y has 2 labels"):
        Dataset(np.ones((3, 2)), np.arange(2))
    with pytest.raises(DataError, match="X_test has 3 features, but X has 2"):
        Dataset(np.ones((3, 2)), np.arange(3), np.ones((1, 3)), np.arange(1))
    with pytest.raises(DataError, match="image shape"):
        Dataset(np.ones((3, 2)), np.arange(3), image_shape=(2, 2))


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_csv_with_decimal_commas_says_so(tmp_path, stream):
    """Excel's European CSV (';' between columns, ',' in numbers): one line naming the cell
    and the decimal point, not the advice for a column of categories."""
    from sklearn.datasets import load_iris

    from softmaxreg.streaming import open_source, scan

    load_iris(as_frame=True).frame.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    with pytest.raises(DataError, match=r"line 2, column 1 \('sepal length \(cm\)'\): '5,1' is a "
                                        "number with a comma; numbers are read with a decimal "
                                        "point") as caught:
        if stream:
            scan(open_source(tmp_path / "eu.csv"), 50)
        else:
            read_csv(tmp_path / "eu.csv")
    assert "get_dummies" not in str(caught.value)
