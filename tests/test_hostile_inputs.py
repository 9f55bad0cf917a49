"""Structured hostile inputs (issue 13, points 1, 2 and 5): valid containers with hostile
contents. Each case asserts the one clear error (type and message), a bounded memory peak
(tracemalloc, within ~2× of what was measured) and a bounded time.

Measured on the 2-core development machine: a 9000×9000 PNG of 99 KB read in 1.3 s with an
11 MB traced peak (Pillow's own 81 MB 8-bit buffer is outside tracemalloc; it was 2.7 GB of
float64 before); svmlight with index 2·10⁹ refused in ~10 ms under 1 MB (it allocated 7.45 GiB);
IDX headers of 2³¹ × 2³¹ refused from the header alone.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

from softmaxreg import SoftmaxNetwork, SoftmaxRegression, cli
from softmaxreg.exceptions import DataError
from softmaxreg.images import MAX_PIXELS, image_to_mnist
from softmaxreg.io.idx import read_idx, read_idx_folder
from softmaxreg.io.tabular import SVMLIGHT_MIN_WIDTH, read_svmlight
from softmaxreg.streaming import IdxSource, SvmlightSource

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


class Bounded:
    """Asserts, on exit, a tracemalloc peak under ``mb`` MB and a time under ``seconds``."""

    def __init__(self, mb: float, seconds: float) -> None:
        self.mb, self.seconds = mb, seconds

    def __enter__(self) -> Bounded:
        tracemalloc.start()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        elapsed = time.perf_counter() - self.start
        assert peak < self.mb, f"peak {peak:.1f} MB"
        assert elapsed < self.seconds, f"{elapsed:.2f} s"


# --- svmlight ------------------------------------------------------------------------------


@SETTINGS
@given(rows=st.integers(1, 20), index=st.integers(SVMLIGHT_MIN_WIDTH + 1, 2**31 - 2),
       qid=st.booleans(), stream=st.booleans())
def test_svmlight_index_beyond_what_the_file_holds_is_refused(tmp_path, rows, index, qid, stream):
    lines = [f"{i % 3} {'qid:7 ' if qid else ''}1:0.5 {3 + i}:1" for i in range(rows)]
    lines[-1] += f" {index}:2"
    path = tmp_path / "wide.svm"
    path.write_text("\n".join(lines) + "\n")
    with Bounded(mb=2, seconds=2), pytest.raises(DataError, match="features, from only"):
        SvmlightSource(path).layout() if stream else read_svmlight(path)


def test_svmlight_at_the_width_floor_is_read_sparse(tmp_path):
    path = tmp_path / "ok.svm"
    path.write_text(f"0 1:1\n1 2:1 {SVMLIGHT_MIN_WIDTH}:1\n")
    with Bounded(mb=35, seconds=5):  # measured 16.9 MB (the 2¹⁸ names): CSR, never dense
        data = read_svmlight(path)
    assert data.X.shape == (2, SVMLIGHT_MIN_WIDTH) and data.X.nnz == 3


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_svmlight_non_finite_values_are_refused(tmp_path, value):
    path = tmp_path / "nan.svm"
    path.write_text(f"0 qid:1 1:{value}\n1 qid:2 2:1\n")
    with pytest.raises(DataError, match="not a finite number"):
        read_svmlight(path)


def test_cli_train_on_a_huge_svmlight_index_is_one_error_line(tmp_path, capsys):
    path = tmp_path / "wide.svm"
    path.write_text("0 1:1 2000000000:1\n1 3:2\n2 5:1\n")
    for extra in ([], ["--stream"]):
        with Bounded(mb=5, seconds=10):
            assert cli.main(["train", "--dataset", str(path), "--quiet", *extra]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "2000000000 features, from only 4 values" in err[0]



# --- CSV ---------------------------------------------------------------------------------


def test_cli_train_with_a_label_per_row_is_refused_before_fitting(tmp_path, monkeypatch,
                                                                  capsys, peak_memory):
    """3000 rows, each its own label: the run's metrics would hold 3000 × 3000 probabilities
    (441 MB with scikit-learn's log loss), here more than the 200 MB said to be available.
    40,000 such rows were fitted (6 s an iteration, 200 by default), then failed allocating a
    (30000, 30000) array. (The test rows are some of the training rows: held out of the file,
    labels no training row has would be refused first, as they are.)"""
    monkeypatch.setattr("softmaxreg.workflow.available_memory", lambda: 200e6)
    rng = np.random.default_rng(0)
    path, test = tmp_path / "ids.csv", tmp_path / "test.csv"
    rows = [f"{a:.3f},{b:.3f},id{i}\n" for i, (a, b) in enumerate(rng.normal(size=(3000, 2)))]
    path.write_text("a,b,label\n" + "".join(rows))
    test.write_text("a,b,label\n" + "".join(rows[:10]))
    command = ["train", "--dataset", str(path), "--test", str(test), "--quiet", "--epochs", "2"]
    assert cli.main(command) == 1  # once, so that first-call imports are not counted
    capsys.readouterr()
    with peak_memory() as peak:
        assert cli.main(command) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3,000 × 3,000 class probabilities, about 420.6 MiB" in err[0]
    assert "3,000 distinct labels for 3,000 rows look like identifiers" in err[0]
    assert peak.bytes < 2 * 0.61e6  # measured 0.61 MB: the file read and split, nothing fitted

# --- IDX, streamed and in memory --------------------------------------------------------------


def _idx_folder(tmp_path, dims, payload=b"", compress=False, n_labels=3):
    """Images of ``dims`` holding ``payload``; labels claiming ``n_labels``, holding 3."""
    header = b"\0\0\x08" + bytes([len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    labels = b"\0\0\x08\x01" + struct.pack(">I", n_labels) + b"\0\1\2"
    for name, data in (("train-images-idx3-ubyte", header + payload),
                       ("train-labels-idx1-ubyte", labels)):
        if compress:
            (tmp_path / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (tmp_path / name).write_bytes(data)
    return tmp_path


@SETTINGS
@given(n=st.integers(4, 2**32 - 1), h=st.integers(1, 2**32 - 1), w=st.integers(1, 2**32 - 1),
       compress=st.booleans())
def test_streamed_idx_header_beyond_the_file_is_refused(tmp_path_factory, n, h, w, compress):
    assume(n * h * w > 100)
    folder = _idx_folder(tmp_path_factory.mktemp("idx"), (n, h, w), b"\0" * 100, compress,
                         n_labels=n)  # as many labels claimed: the images' payload is at fault
    with Bounded(mb=2, seconds=2), pytest.raises(DataError, match="truncated|no array"):
        next(IdxSource(folder).raw_chunks())


def test_idx_of_no_images_with_huge_rows_is_refused(tmp_path):
    folder = _idx_folder(tmp_path, (0, 2**31, 2**31))
    with Bounded(mb=2, seconds=2), pytest.raises(DataError, match="holds no images"):
        read_idx_folder(folder)


def test_cli_streamed_idx_of_2e31_images_is_one_error_line(tmp_path, capsys):
    _idx_folder(tmp_path, (2**31, 2**31, 1), b"\0" * 100)
    with Bounded(mb=5, seconds=10):
        assert cli.main(["train", "--dataset", str(tmp_path), "--stream", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is truncated: header says 2147483648×2147483648×1" in err[0]



@pytest.mark.parametrize(("code", "dims"), [(0x08, (1024, 256, 256)),  # 64 MiB of uint8
                                            (0x0C, (384, 128, 128))])  # 24 MiB, 48 in int32
def test_idx_gzip_bomb_beyond_the_memory_available_is_refused(tmp_path, monkeypatch,
                                                               peak_memory, code, dims):
    """Zeros that truly inflate to what the header says (64 MiB from 64 KB) are refused when
    they, and the native-order copy of multi-byte values, exceed the memory available (here
    32 MiB); a 3 MB file of 3.2 GB took 14 s and 3.2 GB before."""
    monkeypatch.setattr("softmaxreg.io.dataset.available_memory", lambda: 32 * 2**20)
    path = tmp_path / "bomb-idx3-ubyte.gz"
    with gzip.GzipFile(path, "wb", compresslevel=9) as gz:
        gz.write(bytes([0, 0, code, 3]) + struct.pack(">3I", *dims))
        for _ in range(dims[0] // 128):
            gz.write(bytes(128 * dims[1] * dims[2] * (4 if code == 0x0C else 1)))
    with peak_memory() as peak, pytest.raises(DataError, match=r"needs (64|48) MiB, more than the "
                                                               "32 MiB of memory available"):
        read_idx(path)
    assert peak.bytes < 2 * 83e3  # measured 83 KB


# --- images ------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, rows: int | None = None, extra: bytes = b"") -> bytes:
    """A valid 8-bit greyscale PNG header of ``width`` × ``height``, with ``rows`` rows of
    white pixels compressed (all of them by default)."""
    rows = height if rows is None else rows
    raw = zlib.compress((b"\0" + b"\xff" * width) * rows, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", raw)
            + _chunk(b"IEND", b""))


@SETTINGS
@given(width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1))
def test_png_headers_of_any_size_are_refused_or_read_bounded(tmp_path_factory, width, height):
    path = tmp_path_factory.mktemp("png") / "digit.png"
    path.write_bytes(_png(width, height, rows=min(height, 2) if width < 2**16 else 0))
    with Bounded(mb=16, seconds=3):  # measured 8 MB
        try:
            digit = image_to_mnist(path)
        except DataError as exc:
            assert str(path) in str(exc)
            if width * height > MAX_PIXELS:
                assert "million pixels a picture may have" in str(exc)
        else:  # a picture Pillow reads although cut short (white rows over black)
            assert width * height <= MAX_PIXELS and digit.shape == (784,)


def test_a_9000_square_png_of_100_kb_is_read_in_8_bits(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(_png(9000, 9000))
    assert path.stat().st_size < 120_000
    with Bounded(mb=25, seconds=20), pytest.raises(DataError, match="no ink"):  # measured 11 MB
        image_to_mnist(path)


def _transparent_png(side: int, channels: int) -> bytes:
    """A ``side``² PNG in LA (``channels`` 2) or RGBA (4): transparent black everywhere but an
    opaque black bar (a 1) in the middle third, rows compressed as they are made."""
    bar = np.zeros((side, channels), np.uint8)
    bar[side * 43 // 90: side * 47 // 90, -1] = 255
    plain, with_bar = b"\0" + bytes(side * channels), b"\0" + bar.tobytes()
    deflate = zlib.compressobj(9)
    raw = b"".join(deflate.compress(with_bar if side // 3 <= row < 2 * side // 3 else plain)
                   for row in range(side)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, {2: 4, 4: 6}[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", raw)
            + _chunk(b"IEND", b""))


@pytest.mark.parametrize("channels", [2, 4], ids=["LA", "RGBA"])
def test_an_81_megapixel_png_with_alpha_is_composited_in_8_bits(tmp_path, channels):
    """Pillow keeps LA and RGBA at 4 bytes a pixel (324 MB here); with RGBA copies to
    composite onto white paper the read took 1.62 GB, now 464 MB (the picture and two 8-bit
    channels). Pillow's memory is outside tracemalloc: a fresh process reports the growth of
    its peak resident size."""
    path = tmp_path / "big.png"
    path.write_bytes(_transparent_png(9000, channels))
    code = ("import resource, sys\nfrom softmaxreg.images import image_to_mnist\n"
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "before = peak()\ndigit = image_to_mnist(sys.argv[1]).reshape(28, 28)\n"
            "print(peak() - before, *digit.sum(axis=0).nonzero()[0])")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True).stdout.split()
    assert int(out[0]) * 1024 < 2 * 464e6  # measured 464 MB (1.62 GB before)
    assert [int(column) for column in out[1:]] == [13, 14, 15]  # the 1, on white paper


def test_jpeg_is_reduced_while_decoding(tmp_path):
    path = tmp_path / "big.jpg"
    picture = np.full((4000, 3000), 255, dtype=np.uint8)
    picture[1000:3000, 1400:1600] = 0  # a 1
    Image.fromarray(picture).save(path, quality=90)
    with Bounded(mb=25, seconds=10):
        digit = image_to_mnist(path)
    assert digit.reshape(28, 28)[4:24, 12:16].mean() > 100


HOSTILE_FILES = {
    "EPS": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto showpage\n",
    "PDF": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    "SVG": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
    "ICO": b"\0\0\1\0\1\0\x10\x10\0\0\1\0\x20\0" + b"\0" * 64,
    "PSD": b"8BPS\0\1" + b"\0" * 64,
    "empty": b"",
    "signature only": b"\x89PNG\r\n\x1a\n",
    "truncated IHDR": _png(28, 28)[:20],
    "truncated IDAT": _png(28, 28)[:-30],
    "bad IHDR CRC": _png(28, 28)[:29] + b"\0\0\0\0" + _png(28, 28)[33:],
    "IDAT length past the end": _png(28, 28).replace(b"IDAT", b"IDAT", 1)[:33]
    + struct.pack(">I", 2**31 - 1) + _png(28, 28)[37:],
    "broken APNG fcTL": _png(28, 28, extra=_chunk(b"acTL", struct.pack(">II", 1, 0))
                             + _chunk(b"fcTL", b"\0" * 5)),
    "APNG of 2^31 frames": _png(28, 28, extra=_chunk(b"acTL", struct.pack(">II", 2**31, 0))),
    "zero width": _png(0, 28, rows=0),
    "bad filter bytes": _png(28, 28)[:-12].replace(b"IDAT", b"IDAT") + _chunk(b"IEND", b""),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FILES))
def test_hostile_files_named_png_are_one_data_error(tmp_path, name):
    path = tmp_path / "digit.png"
    path.write_bytes(HOSTILE_FILES[name])
    with Bounded(mb=4, seconds=3), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="digit.png"):
            image_to_mnist(path)


def test_eps_never_reaches_the_eps_plugin(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    def refuse(*args, **kwargs):
        raise AssertionError("the EPS plugin was reached")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", refuse)
    path = tmp_path / "digit.png"
    path.write_bytes(HOSTILE_FILES["EPS"])
    with pytest.raises(DataError, match="not a picture in one of the formats PNG, JPEG"):
        image_to_mnist(path)


@pytest.mark.parametrize("error", [SyntaxError("broken chunk"), struct.error("unpack"),
                                   EOFError(), IndexError("x"), KeyError("y"),
                                   ValueError("z"), OSError("w")])
def test_every_parser_exception_becomes_a_data_error(tmp_path, monkeypatch, error):
    path = tmp_path / "digit.png"
    path.write_bytes(_png(28, 28))

    def load(self):
        raise error

    monkeypatch.setattr(Image.Image, "load", load)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", load)
    with pytest.raises(DataError, match=f"cannot read image {path}: {type(error).__name__}"):
        image_to_mnist(path)


# --- predictions that would be NaN ------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_models():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net32 = SoftmaxNetwork(hidden_layer_sizes=(4,), max_iter=20, dtype="float32",
                               random_state=0).fit(X, y)
        reg = SoftmaxRegression().fit(X, y)
    return X, net32, reg


@settings(max_examples=40, deadline=None)
@given(row=st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=4, max_size=4))
def test_extreme_finite_rows_give_probabilities_or_a_value_error(iris_models, row):
    _, net32, reg = iris_models
    for model in (net32, reg):
        try:
            P = model.predict_proba(np.array([row]))
        except ValueError as exc:
            assert "logits are not finite" in str(exc)
            continue
        assert np.isfinite(P).all() and np.isclose(P.sum(), 1.0)
        assert model.predict(np.array([row]))[0] == model.classes_[np.argmax(P)]


@pytest.mark.parametrize("value", [1.7e308, -1.7e308])
def test_lbfgs_stopped_at_float64_max_does_not_advise_more_iterations(value):
    """A feature near ±1.7e308 makes L-BFGS's first line search fail: it stops after 0 of its
    200 iterations, and more would not help (the warning said to increase them)."""
    X, y = load_iris(return_X_y=True)
    X[0, 0] = value
    with pytest.warns(ConvergenceWarning) as caught:
        SoftmaxRegression().fit(X, y)
    (message,) = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    assert message.startswith("lbfgs failed to converge after 0 iteration(s) (ABNORMAL")
    assert message.endswith("A larger max_iter would not help: scale the data, e.g. with "
                            "sklearn.preprocessing.StandardScaler.")


def test_float32_network_given_1e39_computes_in_float64(iris_models):
    _, net32, _ = iris_models
    row = np.full((1, 4), 1e39)
    wide = net32.network_.spec
    Z64 = type(wide)(wide.layer_sizes, wide.activation, wide.output, "float64").build(
        net32.network_.params.astype(np.float64)).logits(row)
    assert np.isfinite(net32.predict_proba(row)).all()
    assert net32.predict(row)[0] == net32.classes_[np.argmax(Z64)]


def test_weights_near_float32_limit_predict_in_float64_or_refuse(iris_models):
    X, net32, _ = iris_models
    saved = net32.network_.params.copy()
    try:
        net32.network_.params[:] = saved * np.float32(1e37)  # finite, logits overflow float32
        P = net32.predict_proba(X[:5])
        assert np.isfinite(P).all()
        net32.network_.params[:] = np.float32(3e38)
        with pytest.raises(ValueError, match="logits are not finite for 1 of 1 rows"):
            net32.predict(np.full((1, 4), 1e300))
    finally:
        net32.network_.params[:] = saved


def test_cli_memory_error_is_one_line(monkeypatch, capsys):
    def exhausted(args):
        raise MemoryError("Unable to allocate 7.45 GiB")

    monkeypatch.setitem(cli.COMMANDS, "train", exhausted)
    assert cli.main(["train", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["softmaxreg train: error: out of memory (Unable to allocate 7.45 GiB); the "
                   "data or the model is too large for this machine"]


def test_npy_header_that_python_cannot_tokenize_is_one_data_error(tmp_path):
    """An unclosed parenthesis made numpy's header parser raise tokenize.TokenError."""
    import zipfile

    from softmaxreg.io import load_dataset
    from softmaxreg.streaming import NpySource

    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2"
    header = header.ljust(117) + b"\n"  # 10-byte preamble + 118: a multiple of 64
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(48)
    (tmp_path / "tok.npy").write_bytes(npy)
    with zipfile.ZipFile(tmp_path / "tok.npz", "w") as zf:
        zf.writestr("X.npy", npy)
        zf.writestr("y.npy", npy)
    with pytest.raises(DataError, match=r"tok\.npz: member 'X\.npy' has a malformed \.npy hea"):
        load_dataset(str(tmp_path / "tok.npz"))
    with pytest.raises(DataError, match=r"tok\.npy is not a readable \.npy file"):
        NpySource(tmp_path / "tok.npy")
