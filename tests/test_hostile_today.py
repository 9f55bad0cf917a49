"""Structured hostile inputs against what changed on one day (83b6bf6..): ``.npy`` read in
memory, ``.npz`` streamed, the label-column guess, saved Pipelines, ``input_max_abs`` and
pictures (JPEG draft decoding, Pillow's bound). Each test states the attack and asserts the one
clear error, or the right answer, against an independent expectation.
"""

from __future__ import annotations

import pickle
import re
import struct

import numpy as np
import pytest

from softmaxreg.exceptions import DataError, ModelFileError
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


@pytest.mark.parametrize("column", ["cultivar", "1.5", 1.5, True, "-+1", "+-2"])
def test_npy_label_column_by_name_is_refused_in_words(tmp_path, column):
    """``--label-column cultivar`` on a .npy file gave "invalid literal for int() with base 10:
    'cultivar'" (whole and --stream); ``label_column=1.5`` silently took column 1."""
    np.save(tmp_path / "a.npy", np.c_[np.arange(12.0).reshape(4, 3), [0, 1, 0, 1]])
    for read in (read_npy, lambda path, column: NpySource(path, label_column=column)):
        with pytest.raises(DataError, match=rf"label column {re.escape(repr(column))} is not a "
                                            r"column index: "
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


def _deflated_npz(path, X_shape, y, order="C"):
    """An archive of ``y`` and an ``X`` of zeros of ``X_shape`` (float64, ``order``), deflated:
    64 MiB of zeros take 65 KB."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        buf = io.BytesIO()
        np.save(buf, y)
        zf.writestr("y.npy", buf.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f8", "fortran_order": order == "F", "shape": X_shape})
        with zf.open("X.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = bytes(2**20)
            for _ in range(int(np.prod(X_shape)) * 8 // 2**20):
                member.write(zeros)


def test_npz_bomb_is_refused_from_its_headers(tmp_path, monkeypatch):
    """A 4 MB .npz whose X inflates to 4 GiB, with 30 labels, was read whole (32 s, 4.9 GB
    peak) before 'X has 134217728 rows but y has 30 labels'. The rows are now compared in the
    headers, and an archive whose arrays agree but exceed the memory available is refused
    before reading (as io.idx does), whole or, for a member in Fortran order, streamed."""
    import tracemalloc

    from softmaxreg.io import read_npz
    from softmaxreg.streaming import NpzSource

    _deflated_npz(tmp_path / "rows.npz", (2**21, 4), np.arange(30))  # 64 MiB of X
    tracemalloc.start()
    with pytest.raises(DataError, match=r"rows\.npz: X has 2097152 rows but y has 30 labels"):
        read_npz(tmp_path / "rows.npz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20  # measured 0.1 MB; reading X whole is 64 MiB
    monkeypatch.setattr("softmaxreg.io.dataset.available_memory", lambda: 32 * 2**20)
    _deflated_npz(tmp_path / "big.npz", (2**21, 4), np.zeros(2**21, np.uint8))
    with pytest.raises(DataError, match=r"big\.npz: reading it whole needs 66 MiB, more than "
                                        r"the 32 MiB of memory available \(stream it instead"):
        read_npz(tmp_path / "big.npz")
    _deflated_npz(tmp_path / "fortran.npz", (2**21, 4), np.zeros(2**21, np.uint8), order="F")
    with pytest.raises(DataError, match=r"its member 'X\.npy' in Fortran order, read whole, "
                                        "needs 64 MiB"):
        next(NpzSource(tmp_path / "fortran.npz").raw_chunks(1000))


def test_npz_test_part_is_checked_before_streaming(tmp_path):
    """An X_test narrower than X was found by the stream after training ('X has 2 features,
    but the scaling was fitted with 4'); in memory it was refused before. Both now say so when
    the archive is opened."""
    from softmaxreg.io import read_npz
    from softmaxreg.streaming import open_source

    X, y = np.ones((30, 4)), np.arange(30) % 3
    np.savez(tmp_path / "a.npz", X=X, y=y, X_test=X[:5, :2], y_test=y[:5])
    for read in (read_npz, open_source):
        with pytest.raises(DataError, match=r"a\.npz: X_test has 2 features, but X has 4"):
            read(tmp_path / "a.npz")


def test_empty_arrays_are_refused_when_read(tmp_path):
    """An .npz or .npy of no rows, or X of no features, was read, and train failed in numpy
    ('zero-size array to reduction operation minimum which has no identity', or for an empty
    X_test scikit-learn's 'Found array with 0 sample(s)' after fitting)."""
    from softmaxreg.io import load_dataset
    from softmaxreg.streaming import open_source

    X, y = np.ones((30, 4)), np.arange(30) % 3
    cases = {"rows.npz": (dict(X=X[:0], y=y[:0]), r"X has shape \(0, 4\): no rows"),
             "features.npz": (dict(X=X[:, :0], y=y), r"X has shape \(30, 0\): no features"),
             "test.npz": (dict(X=X, y=y, X_test=X[:0], y_test=y[:0]),
                          r"X_test has shape \(0, 4\): no rows")}
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        for read in (load_dataset, open_source):
            with pytest.raises(DataError, match=message):
                read(tmp_path / name)
    np.save(tmp_path / "rows.npy", np.c_[X, y][:0])
    for read in (load_dataset, open_source):
        with pytest.raises(DataError, match=r"rows\.npy has no data rows"):
            read(tmp_path / "rows.npy")


@pytest.mark.parametrize("second", ["X.npy", "X"])
def test_npz_with_two_members_for_one_array_is_refused(tmp_path, second):
    """An archive with X.npy twice, or X and X.npy, was read (the last member won); np.load
    reads 'X' before 'X.npy', so the two readers could see different data."""
    import io
    import warnings
    import zipfile

    from softmaxreg.io import read_npz
    from softmaxreg.persistence import load
    from softmaxreg.streaming import open_source

    np.savez(tmp_path / "a.npz", X=np.ones((30, 4)), y=np.arange(30) % 3)
    buf = io.BytesIO()
    np.save(buf, np.zeros((30, 4)))
    with warnings.catch_warnings(), zipfile.ZipFile(tmp_path / "a.npz", "a") as zf:
        warnings.simplefilter("ignore")  # zipfile: 'Duplicate name'
        zf.writestr(second, buf.getvalue())
    for read in (read_npz, open_source, load):  # load: a ModelFileError
        with pytest.raises((DataError, ModelFileError),
                           match=r"a\.npz: holds more than one member for the array 'X'"):
            read(tmp_path / "a.npz")


@pytest.mark.parametrize("top", [1e308, 1.7976931348623157e308, 5e-324, 1.0, 0.5])
def test_picture_in_any_recorded_range_is_finite(tmp_path, top):
    """``input_max_abs`` 1e308 (a model trained on such features) rendered a picture as inf:
    levels·1e308 overflowed before the division. The picture is finite, its full ink is
    ``top``, and it is the 0..16 picture rescaled: blank where that one is, pixels in the
    same order."""
    from PIL import Image, ImageDraw

    from softmaxreg.images import digit_format, image_to_digit

    picture = Image.new("L", (75, 100), 235)
    ImageDraw.Draw(picture).line([(25, 25), (25, 55), (52, 55), (52, 25), (52, 80)], fill=20,
                                 width=6)
    picture.save(tmp_path / "four.png")
    shape, max_value = digit_format(64, None, top)
    assert max_value == top
    row = image_to_digit(tmp_path / "four.png", shape, max_value)
    levels = image_to_digit(tmp_path / "four.png", shape, 16)
    assert np.isfinite(row).all() and (row >= 0).all()
    assert levels.max() == 16 and row.max() == pytest.approx(top, rel=1e-12)
    ink = levels > 0
    assert ink.any() and not ink.all() and (row[~ink] == 0).all()
    lighter = levels[:, None] < levels[None, :]  # pairs of pixels by their 0..16 levels
    assert (row[:, None] <= row[None, :])[lighter].all()
    if top / 16 >= np.finfo(float).tiny:  # else one level's step underflows (5e-324 / 16 = 0)
        assert (row[ink] > 0).all() and (row[:, None] < row[None, :])[lighter].all()


def _jpeg(tmp_path, name, size, *, progressive=False, one_component_scan=False):
    """A small RGB JPEG whose frame header (SOF) declares ``size``; optionally progressive, or
    with its first scan (SOS) holding one component of three (a scan per component)."""
    from PIL import Image

    path = tmp_path / name
    Image.new("RGB", (64, 48), (200, 200, 200)).save(path, progressive=progressive)
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc2" if progressive else b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", size[1], size[0])  # height, then width
    if one_component_scan:
        sos = data.index(b"\xff\xda")
        first = data[sos + 5: sos + 7]  # the first component and its tables
        rest = data[sos + 11: sos + 14]  # spectral selection, approximation
        data[sos: sos + 14] = b"\xff\xda" + struct.pack(">HB", 8, 1) + first + rest
    path.write_bytes(bytes(data))
    return path


def test_jpeg_decoded_in_many_passes_is_held_to_its_declared_size(tmp_path):
    """A JPEG is allowed to declare up to 64× the pixel limit because it is decoded at 1/8
    (draft); but libjpeg decodes a progressive JPEG, or one with a scan per component, by
    keeping every DCT coefficient of the whole picture (2 bytes a pixel per component) at any
    scale: a 1.5 MB progressive JPEG of 20000×20000 took 980 MB, and one declaring 6.4
    gigapixels would take 13-38 GB. Those are held to the limit from their header; a one-pass
    (baseline) JPEG of the same size still passes the check (its 2500×2500 draft is decoded)."""
    from softmaxreg.images import image_to_digit

    limit = r"is 20000×20000 pixels, more than the 100 million pixels a picture may have"
    for name, kind in (("progressive.jpg", {"progressive": True}),
                       ("scans.jpg", {"one_component_scan": True})):
        with pytest.raises(DataError, match=limit):
            image_to_digit(_jpeg(tmp_path, name, (20000, 20000), **kind))
    with pytest.raises(DataError, match="holds no digit"):  # decoded: a grey page
        image_to_digit(_jpeg(tmp_path, "baseline.jpg", (20000, 20000)))


def _four(path, size=(75, 100)):
    """A picture of a 4 in dark ink on light paper (any Pillow format, by ``path``'s suffix)."""
    from PIL import Image, ImageDraw

    w, h = size
    picture = Image.new("L", size, 235)
    ImageDraw.Draw(picture).line([(w // 3, h // 4), (w // 3, h * 11 // 20),
                                  (w * 7 // 10, h * 11 // 20), (w * 7 // 10, h // 4),
                                  (w * 7 // 10, h * 4 // 5)], fill=20, width=max(2, w // 12))
    picture.save(path)
    return path


def test_pillow_bound_set_by_the_user_while_a_picture_opens_is_kept(tmp_path, monkeypatch):
    """Pillow's bound is raised while a header is read and put back after: a bound the user
    set meanwhile (from another thread) was overwritten by the one saved before. Now theirs
    stands; and None (no bound) comes back as None."""
    from PIL import Image

    from softmaxreg.images import image_to_digit

    path = _four(tmp_path / "four.png")
    expected = image_to_digit(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89478485)
    pillow_open = Image.open

    def user_sets_a_bound_meanwhile(*args, **kwargs):
        Image.MAX_IMAGE_PIXELS = 10**7
        return pillow_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", user_sets_a_bound_meanwhile)
    np.testing.assert_array_equal(image_to_digit(path), expected)
    assert Image.MAX_IMAGE_PIXELS == 10**7
    monkeypatch.setattr(Image, "open", pillow_open)
    Image.MAX_IMAGE_PIXELS = None
    np.testing.assert_array_equal(image_to_digit(path), expected)
    assert Image.MAX_IMAGE_PIXELS is None


def test_refusal_by_the_users_pillow_bound_is_not_called_ours(tmp_path, monkeypatch):
    """With Pillow's bound set to 1000 pixels by the user, a 75×100 TIFF (refused while
    decoding, under the user's bound) was 'more than the 100 million pixels a picture may
    have'."""
    from PIL import Image

    from softmaxreg.images import image_to_digit

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match=r"four\.tif: Pillow's bound PIL\.Image\.MAX_IMAGE_PIXELS "
                                        r"refuses it \(Image size \(7500 pixels\) exceeds limit "
                                        "of 2000 pixels") as caught:
        image_to_digit(_four(tmp_path / "four.tif"))
    assert "million" not in str(caught.value)


def test_pictures_read_in_overlapping_threads_leave_the_warning_filters_alone(tmp_path,
                                                                             monkeypatch):
    """Each reader silenced Pillow's DecompressionBombWarning with ``catch_warnings``, which
    puts back the whole filter list it found: reader 1 in, reader 2 in, reader 1 out, reader 2
    out left the 'ignore' filter in place for good, silencing Pillow's warning for the whole
    process. The filters are now the user's again once both are out."""
    import threading
    import warnings

    from PIL import Image

    import softmaxreg.images as images

    path = _four(tmp_path / "four.png")
    decode = images._decode
    arrived = {k: threading.Event() for k in (1, 2)}
    leave = {k: threading.Event() for k in (1, 2)}
    errors = []

    def reader(k):
        try:
            images.image_to_digit(path)
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    def held_decode(file, source):
        k = 1 if not arrived[1].is_set() else 2
        arrived[k].set()
        assert leave[k].wait(30)
        return decode(file, source)

    monkeypatch.setattr(images, "_decode", held_decode)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89478485)  # Pillow's default
    with warnings.catch_warnings():  # this test's own copy of the filters, restored after it
        before = list(warnings.filters)
        first, second = (threading.Thread(target=reader, args=(k,)) for k in (1, 2))
        first.start()
        assert arrived[1].wait(30)
        second.start()
        assert arrived[2].wait(30)
        leave[1].set()
        first.join(30)
        leave[2].set()
        second.join(30)
        assert not errors and warnings.filters == before
        with pytest.warns(Image.DecompressionBombWarning):  # not silenced for good
            Image._decompression_bomb_check((10**4, 10**4))  # 10⁸ of 89478485: Pillow warns


def test_csv_of_true_false_columns_keeps_its_header(tmp_path):
    """pandas writes bool columns as True/False. A header is found by a name above a column of
    numbers, so a CSV of bool columns alone had its header taken as data: "line 1, column 1:
    'a' is not a finite number ... encode this column of categories"; with a bool and two word
    columns the same complaint fell on the header 'flag' instead of the column of words."""
    import pandas as pd

    from softmaxreg.io import read_csv
    from softmaxreg.streaming import open_source, read_labels

    n = np.arange(40)
    frame = pd.DataFrame({"a": n % 2 == 0, "b": n % 3 == 0, "c": n % 5 == 0})
    frame.to_csv(tmp_path / "flags.csv", index=False)
    ds = read_csv(tmp_path / "flags.csv")
    assert ds.feature_names == ["a", "b"] and ds.label_column == "c"
    np.testing.assert_array_equal(ds.X, frame[["a", "b"]].to_numpy(dtype=float))
    assert ds.y.tolist() == frame["c"].astype(str).tolist()
    labels = read_labels(open_source(tmp_path / "flags.csv"))
    assert labels.y.tolist() == ds.y.tolist()
    frame = pd.DataFrame({"flag": n % 2 == 0, "color": np.where(n % 2, "red", "blue"),
                          "kind": np.where(n % 3, "x", "y")})
    frame.to_csv(tmp_path / "words.csv", index=False)
    with pytest.raises(DataError, match=r"line 2, column 2 \('color'\): 'blue' is not a finite "
                                        r"number.*the column 'kind', chosen by default as the "
                                        "last column.*--label-column"):
        read_csv(tmp_path / "words.csv")


def test_csv_with_two_label_columns_in_different_case_is_refused(tmp_path):
    """'label' is looked for in any case: with 'Label' and 'LABEL' the first was taken as the
    labels and the other became a feature, silently. Named, either is taken."""
    from softmaxreg.io import read_csv
    from softmaxreg.streaming import open_source, read_labels

    n = np.arange(30)
    rows = "".join(f"{i},{i % 3},{i % 2}\n" for i in n)
    (tmp_path / "two.csv").write_text("x,Label,LABEL\n" + rows)
    for read in (read_csv, lambda path: read_labels(open_source(path))):
        with pytest.raises(DataError, match=r"two\.csv: column 2 \('Label'\) and column 3 "
                                            r"\('LABEL'\) are both named 'label' \(in any "
                                            r"case\): name the label column with --label-column"):
            read(tmp_path / "two.csv")
    ds = read_csv(tmp_path / "two.csv", "LABEL")
    assert ds.feature_names == ["x", "Label"] and ds.y.tolist() == (n % 2).tolist()


def test_streamed_test_part_names_its_own_labels(tmp_path):
    """An .npz whose y_test holds NaN: the stream's test part said 'y has dtype float64 or
    non-finite values', naming the training labels, which are fine."""
    from softmaxreg.streaming import open_source, read_labels

    X, y = np.ones((30, 4)), np.arange(30.0) % 3
    np.savez(tmp_path / "a.npz", X=X, y=y, X_test=X[:5], y_test=np.r_[np.nan, y[:4]])
    with pytest.raises(DataError, match=r"a\.npz: y_test has dtype float64 or non-finite"):
        read_labels(open_source(tmp_path / "a.npz").test_part())


@pytest.mark.parametrize("named", [False, True])
def test_pipeline_whose_scaler_and_model_disagree_is_not_saved(tmp_path, named):
    """A Pipeline whose scaler was fitted on 3 columns and its model on 4 (it cannot predict)
    was saved, into a file that load refuses ('the preprocessing scales 3 features, the model
    has 4'); with named columns save said the schema was wrong. Now save refuses it, writing
    nothing."""
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from softmaxreg import SoftmaxRegression, save

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 4)), np.arange(40) % 2
    three = pd.DataFrame(X[:, :3], columns=list("abc")) if named else X[:, :3]
    pipe = Pipeline([("s", StandardScaler().fit(three)), ("m", SoftmaxRegression().fit(X, y))])
    with pytest.raises(ValueError, match="^the scaling takes 3 features, but the model was "
                                         "fitted with 4$"):
        save(pipe, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_a_npy_file_beyond_the_memory_available_is_refused_before_reading(tmp_path,
                                                                          monkeypatch):
    """As an .npz or IDX file is: one line saying so and pointing at streaming, not a raw
    MemoryError (here 8 MB of rows against 4 MB said to be available)."""
    np.save(tmp_path / "big.npy", np.zeros((10_000, 101)))
    monkeypatch.setattr("softmaxreg.io.dataset.available_memory", lambda: 4 * 2**20)
    with pytest.raises(DataError, match=r"big\.npy: reading its rows needs 8 MiB, more than "
                                        r"the 4 MiB .* \(stream it instead"):
        read_npy(tmp_path / "big.npy")
    monkeypatch.setattr("softmaxreg.io.dataset.available_memory", lambda: 16 * 2**20)
    assert read_npy(tmp_path / "big.npy").X.shape == (10_000, 100)
