"""Model files: round trips, and one clear ModelFileError for every damaged or foreign file."""

import io
import json
import re
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

from softmaxreg import ModelFileError, SoftmaxNetwork, SoftmaxRegression
from softmaxreg.persistence import load, load_bundle, save, scaling_of
from softmaxreg.preprocessing import Scaling


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def _fitted(kind, X, y):
    if kind == "network":
        return SoftmaxNetwork((5,), max_iter=30, random_state=0).fit(X, y)
    return SoftmaxRegression().fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["softmax", "network"])
@pytest.mark.parametrize("labels", ["int", "str", "binary"])
def test_round_trip_predicts_identically(tmp_path, iris, kind, labels):
    X, y = iris
    if labels == "str":
        y = np.array(["setosa", "versicolor", "virginica"])[y]
    elif labels == "binary":
        y = (y == 2).astype(int)
    model = _fitted(kind, X, y)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.get_params() == model.get_params()


def test_scaling_and_metadata_are_stored(tmp_path, iris):
    X, y = iris
    scaling = Scaling("standard").fit(X)
    model = SoftmaxRegression().fit(scaling.transform(X), y)
    save(model, tmp_path / "m.npz", scaling=scaling, metadata={"dataset": "iris"})
    loaded, loaded_scaling, meta = load_bundle(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded_scaling.transform(X), scaling.transform(X))
    assert meta["dataset"] == "iris" and meta["kind"] == "SoftmaxRegression"
    assert meta["layer_sizes"] == [4, 3]


def _write_npz(path, **arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def _saved(tmp_path, iris):
    path = tmp_path / "good.npz"
    SoftmaxRegression().fit(*iris).save(path)
    with np.load(path) as npz:
        return path, {k: npz[k] for k in npz.files}


def test_missing_truncated_and_random_files(tmp_path, iris):
    path, _ = _saved(tmp_path, iris)
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "absent.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated.npz"):
        load(truncated)
    noise = tmp_path / "noise.npz"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match="noise.npz"):
        load(noise)


def test_foreign_newer_and_inconsistent_files(tmp_path, iris):
    _, arrays = _saved(tmp_path, iris)
    meta = json.loads(str(arrays["metadata"]))
    cases = {
        "foreign": ({"X": np.zeros((3, 2))}, "no metadata"),
        "newer": ({**arrays, "metadata": np.array(json.dumps({**meta, "format_version": 99}))},
                  "upgrade softmaxreg"),
        "next": ({**arrays, "metadata": np.array(json.dumps(
            {**meta, "format_version": meta["format_version"] + 1}))}, "upgrade softmaxreg"),
        "short_params": ({**arrays, "params": arrays["params"][:-1]}, "params"),
        "nan_params": ({**arrays, "params": np.full_like(arrays["params"], np.nan)}, "NaN"),
        "classes": ({**arrays, "classes": arrays["classes"][:2]}, "classes"),
        "bad_json": ({**arrays, "metadata": np.array("{not json")}, "JSON"),
        "kind": ({**arrays, "metadata": np.array(json.dumps({**meta, "kind": "os.system"}))},
                 "unknown model kind"),
    }
    for name, (members, message) in cases.items():
        path = tmp_path / f"{name}.npz"
        _write_npz(path, **members)
        with pytest.raises(ModelFileError, match=message):
            load(path)


class _Exploit:
    """Unpickling this would create a file: loading a model must never do it."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_loading_never_unpickles(tmp_path, iris):
    _, arrays = _saved(tmp_path, iris)
    _Exploit.marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = _Exploit()
    path = tmp_path / "evil.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **{**arrays, "classes": evil})
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ModelFileError):
        load(path)
    assert not _Exploit.marker.exists()


def _with_zeros(path, arrays, name, n_bytes, level):
    """The model's ``arrays`` and a .npy member ``name`` of ``n_bytes`` zeros, deflated at
    ``level`` in 16 MiB writes (the test never holds the member); ``n_bytes``: a multiple of
    16 MiB."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": (n_bytes,)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, value)
            zf.writestr(f"{key}.npy", buf.getvalue())
        with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            for _ in range(n_bytes // 2**24):
                member.write(bytes(2**24))
    return path


def test_zip_bomb_in_a_member_loading_reads_is_refused_before_expanding(tmp_path, iris):
    _, arrays = _saved(tmp_path, iris)
    path = _with_zeros(tmp_path / "bomb.npz", arrays, "scaling.mean", 72 * 2**24, level=9)
    with pytest.raises(ModelFileError, match="refusing to expand"):
        load(path)  # 1.2 MB compressed, 1.2 GB expanded


def test_a_large_extra_member_is_never_read(tmp_path, iris, peak_memory):
    """A member loading does not use is ignored whatever it holds: 1 GiB of deflated zeros
    (4.7 MB) took 5 s and a 1 GB peak when every member was read."""
    good, arrays = _saved(tmp_path, iris)
    path = _with_zeros(tmp_path / "extra.npz", arrays, "junk", 2**30, level=1)
    with peak_memory() as peak:
        model = load(path)
    assert peak.bytes < 2 * 0.3e6  # measured 0.3 MB
    X = iris[0]
    np.testing.assert_array_equal(model.predict_proba(X), load(good).predict_proba(X))


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, iris, monkeypatch):
    path, _ = _saved(tmp_path, iris)
    before = path.read_bytes()
    model = SoftmaxRegression(C=0.01).fit(*iris)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("softmaxreg.persistence.os.fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npz"]


def test_what_load_returns_saves_again(tmp_path):
    """softmaxreg.load gives a Pipeline (FeatureScaler, estimator) for a file with a scaling;
    saving it writes the same model (same probabilities on raw rows); another pipeline gets one
    ModelFileError that says what a model file holds."""
    from sklearn.datasets import load_wine
    from sklearn.pipeline import make_pipeline

    import softmaxreg
    from softmaxreg import ModelFileError, SoftmaxRegression
    from softmaxreg.cli import main

    first, again = tmp_path / "wine.npz", tmp_path / "again.npz"
    assert main(["train", "--dataset", "wine", "--quiet", "--out", str(first)]) == 0
    X, y = load_wine(return_X_y=True)
    loaded = softmaxreg.load(first)
    save(loaded, again)
    np.testing.assert_array_equal(softmaxreg.load(again).predict_proba(X),
                                  loaded.predict_proba(X))
    with pytest.raises(ModelFileError, match="cannot save a Pipeline"):
        save(make_pipeline(PCA(3), SoftmaxRegression()).fit(X, y), tmp_path / "p.npz")


def test_metadata_claiming_more_than_its_cap_is_refused_before_expanding(tmp_path, peak_memory):
    """30 M characters of metadata (120 MB as a unicode array) deflate to ~0.1 MB: the member's
    declared size is refused before it is read (a hostile pass measured 2.48 GB before)."""
    import io

    from softmaxreg import ModelFileError

    buffer = io.BytesIO()
    np.savez_compressed(buffer, metadata=np.array(" " * 30_000_000), params=np.zeros(3),
                        classes=np.arange(2))
    path = tmp_path / "m.npz"
    path.write_bytes(buffer.getvalue())
    with peak_memory() as peak, pytest.raises(ModelFileError,
                                              match="metadata member claims 120000128 bytes"):
        load(path)
    assert peak.bytes < 2 * 0.28e6  # measured 0.27 MB


def test_the_training_range_is_kept_when_the_file_takes_raw_features(tmp_path, iris):
    """``input_max_abs`` in the metadata is max |x| of the features the model was fitted on
    (numpy's, read straight from the archive); a loaded model keeps it when saved again;
    behind a stored scaling it is left out (it would be the scaled features' range); files
    without it load, and a hostile value is one ModelFileError."""
    X, y = iris
    path, arrays = _saved(tmp_path, iris)
    meta = json.loads(str(arrays["metadata"]))
    assert meta["input_max_abs"] == np.abs(X).max()
    save(load(path), tmp_path / "again.npz")
    assert load_bundle(tmp_path / "again.npz")[2]["input_max_abs"] == np.abs(X).max()
    scaling = Scaling("unit").fit(X)
    save(SoftmaxRegression().fit(scaling.transform(X), y), tmp_path / "s.npz", scaling=scaling)
    assert "input_max_abs" not in load_bundle(tmp_path / "s.npz")[2]
    del meta["input_max_abs"]
    _write_npz(tmp_path / "old.npz", **{**arrays, "metadata": np.array(json.dumps(meta))})
    assert not hasattr(load(tmp_path / "old.npz"), "_input_max_abs_")
    for bad in (-1.0, "16", None):
        _write_npz(tmp_path / "bad.npz", **{**arrays, "metadata": np.array(json.dumps(
            {**meta, "input_max_abs": bad}))})
        with pytest.raises(ModelFileError, match="bad.npz: bad metadata: input_max_abs: must "
                                                 "be a finite number ≥ 0"):
            load(tmp_path / "bad.npz")


@pytest.mark.parametrize("scaler", [
    StandardScaler(), StandardScaler(with_mean=False), StandardScaler(with_std=False),
    StandardScaler(with_mean=False, with_std=False), MaxAbsScaler(), MinMaxScaler(),
    MinMaxScaler(feature_range=(-2, 3))], ids=repr)
def test_a_scikit_learn_scaler_becomes_the_same_stored_scaling(scaler):
    """The stored (mean, scale) transforms as the scaler's own transform does, on rows beyond
    the training range too, with a constant feature (scale 1, or the range's width) and a
    negative one."""
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(50, 4)) * [1, 100, -1, 1]
    X[:, 3] = 7.0  # constant
    scaler.fit(X)
    assert scaler.n_features_in_ == 4
    beyond = X * 1.5 - 2
    scaling = scaling_of(scaler)
    state = Scaling.from_state(scaling.get_state())  # what a model file gives back
    np.testing.assert_allclose(state.transform(beyond, np.float64), scaler.transform(beyond),
                               rtol=1e-13, atol=1e-13)


def test_a_sparse_standard_scaler_pipeline_is_saved(tmp_path, iris):
    X, y = iris
    X = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0.0, X))
    pipe = make_pipeline(StandardScaler(with_mean=False), SoftmaxRegression()).fit(X, y)
    save(pipe, tmp_path / "sparse.npz")
    np.testing.assert_allclose(load(tmp_path / "sparse.npz").predict_proba(X),
                               pipe.predict_proba(X), rtol=1e-12, atol=1e-15)


def test_a_standard_scaler_pipeline_is_saved_and_predicts_as_before(tmp_path):
    """make_pipeline(StandardScaler(), SoftmaxRegression()) on wine's DataFrame: softmaxreg.save
    stores the scaler, softmaxreg.load gives the pipeline's probabilities from raw rows, with
    its columns' names, and the CLI's predict (float32 scaling) agrees (``pipe[-1].save``
    alone gave class 0 for every row)."""
    from sklearn.datasets import load_wine

    import softmaxreg
    from softmaxreg.workflow import predict

    X, y = load_wine(return_X_y=True, as_frame=True)
    pipe = make_pipeline(StandardScaler(), SoftmaxRegression()).fit(X, y)
    softmaxreg.save(pipe, tmp_path / "wine.npz")
    loaded = softmaxreg.load(tmp_path / "wine.npz")
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X), rtol=1e-12,
                               atol=1e-15)
    assert loaded[0].feature_names_in_.tolist() == list(X.columns)
    X.assign(target=y).to_csv(tmp_path / "wine.csv", index=False)
    printed = predict(tmp_path / "wine.npz", [str(tmp_path / "wine.csv")])
    np.testing.assert_allclose(printed["proba_all"], pipe.predict_proba(X), atol=1e-5)
    assert [row[0] for row in printed["classes"]] == pipe.predict(X).tolist()


@pytest.mark.parametrize(("steps", "named"), [
    ([PCA(2)], "a Pipeline behind a PCA"),
    ([MinMaxScaler(clip=True)], r"a Pipeline behind a MinMaxScaler\(clip=True\)"),
    ([StandardScaler(), StandardScaler()], "a Pipeline of StandardScaler, StandardScaler, "
                                           "SoftmaxRegression"),
])
def test_other_pipelines_are_refused_in_one_line(tmp_path, iris, steps, named):
    pipe = make_pipeline(*steps, SoftmaxRegression()).fit(*iris)
    with pytest.raises(ModelFileError) as error:
        save(pipe, tmp_path / "p.npz")
    message = str(error.value)
    assert "\n" not in message and re.match(f"cannot save {named}: a model file holds a fitted "
                                            "SoftmaxRegression or SoftmaxNetwork", message)
    assert "StandardScaler, MaxAbsScaler or MinMaxScaler(clip=False)" in message
    assert not (tmp_path / "p.npz").exists()
    with pytest.raises(ValueError, match="not both"):
        save(make_pipeline(StandardScaler(), SoftmaxRegression()).fit(*iris), tmp_path / "p.npz",
             scaling=Scaling("standard").fit(iris[0]))


def test_save_is_exported_beside_load():
    import softmaxreg

    assert softmaxreg.save is save and "save" in softmaxreg.__all__
