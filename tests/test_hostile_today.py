"""Structured hostile inputs against what changed on one day (83b6bf6..): ``.npy`` read in
memory, ``.npz`` streamed, the label-column guess, saved Pipelines, ``input_max_abs`` and
pictures (JPEG draft decoding, Pillow's bound). Each test states the attack and asserts the one
clear error, or the right answer, against an independent expectation.
"""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from softmaxreg.exceptions import DataError
from softmaxreg.io import read_npy
from softmaxreg.streaming import NpySource


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A version 1.0 .npy preamble and header for ``shape`` (padded to 64 bytes, as numpy's)."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header = header.ljust(64 * (1 + (len(header) + 11) // 64) - 11) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


@pytest.mark.parametrize(("name", "content", "message"), [
    ("text", b"1,2,0\n3,4,1\n", "does not begin with NumPy's .npy header"),
    ("pickle", pickle.dumps(np.ones((3, 3))), "does not begin with NumPy's .npy header"),
    ("empty", b"", "does not begin with NumPy's .npy header"),
    # a shape numpy multiplies in C: 'Python int too large to convert to C long'
    ("overflow", _npy_header((3, 10**20)) + bytes(48),
     r"a header for \(3, 100000000000000000000\) float64 \(2400000000000000000000 bytes\) but "
     "holds 48 bytes"),
    ("short", _npy_header((10, 3)) + bytes(220), r"\(240 bytes\) but holds 220 bytes"),
], ids=["text", "pickle", "empty", "overflow", "short"])
def test_npy_file_that_is_not_a_whole_npy_array_is_one_line(tmp_path, name, content, message):
    """A .npy file that is text or a pickle was 'This file contains pickled (object) data. If
    you trust the file ...' (the text file was no pickle at all); an empty one numpy's raw
    EOFError 'No data left in file'; a header whose shape overflows a C long a raw
    OverflowError; a short one 'mmap length is greater than file size'. Now one DataError
    from the header alone, read whole or streamed."""
    path = tmp_path / f"{name}.npy"
    path.write_bytes(content)
    for read in (read_npy, NpySource):
        with pytest.raises(DataError, match=rf"{name}\.npy is not a readable \.npy file: .*"
                                            f"{message}") as caught:
            read(path)
        assert "\n" not in str(caught.value)


def test_npy_header_too_long_for_numpy_is_one_line(tmp_path):
    """numpy refuses headers over 10000 bytes with a message of two lines."""
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': " + b"(" * 6000 + b")" * 6000
    header += b"}".ljust(64 - (len(header) + 13) % 64) + b"\n"
    path = tmp_path / "deep.npy"
    path.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header)
    with pytest.raises(DataError, match="malformed .npy header") as caught:
        read_npy(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("column", ["cultivar", "1.5", 1.5, True])
def test_npy_label_column_by_name_is_refused_in_words(tmp_path, column):
    """``--label-column cultivar`` on a .npy file gave "invalid literal for int() with base 10:
    'cultivar'" (whole and --stream); ``label_column=1.5`` silently took column 1."""
    np.save(tmp_path / "a.npy", np.c_[np.arange(12.0).reshape(4, 3), [0, 1, 0, 1]])
    for read in (read_npy, lambda path, column: NpySource(path, label_column=column)):
        with pytest.raises(DataError, match=rf"label column {column!r} is not a column index: "
                                            r".*a\.npy is a \.npy file, whose columns have no "
                                            "names"):
            read(tmp_path / "a.npy", column)


def test_npy_label_column_index_from_the_command_line(tmp_path):
    """The CLI gives the index as text: '0' and '-4' are the first column, as 0 is."""
    data = np.c_[[0, 1, 0, 1], np.arange(12.0).reshape(4, 3)]
    np.save(tmp_path / "a.npy", data)
    for column in ("0", " -4", 0):
        ds = read_npy(tmp_path / "a.npy", column)
        assert ds.y.tolist() == [0, 1, 0, 1] and np.array_equal(ds.X, data[:, 1:])


def test_float16_labels_are_judged_in_float64(tmp_path):
    """In float16, 2**53 is inf: an inf label passed ``|y| <= 2**53`` and became the class
    -9223372036854775808 (with 'overflow encountered in cast' warnings for any float16 file)."""
    import warnings

    rows = np.array([[1, 2, 0], [3, 4, 1], [5, 6, 2]] * 10, dtype=np.float16)
    np.save(tmp_path / "ok.npy", rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_npy(tmp_path / "ok.npy").y.tolist() == [0, 1, 2] * 10
    rows[0, 2] = np.inf
    np.save(tmp_path / "inf.npy", rows)
    with pytest.raises(DataError, match=r"column 2 holds inf, which is not a class label"):
        read_npy(tmp_path / "inf.npy")
