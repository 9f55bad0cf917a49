"""Out-of-core training: chunked readers agree with the whole-file readers, the streamed labels,
test split, scaling and fit with the in-memory ones, and peak memory does not grow with the
number of rows."""

from __future__ import annotations

import gzip
import io
import json
import struct
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_digits, load_wine
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from softmaxreg import SoftmaxRegression
from softmaxreg.cli import main
from softmaxreg.exceptions import DataError
from softmaxreg.io import DATA_SUFFIXES, load_dataset, read_csv, read_idx_folder, read_svmlight
from softmaxreg.persistence import load_bundle
from softmaxreg.preprocessing import Scaling
from softmaxreg.streaming import (
    CsvSource,
    IdxSource,
    NpySource,
    NpzSource,
    SvmlightSource,
    fit_stream,
    open_source,
    read_labels,
    scan,
    stream_metrics,
)
from softmaxreg.workflow import TrainSettings, train, train_stream


def _problem(n=1000, d=6, K=3, seed=0):
    rng = np.random.default_rng(seed)
    scale, offset = rng.uniform(0.5, 3.0, d), rng.normal(size=d) * 5
    Z = rng.normal(size=(n, d))
    X = Z * scale + offset
    y = (Z @ rng.normal(size=(d, K)) + rng.gumbel(size=(n, K))).argmax(axis=1)
    return X, y


def _write_csv(path, X, y, header=True):
    names = ",".join([*(f"f{j}" for j in range(X.shape[1])), "label"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.17g",
               header=names if header else "", comments="")


def _write_idx(folder, images, labels, prefix="train"):
    folder.mkdir(exist_ok=True)
    for name, array, code in ((f"{prefix}-images-idx3-ubyte.gz", images, 3),
                              (f"{prefix}-labels-idx1-ubyte.gz", labels, 1)):
        header = bytes([0, 0, 0x08, code]) + struct.pack(f">{code}I", *array.shape)
        with gzip.open(folder / name, "wb") as f:
            f.write(header + array.astype(np.uint8).tobytes())


def _concat(source, chunk_rows):
    chunks = list(source.chunks(chunk_rows))
    Xs = [X for X, _ in chunks]
    X = sp.vstack(Xs).tocsr() if sp.issparse(Xs[0]) else np.concatenate(Xs)
    return X, np.concatenate([y for _, y in chunks]), len(chunks)


# -- the readers ----------------------------------------------------------------------------------
def test_csv_chunks_are_the_file(tmp_path):
    X, y = _problem(n=1003)
    _write_csv(tmp_path / "a.csv", X, y)
    whole = read_csv(tmp_path / "a.csv")
    Xc, yc, n_chunks = _concat(CsvSource(tmp_path / "a.csv", "label"), 100)
    assert n_chunks == 11
    np.testing.assert_array_equal(Xc, whole.X)
    np.testing.assert_array_equal(yc, whole.y)


def test_svmlight_chunks_are_the_file_with_one_width_and_one_index_base(tmp_path):
    """The last column appears only in the last rows: every chunk must still be d wide."""
    X = sp.random(500, 30, density=0.1, format="csr", random_state=1)
    X = sp.hstack([X, sp.csr_matrix((np.ones(1), ([499], [0])), shape=(500, 1))]).tocsr()
    y = np.arange(500) % 3
    for zero_based in (True, False):
        path = tmp_path / f"a{zero_based}.svmlight"
        dump_svmlight_file(X, y, str(path), zero_based=zero_based)
        Xc, yc, _ = _concat(SvmlightSource(path), 64)
        whole = read_svmlight(path)
        assert Xc.shape == whole.X.shape == (500, 31)
        assert (Xc != whole.X).nnz == 0
        np.testing.assert_array_equal(yc, whole.y)


def test_npy_chunks_with_a_label_column_or_a_labels_file(tmp_path):
    X, y = _problem(n=250)
    np.save(tmp_path / "xy.npy", np.column_stack([y, X]))
    Xc, yc, _ = _concat(NpySource(tmp_path / "xy.npy", label_column=0), 64)
    np.testing.assert_array_equal(Xc, X)
    np.testing.assert_array_equal(yc, y)
    assert yc.dtype == np.int64
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    Xc, yc, _ = _concat(NpySource(tmp_path / "x.npy", labels=tmp_path / "y.npy"), 64)
    np.testing.assert_array_equal(Xc, X.astype(np.float32))
    np.save(tmp_path / "short.npy", y[:-1])
    with pytest.raises(DataError, match="one label per row"):
        list(NpySource(tmp_path / "x.npy", labels=tmp_path / "short.npy").chunks())


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_chunks_are_the_archive_stored_or_deflated(tmp_path, save):
    """Rows come from the archive chunk by chunk, deflated or not: images flattened, uint8
    features are pixels, X_test/y_test are the test part, feature names the schema's."""
    rng = np.random.default_rng(5)
    images, y = rng.integers(0, 256, (130, 3, 4), dtype=np.uint8), rng.integers(0, 3, 130)
    save(tmp_path / "a.npz", X=images, y=y, X_test=images[:7], y_test=y[:7],
         feature_names=np.array([f"p{j}" for j in range(12)]))
    source = open_source(tmp_path / "a.npz")
    assert isinstance(source, NpzSource) and source.pixels
    Xc, yc, n_chunks = _concat(source, 50)
    np.testing.assert_array_equal(Xc, images.reshape(130, 12))
    np.testing.assert_array_equal(yc, y)
    assert n_chunks == 3
    Xt, yt, _ = _concat(source.test_part(), 50)
    np.testing.assert_array_equal(Xt, images[:7].reshape(7, 12))
    np.testing.assert_array_equal(yt, y[:7])
    assert source.schema(12).feature_names == tuple(f"p{j}" for j in range(12))
    assert source.test_part().test_part() is None


def test_npz_in_fortran_order_and_damaged_members(tmp_path):
    X, y = _problem(n=90)
    np.savez(tmp_path / "f.npz", X=np.asfortranarray(X), y=y)  # read whole: no rows to read
    np.testing.assert_array_equal(_concat(NpzSource(tmp_path / "f.npz"), 40)[0], X)
    np.savez(tmp_path / "short.npz", X=X, y=y[:-1])
    with pytest.raises(DataError, match="one label per row of X"):
        NpzSource(tmp_path / "short.npz")
    np.savez(tmp_path / "nan.npz", X=np.where(X > 2, np.nan, X), y=y)
    with pytest.raises(DataError, match="X contains NaN or infinity"):
        list(NpzSource(tmp_path / "nan.npz").raw_chunks(40))
    np.savez(tmp_path / "none.npz", features=X, y=y)
    with pytest.raises(DataError, match=r"has no array X; it holds \['features', 'y'\]"):
        open_source(tmp_path / "none.npz")


def test_every_file_type_is_read_whole_and_streamed_alike(tmp_path):
    """The one table of suffixes: each file type load_dataset reads, open_source streams, to the
    same rows and labels, both equal to the arrays written."""
    X, y = _problem(n=120, d=4, seed=9)
    writers = {
        ".csv": lambda p: _write_csv(p, X, y),
        ".tsv": lambda p: np.savetxt(p, np.column_stack([X, y]), delimiter="\t", fmt="%.17g"),
        ".npz": lambda p: np.savez_compressed(p, X=X, y=y),
        ".npy": lambda p: np.save(p, np.column_stack([X, y])),
        **{s: (lambda p: dump_svmlight_file(X, y, str(p)))
           for s in (".svm", ".svmlight", ".libsvm", ".txt")},
    }
    assert set(writers) == set(DATA_SUFFIXES)
    for suffix, write in writers.items():
        path = tmp_path / f"a{suffix}"
        write(path)
        whole = load_dataset(path)
        Xs, ys, _ = _concat(open_source(path), 50)
        for got_X, got_y in ((whole.X, whole.y), (Xs, ys)):
            got_X = got_X.toarray() if sp.issparse(got_X) else got_X
            np.testing.assert_allclose(got_X, X, rtol=1e-15, err_msg=suffix)
            np.testing.assert_array_equal(got_y, y, err_msg=suffix)
            assert got_y.dtype == np.int64, suffix


def test_a_model_streamed_from_npy_is_evaluated_and_predicted_on_its_files(tmp_path, capsys):
    """.npy with the labels in the last column: trained with --stream, the model scores the
    same held-out rows in memory, and predicts from the features alone."""
    X, y = _problem(n=400, seed=10)
    np.save(tmp_path / "xy.npy", np.column_stack([X, y]))
    np.save(tmp_path / "x.npy", X)
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", str(tmp_path / "xy.npy"), "--stream", "--quiet",
                 "--epochs", "5", "--out", str(model)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", str(model), "--dataset", str(tmp_path / "xy.npy"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["n"] == 100  # the held-out quarter, as the streamed run held it out
    assert main(["predict", str(model), str(tmp_path / "x.npy"), "--json"]) == 0
    estimator, scaling, _ = load_bundle(model)
    predicted = json.loads(capsys.readouterr().out)["predicted"]
    assert predicted == estimator.predict(scaling.transform(X)).tolist()


def test_idx_chunks_are_the_folder(tmp_path):
    rng = np.random.default_rng(2)
    images, labels = rng.integers(0, 256, (130, 4, 5)), rng.integers(0, 10, 130)
    _write_idx(tmp_path / "idx", images, labels)
    source = open_source(tmp_path / "idx")
    assert isinstance(source, IdxSource) and source.pixels
    Xc, yc, n_chunks = _concat(source, 50)
    whole = read_idx_folder(tmp_path / "idx")
    assert n_chunks == 3
    np.testing.assert_array_equal(Xc, whole.X)
    np.testing.assert_array_equal(yc, whole.y)


def test_truncated_idx_file_is_a_data_error(tmp_path):
    folder = tmp_path / "idx"
    _write_idx(folder, np.zeros((10, 2, 2)), np.zeros(10))
    data = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(data[:-3]))
    with pytest.raises(DataError, match="truncated"):
        scan(IdxSource(folder), 4)


def test_uncompressed_idx_file_with_trailing_data_is_a_data_error(tmp_path):
    """Streamed chunks never reach the end of the file: the trailing bytes are found from the
    header and the file's size before the first chunk, as read_idx finds them at the end."""
    folder = tmp_path / "idx"
    _write_idx(folder, np.zeros((10, 2, 2)), np.zeros(10))
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        data = gzip.decompress((folder / f"{name}.gz").read_bytes())
        (folder / f"{name}.gz").unlink()
        (folder / name).write_bytes(data + (b"\0\0\0" if "images" in name else b""))
    with pytest.raises(DataError, match="3 bytes of trailing data"):
        scan(IdxSource(folder), 4)


def test_a_damaged_gzip_is_named_while_the_other_file_is_open(tmp_path):
    folder = tmp_path / "idx"
    rng = np.random.default_rng(3)
    _write_idx(folder, rng.integers(0, 256, (300, 4, 4)), rng.integers(0, 10, 300))
    data = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="images-idx3-ubyte.gz is a corrupt or truncated gzip"):
        scan(IdxSource(folder), 100)


def test_unknown_file_type_is_refused(tmp_path):
    (tmp_path / "a.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match="cannot stream"):
        open_source(tmp_path / "a.parquet")


# -- pass 1: scaling and classes ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["csv", "npy", "svmlight"])
def test_streamed_scaling_equals_the_in_memory_scaling(tmp_path, kind):
    X, y = _problem(n=2001, seed=3)
    X[:, 2] = 7.0  # a constant feature gets scale 1
    if kind == "csv":
        _write_csv(tmp_path / "a.csv", X, y)
    elif kind == "npy":
        np.save(tmp_path / "a.npy", np.column_stack([X, y]))
    else:
        X = sp.random(2001, 20, density=0.2, format="csr", random_state=4)
        dump_svmlight_file(X, y, str(tmp_path / "a.svmlight"))
    stats = scan(open_source(tmp_path / f"a.{kind}"), chunk_rows=300)
    assert (stats.n, stats.n_chunks) == (2001, 7)
    np.testing.assert_array_equal(stats.classes, np.unique(y))
    got, ref = stats.scaling("standard"), Scaling("standard").fit(X)
    np.testing.assert_allclose(got.mean, ref.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.scale, ref.scale, rtol=1e-12)


def _extreme_features(magnitude: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, c): features of order c per column; in "mixed", the last column is of order 1e-300
    in the first half of the rows and 1e200 in the second (so chunks disagree on its unit)."""
    X, y = _problem(n=n, d=4, seed=9)
    c = {"1e200": np.full(4, 1e200), "1e-300": np.full(4, 1e-300),
         "mixed": np.array([1e200, 1e-300, 1e300, 1e200])}[magnitude]
    scaled = X * c
    if magnitude == "mixed":
        scaled[: n // 2, 3] = X[: n // 2, 3] * 1e-300
    return scaled, y, c


@pytest.mark.parametrize("kind", ["npy", "svmlight"])
@pytest.mark.parametrize("magnitude", ["1e200", "1e-300", "mixed"])
def test_streamed_scaling_of_extreme_features_equals_the_in_memory_scaling(tmp_path, magnitude,
                                                                           kind):
    """Sums and squares of 1e200 overflow and those of 1e-300 underflow: the statistics are taken
    in power-of-two units, chunk by chunk as in memory."""
    X, y, c = _extreme_features(magnitude, 2001)
    if kind == "npy":
        np.save(tmp_path / "a.npy", np.column_stack([X, y]))
    else:
        dump_svmlight_file(sp.csr_matrix(X), y, str(tmp_path / "a.svmlight"))
        X = read_svmlight(tmp_path / "a.svmlight").X  # the values as the text holds them
    stats = scan(open_source(tmp_path / f"a.{kind}"), chunk_rows=300)
    got, ref = stats.scaling("standard"), Scaling("standard").fit(X)
    assert np.isfinite(got.mean).all() and np.isfinite(got.scale).all()
    np.testing.assert_allclose(got.mean / c, ref.mean / c, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got.scale / c, ref.scale / c, rtol=1e-12)
    # an independent reference: numpy's float64 mean and std of the features divided by c
    dense = X.toarray() if sp.issparse(X) else X
    sparse = 2 * np.count_nonzero(dense) < dense.size  # sparse data are only scaled
    mean = 0.0 if sparse else (dense / c).mean(axis=0)
    np.testing.assert_allclose(got.mean / c, mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.scale / c, (dense / c).std(axis=0), rtol=1e-10)
    Z, Z32 = got.transform(X, dtype=np.float64), got.transform(X)
    Z, Z32 = (Z.toarray(), Z32.toarray()) if sp.issparse(Z) else (Z, Z32)
    assert np.isfinite(Z).all() and np.isfinite(Z32).all()
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-9)
    if not sparse:
        np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-9)


def test_pixels_get_unit_scaling(tmp_path):
    _write_idx(tmp_path / "idx", np.full((20, 2, 2), 255), np.arange(20) % 2)
    source = IdxSource(tmp_path / "idx")
    scaling = scan(source, 8).scaling("auto", pixels=source.pixels)
    assert scaling.resolved == "unit"


# -- pass 2: training -----------------------------------------------------------------------------
def test_streaming_is_partial_fit_on_each_scaled_chunk(tmp_path):
    """fit_stream is exactly: scan, then partial_fit on every scaled chunk, epoch after epoch,
    each chunk of m rows with C n / m, so that its penalty is the whole file's."""
    X, y = _problem(n=900, seed=5)
    np.save(tmp_path / "a.npy", np.column_stack([X, y]))
    kw = dict(solver="adam", random_state=0, learning_rate="constant", batch_size=64,
              learning_rate_init=0.05)
    streamed, scaling = fit_stream(SoftmaxRegression(**kw), NpySource(tmp_path / "a.npy"),
                                   epochs=2, chunk_rows=400)
    assert streamed.C == 1.0  # restored
    ref, Xs = SoftmaxRegression(**kw), Scaling("standard").fit_transform(X)
    for _ in range(2):
        for a in range(0, 900, 400):
            m = min(400, 900 - a)
            ref.set_params(C=900 / m).partial_fit(Xs[a: a + m], y[a: a + m], classes=np.unique(y))
    np.testing.assert_allclose(streamed.coef_, ref.coef_, rtol=1e-6, atol=1e-7)
    assert streamed.score(Xs, y) > SoftmaxRegression().fit(Xs, y).score(Xs, y) - 0.03


def test_a_file_of_one_chunk_trains_as_partial_fit_epoch_after_epoch(tmp_path):
    """One chunk is read once and its epochs run in one call of fit: the same model as that
    many calls of partial_fit, and the estimator's settings are left as they were."""
    X, y = _problem(n=300, seed=13)
    np.save(tmp_path / "a.npy", np.column_stack([X, y]))
    kw = dict(solver="adam", random_state=0, batch_size=64, learning_rate_init=0.05,
              max_iter=7)
    streamed, _ = fit_stream(SoftmaxRegression(**kw), NpySource(tmp_path / "a.npy"), epochs=7,
                             chunk_rows=1000)
    assert (streamed.max_iter, streamed.n_iter_no_change, streamed.n_iter_[0]) == (7, 10, 7)
    ref, Xs = SoftmaxRegression(**kw), Scaling("standard").fit_transform(X)
    for _ in range(7):
        ref.partial_fit(Xs, y, classes=np.unique(y))
    np.testing.assert_allclose(streamed.coef_, ref.coef_, rtol=1e-5, atol=1e-6)


def test_small_chunks_minimise_the_whole_files_objective(tmp_path):
    """partial_fit penalises a chunk as a data set of its own (½‖W‖²/(C m)): chunks of 50 of
    600 rows would make the penalty 12 times too strong, and the file's objective J ends twice
    its minimum (0.150 against 0.073). fit_stream gives each chunk the file's penalty."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    np.save(tmp_path / "d.npy", np.column_stack([X, y]))
    Xs = Scaling("standard").fit_transform(X)

    def objective(model):  # LogisticRegression's C Σ CE + ½‖W‖², divided by C n; C = 1
        W = model.coef_.astype(np.float64)
        return log_loss(y, model.predict_proba(Xs)) + (W**2).sum() / (2 * len(y))

    best = objective(SoftmaxRegression().fit(Xs, y))
    model, _ = fit_stream(
        SoftmaxRegression(solver="adam", learning_rate_init=0.03, max_iter=60 * 12,
                          random_state=0), NpySource(tmp_path / "d.npy"), epochs=60,
        chunk_rows=50)
    assert objective(model) == pytest.approx(best, rel=0.05)


# -- labels typed once, the in-memory split -------------------------------------------------------
def _write_labels_csv(path, labels, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(len(labels), 3)) + (np.asarray(labels) == labels[0])[:, None]
    with open(path, "w") as f:
        f.write("a,b,c,label\n")
        for x, label in zip(X, labels):
            f.write(",".join(f"{v:.6f}" for v in x) + f",{label}\n")


@pytest.mark.parametrize("labels, expected", [
    (["007"] * 120 + ["12A", "007"] * 40, ["007", "12A"]),  # the first chunk looks numeric
    (["7"] * 100 + ["007", "3.0"] * 50, [3, 7]),  # all integers: "007" is 7, "3.0" is 3
])
def test_labels_are_typed_once_for_the_whole_file(tmp_path, labels, expected):
    _write_labels_csv(tmp_path / "l.csv", labels)
    whole = read_csv(tmp_path / "l.csv")
    got = read_labels(CsvSource(tmp_path / "l.csv"), chunk_rows=100)
    assert got.classes.tolist() == np.unique(whole.y).tolist() == expected
    np.testing.assert_array_equal(got.y, whole.y)
    _, yc, _ = _concat(CsvSource(tmp_path / "l.csv"), 100)
    np.testing.assert_array_equal(yc, whole.y)


def test_cli_stream_types_labels_as_the_file_in_memory(tmp_path, capsys):
    _write_labels_csv(tmp_path / "l.csv", ["007"] * 120 + ["12A", "007"] * 40)
    for extra in ([], ["--stream", "--chunk-rows", "100"]):
        out = tmp_path / f"m{len(extra)}.npz"
        assert main(["train", "--dataset", str(tmp_path / "l.csv"), "--quiet", "--out", str(out),
                     *extra]) == 0, capsys.readouterr().err
        assert load_bundle(out)[0].classes_.tolist() == ["007", "12A"]


def _features_only(n=2000, d=5, seed=0):
    """Features alone, the last a whole number with ~1100 distinct values: no label column."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, -1] = rng.integers(0, 1500, n)
    return X


def _feature_warnings(caught):
    return [w for w in caught if "looks like a feature" in str(w.message)]


@pytest.mark.parametrize("kind", ["npy", "csv"])
def test_a_default_label_column_that_looks_like_a_feature_warns_once_in_the_first_pass(
        tmp_path, kind):
    """The label pass runs the in-memory reader's check once, on the whole file, naming the
    column and why it was taken; a column the user names is not second-guessed."""
    X = _features_only()
    if kind == "npy":
        np.save(tmp_path / "x.npy", X)
    else:
        np.savetxt(tmp_path / "x.csv", X, delimiter=",", header="a,b,c,d,e", comments="")
    path, column = tmp_path / f"x.{kind}", 4 if kind == "npy" else "e"
    distinct = len(np.unique(X[:, -1]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_labels(open_source(path), chunk_rows=50)
    [warning] = _feature_warnings(caught)
    assert (f"label column {column!r} (chosen by default) holds {distinct} distinct numbers in "
            "2000 rows") in str(warning.message)
    assert "taken as the last column" in str(warning.message)
    assert "--label-column" in str(warning.message)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_labels(open_source(path, label_column=column if kind == "csv" else -1), 50)
    assert _feature_warnings(caught) == []


def test_cli_stream_refuses_before_training_when_held_out_labels_cannot_be_scored(
        tmp_path, capsys, monkeypatch):
    """A features-only .npy in chunks of 50: one warning, no per-chunk warning from
    scikit-learn, and one error naming the column, before any training (it used to print 8000
    warnings, train, and fail in the metrics pass with 'never seen in training')."""
    np.save(tmp_path / "x.npy", _features_only())
    import softmaxreg.streaming as streaming

    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr(streaming, "fit_stream", no_training)
    assert main(["train", "--dataset", str(tmp_path / "x.npy"), "--stream", "--chunk-rows",
                 "50", "--quiet"]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("warning: the label column 4 (chosen by default)")
    assert "of the held-out test rows are in no training row" in lines[1]
    assert "the column at index 4, chosen by default as the last column" in lines[1]
    assert "--label-column" in lines[1]


def test_stream_of_a_csv_whose_last_column_is_a_feature_stops_before_training(
        tmp_path, monkeypatch):
    """Wine with its integer class first and the feature 'proline' last: 'proline' is taken
    (the last column) and the run stops before training, naming it and --label-column."""
    wine = load_wine(as_frame=True)
    frame = wine.data.copy()
    frame.insert(0, "cultivar", wine.target)
    frame.to_csv(tmp_path / "wine.csv", index=False)
    import softmaxreg.streaming as streaming

    monkeypatch.setattr(streaming, "fit_stream", None)  # never reached
    with pytest.raises(DataError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_stream(TrainSettings(dataset=str(tmp_path / "wine.csv"), progress=False))
    assert "of the held-out test rows are in no training row" in str(err.value)
    assert "the column 'proline', chosen by default as the last column" in str(err.value)
    assert "--label-column" in str(err.value)
    settings = TrainSettings(dataset=str(tmp_path / "wine.csv"), label_column="cultivar",
                             progress=False, epochs=2)
    monkeypatch.setattr(streaming, "fit_stream", fit_stream)
    assert train_stream(settings).report["test"]["n"] == 45


def test_fit_stream_does_not_repeat_scikit_learns_warning_for_each_chunk(tmp_path):
    """30 classes in chunks of 40 rows: each chunk has more distinct labels than half its rows,
    which scikit-learn takes for a regression target, once per call of partial_fit."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(600, 3)), np.arange(600) % 30
    np.save(tmp_path / "a.npy", np.column_stack([X, y]))
    reference = SoftmaxRegression(solver="sgd", random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reference.partial_fit(X[:40], y[:40], classes=np.unique(y))
    assert any("unique classes" in str(w.message) for w in caught)  # what a chunk provokes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_stream(SoftmaxRegression(solver="sgd", random_state=0), NpySource(tmp_path / "a.npy"),
                   epochs=2, chunk_rows=40)
    assert [str(w.message) for w in caught if "unique classes" in str(w.message)] == []


def test_unseen_labels_in_a_test_file_name_the_label_column(tmp_path):
    X, y = _problem(n=300, seed=2)
    _write_csv(tmp_path / "a.csv", X, y)
    _write_csv(tmp_path / "t.csv", X[:20], y[:20] + 7)
    settings = TrainSettings(dataset=str(tmp_path / "a.csv"), test=str(tmp_path / "t.csv"),
                             progress=False, epochs=20)
    with pytest.raises(DataError, match="never seen in training") as err:
        train_stream(settings)
    assert "the labels were taken from the column 'label'" in str(err.value)
    assert "--label-column" in str(err.value)


def test_stream_holds_out_the_in_memory_test_rows(tmp_path):
    """Without --test, the stream holds out the rows the in-memory command holds out (by row
    index, stratified, same seed), fits the scaling on the others, and the model file lets
    evaluate score the same rows."""
    X, y = _problem(n=1003, seed=11)
    _write_csv(tmp_path / "a.csv", X, y)
    settings = TrainSettings(dataset=str(tmp_path / "a.csv"), progress=False, seed=3, epochs=20)
    streamed = train_stream(settings, tmp_path / "s.npz", chunk_rows=128)
    in_memory = train(settings)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=3, stratify=y)  # the documented split, rebuilt
    assert streamed.report["test"]["n"] == in_memory.report["test"]["n"] == len(y_test)
    assert streamed.report["train"]["n"] == len(y_train)
    ref = Scaling("standard").fit(X_train)
    np.testing.assert_allclose(streamed.scaling.mean, ref.mean, rtol=1e-10)
    np.testing.assert_allclose(streamed.scaling.scale, ref.scale, rtol=1e-10)
    expected = log_loss(y_test, streamed.estimator.predict_proba(ref.transform(X_test)))
    assert streamed.report["test"]["log_loss"] == pytest.approx(expected, rel=1e-5)
    from softmaxreg.workflow import evaluate

    scored = evaluate(tmp_path / "s.npz", str(tmp_path / "a.csv"))
    assert scored["n"] == len(y_test)
    assert scored["log_loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 2 iterations
def test_idx_folder_without_a_test_part_is_held_out_as_in_memory(tmp_path):
    rng = np.random.default_rng(12)
    _write_idx(tmp_path / "idx", rng.integers(0, 256, (160, 3, 3)), np.arange(160) % 4)
    settings = TrainSettings(dataset=str(tmp_path / "idx"), progress=False, epochs=2)
    streamed = train_stream(settings, chunk_rows=50)
    assert streamed.report["test"]["n"] == train(settings).report["test"]["n"] == 40
    assert streamed.scaling.resolved == "unit"


# -- defaults that converge -----------------------------------------------------------------------
def test_stream_defaults_converge_as_the_in_memory_fit_wine(tmp_path):
    """Wine through the CLI, in memory (L-BFGS) and streamed (Adam at the stream's rate, the
    file's penalty): train log losses within 10% (before: 0.39-0.59 streamed, 0.04 in memory;
    measured 0.0412 in memory, 0.0416 streamed), and the same hold-out. In two chunks of 70 rows
    (400 steps: 200 epochs, the cap of a file read again each epoch) within 15% (0.0452)."""
    load_wine(as_frame=True).frame.to_csv(tmp_path / "wine.csv", index=False)
    reports = {}
    for name, extra in (("memory", []), ("stream", ["--stream"]), ("chunks", ["--stream",
                                                                           "--chunk-rows", "70"])):
        out = tmp_path / f"{name}.npz"
        assert main(["train", "--dataset", str(tmp_path / "wine.csv"), "--quiet", "--out",
                     str(out), *extra]) == 0
        reports[name] = load_bundle(out)[2]["metrics"]
    memory = reports["memory"]["train"]["log_loss"]
    for name, tolerance in (("stream", 0.10), ("chunks", 0.15)):
        assert reports[name]["train"]["log_loss"] == pytest.approx(memory, rel=tolerance), \
            reports
        assert reports[name]["test"]["n"] == reports["memory"]["test"]["n"] == 45
        assert reports[name]["test"]["accuracy"] >= reports["memory"]["test"]["accuracy"] - 0.03


def test_stream_of_sparse_features_converges_as_in_memory(tmp_path):
    """Sparse rows (the digits' strongest ink, 29% non-zero) are scaled by their largest |x|
    (kept sparse) in memory and streamed alike, and both fits converge."""
    X, y = load_digits(return_X_y=True)
    X = np.where(X > 8, X, 0)
    dump_svmlight_file(X, y, str(tmp_path / "d.svmlight"))
    memory = train(TrainSettings(dataset=str(tmp_path / "d.svmlight"), progress=False))
    streamed = train_stream(TrainSettings(dataset=str(tmp_path / "d.svmlight"), progress=False),
                            chunk_rows=700)
    assert memory.scaling.resolved == streamed.scaling.resolved == "maxabs"
    np.testing.assert_allclose(streamed.scaling.scale, memory.scaling.scale)
    assert streamed.report["train"]["log_loss"] == pytest.approx(
        memory.report["train"]["log_loss"], rel=0.10)


def _peak_bytes(source, chunk_rows) -> int:
    tracemalloc.start()
    try:
        fit_stream(SoftmaxRegression(solver="sgd", random_state=0, learning_rate="constant"),
                   source, chunk_rows=chunk_rows)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_rows_npy(tmp_path):
    """A file 4× longer (16 vs 64 chunks) costs no more memory than its labels' class indices
    (one byte a row): the peak is a few chunks."""
    chunk_rows, d = 1000, 40
    peaks = []
    for n_chunks in (16, 64):
        X, y = _problem(n=n_chunks * chunk_rows, d=d, seed=6)
        path = tmp_path / f"a{n_chunks}.npy"
        np.save(path, np.column_stack([X, y]))
        del X, y
        peaks.append(_peak_bytes(NpySource(path), chunk_rows))
    chunk_bytes = chunk_rows * (d + 1) * 8
    labels = (64 - 16) * chunk_rows  # bytes: one class index per row
    assert peaks[1] < 1.1 * peaks[0] + labels + 64 * 1024, peaks
    # the 64-chunk file is 64 chunks; the peak measured was 1.04 MB, 3.2 chunks: twice that
    assert peaks[1] < 6.4 * chunk_bytes, (peaks, chunk_bytes)


def test_peak_memory_of_a_deflated_npz_is_a_few_chunks(tmp_path):
    """np.savez_compressed's members are inflated as they are read, not whole (as np.load
    would): the peak for 64 chunks is a few chunks, as for a .npy file."""
    chunk_rows, d = 1000, 40
    X, y = _problem(n=64 * chunk_rows, d=d, seed=6)
    np.savez_compressed(tmp_path / "a.npz", X=X, y=y)
    del X, y
    peak = _peak_bytes(NpzSource(tmp_path / "a.npz"), chunk_rows)
    chunk_bytes = chunk_rows * (d + 1) * 8
    assert peak < 6.4 * chunk_bytes, (peak, chunk_bytes)  # the archive holds 64 chunks


def test_peak_memory_does_not_grow_with_the_rows_csv(tmp_path):
    chunk_rows, d = 500, 8
    peaks = []
    for n_chunks in (6, 24):
        X, y = _problem(n=n_chunks * chunk_rows, d=d, seed=7)
        _write_csv(tmp_path / f"a{n_chunks}.csv", X, y)
        peaks.append(_peak_bytes(CsvSource(tmp_path / f"a{n_chunks}.csv"), chunk_rows))
    assert peaks[1] < 1.1 * peaks[0] + (24 - 6) * chunk_rows + 64 * 1024, peaks


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("kind", ["csv", "svmlight", "npy"])
def test_every_pass_shows_its_progress_on_a_terminal_unless_quiet(tmp_path, monkeypatch, kind):
    """The label, statistics and metrics passes each show a bar named after the pass, over the
    file's bytes (text) or rows (arrays): on a terminal, not when stderr is a file or a pipe,
    nor without ``progress``."""
    X, y = _problem(n=3000)
    path = tmp_path / f"a.{kind}"
    if kind != "npy":
        _write_csv(path, X, y) if kind == "csv" else dump_svmlight_file(X, y, str(path))
        total = tqdm.format_sizeof(path.stat().st_size)
    else:
        np.save(path, np.column_stack([X, y]))
        total = "3.00k"
    source = open_source(path)
    for progress, stderr, shown in ((True, _Terminal(), True), (True, io.StringIO(), False),
                                    (False, _Terminal(), False)):
        monkeypatch.setattr(sys, "stderr", stderr)
        labels = read_labels(source, 500, progress=progress)
        stats = scan(source, 500, labels=labels, progress=progress)
        model, scaling = fit_stream(SoftmaxRegression(solver="sgd", random_state=0), source,
                                    chunk_rows=500, stats=stats)
        stream_metrics(model, source, scaling, 500, labels=labels, progress=progress)
        text = stderr.getvalue()
        for name in ("labels", "statistics", "metrics"):
            assert (f"{name}:" in text) == shown, (name, progress, text)
        assert (f"/{total}" in text) == shown, text
    if kind != "npy":  # a pass goes through the file's bytes to its end
        read = [source.position(0) for _ in source.raw_chunks(500)]
        assert read == sorted(read) and read[-1] == path.stat().st_size and read[0] < read[-1]


# -- the command line -----------------------------------------------------------------------------
def test_cli_stream_trains_saves_scaling_and_scores_the_test_file(tmp_path, capsys):
    X, y = _problem(n=3000, seed=8)
    _write_csv(tmp_path / "train.csv", X[:2400], y[:2400])
    _write_csv(tmp_path / "test.csv", X[2400:], y[2400:])
    code = main(["train", "--dataset", str(tmp_path / "train.csv"), "--test",
                 str(tmp_path / "test.csv"), "--stream", "--chunk-rows", "500", "--epochs", "3",
                 "--solver", "adam", "--lr", "0.05", "--out", str(tmp_path / "m.npz"),
                 "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "test       accuracy" in out.out
    model, scaling, meta = load_bundle(tmp_path / "m.npz")
    ref = Scaling("standard").fit(X[:2400])
    np.testing.assert_allclose(scaling.mean, ref.mean, rtol=1e-12)
    assert meta["training"]["stream"] == {"chunk_rows": 500, "n": 2400}
    best = SoftmaxRegression().fit(ref.transform(X[:2400]), y[:2400])
    X_test = scaling.transform(X[2400:])
    assert model.score(X_test, y[2400:]) > best.score(X_test, y[2400:]) - 0.03


def test_cli_stream_refuses_lbfgs(tmp_path, capsys):
    X, y = _problem(n=50)
    _write_csv(tmp_path / "a.csv", X, y)
    assert main(["train", "--dataset", str(tmp_path / "a.csv"), "--stream", "--solver",
                 "lbfgs", "--quiet"]) == 1
    assert "minibatch solver" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_stream_mnist_converges_as_in_memory(mnist_dir, tmp_path, capsys, monkeypatch):
    """MNIST with the defaults, in memory (L-BFGS, 100 iterations) and streamed (Adam, 15
    epochs of 6 chunks): train log losses within 10% (measured 0.2208 and 0.2252; Adam at 1e-3,
    the old stream default, ends at 0.264), the same 10 000 test images."""
    monkeypatch.setenv("SOFTMAXREG_DATA", str(mnist_dir))
    reports = {}
    for name, extra in (("memory", []), ("stream", ["--stream"])):
        out = tmp_path / f"{name}.npz"
        code = main(["train", "--dataset", "mnist", "--quiet", "--out", str(out), *extra])
        assert code == 0, capsys.readouterr().err
        reports[name] = load_bundle(out)[2]["metrics"]
    print(json.dumps(reports))
    assert reports["stream"]["train"]["log_loss"] == pytest.approx(
        reports["memory"]["train"]["log_loss"], rel=0.10)
    assert reports["stream"]["test"]["n"] == reports["memory"]["test"]["n"] == 10_000
    assert reports["stream"]["test"]["accuracy"] > 0.91


def test_a_streamed_npz_is_tested_on_its_own_x_test_rows(tmp_path):
    """An archive with X_test/y_test is scored on those rows when streamed, as in memory (not
    on rows held out of X)."""
    X, y = load_wine(return_X_y=True)
    path = tmp_path / "wine.npz"
    np.savez(path, X=X[:150], y=y[:150], X_test=X[150:], y_test=y[150:])
    settings = TrainSettings(dataset=str(path), progress=False)
    streamed = train_stream(settings, chunk_rows=50).report["test"]
    whole = train(settings).report["test"]
    assert streamed["n"] == whole["n"] == len(X) - 150


def test_a_streamed_npz_test_file_is_matched_to_the_training_columns(tmp_path, monkeypatch):
    """A test archive with the training columns reversed (and named so) scores as the same
    rows in the training order do; one of another width is refused before training."""
    from sklearn.datasets import load_iris

    import softmaxreg.streaming as streaming

    data = load_iris()
    X, y, names = data.data, data.target, np.array(data.feature_names)
    np.savez(tmp_path / "train.npz", X=X, y=y, feature_names=names)
    np.savez(tmp_path / "same.npz", X=X[::3], y=y[::3], feature_names=names)
    np.savez(tmp_path / "reversed.npz", X=X[::3, ::-1], y=y[::3], feature_names=names[::-1])
    np.savez(tmp_path / "narrow.npz", X=X[:, :3], y=y)
    scores = [train_stream(TrainSettings(dataset=str(tmp_path / "train.npz"), seed=0,
                                         test=str(tmp_path / name), progress=False),
                           chunk_rows=50).report["test"] for name in ("same.npz", "reversed.npz")]
    assert scores[0] == scores[1]

    def no_fit(*args, **kwargs):
        raise AssertionError("trained before the test file's columns were checked")

    monkeypatch.setattr(streaming, "fit_stream", no_fit)
    with pytest.raises(DataError, match="narrow.npz has 3 features, but the model was trained"):
        train_stream(TrainSettings(dataset=str(tmp_path / "train.npz"),
                                   test=str(tmp_path / "narrow.npz"), progress=False))


def test_stream_metrics_refuses_labels_the_model_never_saw_before_predicting(tmp_path):
    """A file with a class the model lacks: one DataError naming the file, the labels and the
    column, before any chunk is scored (predict_proba never called)."""
    X, y = load_wine(return_X_y=True)
    model = SoftmaxRegression().fit(X[y < 2], y[y < 2])
    np.save(tmp_path / "all.npy", np.column_stack([X, y]))

    class Refusing(SoftmaxRegression):
        def predict_proba(self, X):
            raise AssertionError("scored before the labels were checked")

    model.__class__ = Refusing
    with pytest.raises(DataError, match=r"all\.npy: labels \[2\] never seen in training; "
                                        r"the model knows 2: \[0, 1\]"):
        stream_metrics(model, open_source(tmp_path / "all.npy"), None, 50)
