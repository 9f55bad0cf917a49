"""The data contract, from the user's file to the prediction (issue 12, points 1-3).

A model file keeps the schema of its training data (feature names, label column, classes,
scaling); ``softmaxreg.load`` gives back an object that takes raw features, and it agrees with
the command line on the same rows to the last bit. Columns are matched by name; tables written
by pandas and R are read as they were meant.
"""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import dump_svmlight_file, load_iris, load_wine
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

import softmaxreg
from softmaxreg import DataError, SoftmaxNetwork, SoftmaxRegression
from softmaxreg.cli import main
from softmaxreg.io import load_dataset, read_csv
from softmaxreg.persistence import load_bundle, model_schema
from softmaxreg.preprocessing import FeatureScaler

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def wine():
    """Wine as a user has it: a DataFrame of raw features (0.1 to 1700) and a named label."""
    data = load_wine(as_frame=True)
    frame = data.data.copy()
    frame["cultivar"] = np.array(["barolo", "grignolino", "barbera"])[data.target]
    return frame


def _cli(capsys, *args) -> str:
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def _cli_fails(capsys, *args) -> str:
    assert main([str(a) for a in args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err  # one clear line
    return err


def _predict_json(capsys, model, rows) -> dict:
    return json.loads(_cli(capsys, "predict", model, rows, "--json"))


# -- 1. the schema travels with the model: Python and the CLI agree ------------------------------
KINDS = {
    "softmax": (["--model", "softmax"], lambda: SoftmaxRegression(max_iter=300)),
    "binary": (["--model", "softmax"], lambda: SoftmaxRegression(max_iter=300)),
    "network": (["--model", "network", "--hidden", "8", "--epochs", "30"],
                lambda: SoftmaxNetwork((8,), max_iter=30, random_state=0)),
}


def _model_file(tmp_path, capsys, frame, kind, scaled):
    """A model file of ``kind`` trained on ``frame``: by the CLI (which stores the scaling it
    fitted), or from Python on the raw DataFrame and saved without a scaling."""
    path = tmp_path / f"{kind}.npz"
    if scaled:
        train_csv = tmp_path / "train.csv"
        frame.to_csv(train_csv, index=False)
        _cli(capsys, "train", "--dataset", train_csv, *KINDS[kind][0], "--quiet", "--out", path)
    else:
        features = frame.drop(columns="cultivar")
        KINDS[kind][1]().fit(features / features.max(), frame["cultivar"]).save(path)
    return path


@pytest.mark.parametrize("scaled", [True, False], ids=["scaled", "unscaled"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_python_and_cli_give_the_same_probabilities(tmp_path, capsys, wine, kind, scaled):
    frame = wine[wine.cultivar != "barbera"] if kind == "binary" else wine
    if not scaled:  # the Python model was fitted on features / max: give it rows of that kind
        features = frame.drop(columns="cultivar")
        frame = (features / features.max()).assign(cultivar=frame["cultivar"])
    model = _model_file(tmp_path, capsys, frame, kind, scaled)
    rows = frame.sample(frac=1.0, random_state=1)  # another file: every row is scored
    rows_csv = tmp_path / "rows.csv"
    rows.to_csv(rows_csv, index=False)
    loaded = softmaxreg.load(model)
    assert isinstance(loaded, Pipeline) == scaled
    raw = rows.drop(columns="cultivar")
    P = loaded.predict_proba(raw)
    printed = _predict_json(capsys, model, rows_csv)
    if scaled:  # the same float32 rows through the same code: the same bits
        np.testing.assert_array_equal(np.array(printed["probabilities"]), P)
    else:  # a DataFrame's array is column-major, the CSV's row-major: BLAS may round otherwise
        np.testing.assert_allclose(np.array(printed["probabilities"]), P, rtol=1e-6, atol=1e-9)
    assert printed["predicted"] == loaded.predict(raw).tolist()
    assert printed["classes"] == loaded.classes_.tolist()
    report = json.loads(_cli(capsys, "evaluate", model, "--dataset", rows_csv, "--json"))
    assert report["n"] == len(rows)
    assert report["accuracy"] == pytest.approx(loaded.score(raw, rows["cultivar"]), abs=1e-12)
    assert report["log_loss"] == pytest.approx(
        log_loss(rows["cultivar"], P, labels=loaded.classes_), rel=1e-6)


def test_load_gives_raw_features_to_the_stored_scaling(tmp_path, capsys, wine):
    """Issue 12: trained by the CLI on wine, `load(path).score` on raw features was 0.33."""
    model = _model_file(tmp_path, capsys, wine, "softmax", scaled=True)
    loaded = softmaxreg.load(model)
    scaler, estimator = loaded.named_steps["scaling"], loaded.named_steps["model"]
    assert isinstance(scaler, FeatureScaler) and scaler.dtype == "float32"
    assert scaler.feature_names_in_.tolist() == list(wine.columns[:-1])
    assert loaded.n_features_in_ == 13 and not hasattr(estimator, "feature_names_in_")
    assert loaded.score(wine.drop(columns="cultivar"), wine["cultivar"]) >= 0.97
    estimator_alone, scaling, _ = load_bundle(model)
    np.testing.assert_array_equal(loaded.predict_proba(wine.iloc[:, :-1]),
                                  estimator_alone.predict_proba(scaling.transform(
                                      wine.iloc[:, :-1].to_numpy())))
    with pytest.raises(ValueError, match="same order"):  # scikit-learn's rule for DataFrames
        loaded.predict(wine.iloc[:, :-1][list(wine.columns[12::-1])])


def test_the_loaded_pipeline_exports_to_onnx_with_its_names(tmp_path, capsys, wine):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = _model_file(tmp_path, capsys, wine, "network", scaled=True)
    loaded = softmaxreg.load(model)
    proto = softmaxreg.to_onnx(loaded)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["feature_names"]) == list(wine.columns[:-1])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    raw = wine.iloc[:, :-1].to_numpy(np.float32)
    _, proba = session.run(None, {"X": raw})
    np.testing.assert_allclose(proba, loaded.predict_proba(wine.iloc[:, :-1]), atol=1e-5)


def test_the_model_file_stores_the_schema(tmp_path, capsys, wine):
    model = _model_file(tmp_path, capsys, wine[["alcohol", "cultivar", "hue"]], "softmax", True)
    _, _, meta = load_bundle(model)
    assert meta["format_version"] == 2
    assert meta["schema"] == {"feature_names": ["alcohol", "hue"], "named": True,
                              "label": "cultivar", "index_base": None}
    assert meta["feature_names"] == ["alcohol", "hue"]
    headerless = tmp_path / "headerless.csv"
    np.savetxt(headerless, np.column_stack([np.arange(8) % 2, np.arange(16).reshape(8, 2)]),
               delimiter=",", fmt="%d")
    _cli(capsys, "train", "--dataset", headerless, "--label-column", 0, "--quiet", "--out",
         tmp_path / "h.npz")
    schema = model_schema(load_bundle(tmp_path / "h.npz")[2])
    assert schema.feature_names == ("x0", "x1") and not schema.named and schema.label == 0


def test_model_format_1_files_still_load(tmp_path, capsys, wine):
    """A file written before the schema (format 1): no schema, null feature names."""
    model = _model_file(tmp_path, capsys, wine, "softmax", scaled=True)
    with np.load(model) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays["metadata"]))
    del meta["schema"]
    meta.update(format_version=1, feature_names=None)
    arrays["metadata"] = np.array(json.dumps(meta))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    loaded = softmaxreg.load(old)
    assert not hasattr(loaded, "feature_names_in_")  # positional, as format 1 was
    raw = wine.iloc[:, :-1].to_numpy()
    np.testing.assert_array_equal(loaded.predict_proba(raw),
                                  softmaxreg.load(model).predict_proba(wine.iloc[:, :-1]))
    rows = tmp_path / "rows.csv"
    wine.to_csv(rows, index=False)
    printed = _predict_json(capsys, old, rows)  # the label column is the last one, as before
    np.testing.assert_array_equal(printed["probabilities"], loaded.predict_proba(raw))


# -- 2. columns by name --------------------------------------------------------------------------
@pytest.fixture
def wine_model(tmp_path, capsys, wine):
    """A model trained by the CLI on wine.csv, whose label column is not the last one."""
    frame = wine[["cultivar", *wine.columns[:-1]]]
    frame.to_csv(tmp_path / "wine.csv", index=False)
    model = tmp_path / "wine.npz"
    _cli(capsys, "train", "--dataset", tmp_path / "wine.csv", "--label-column", "cultivar",
         "--quiet", "--out", model)
    return model, frame


def test_columns_in_another_order_are_matched_by_name(tmp_path, capsys, wine_model):
    model, frame = wine_model
    frame.to_csv(tmp_path / "same.csv", index=False)
    columns = list(frame.columns)
    shuffled = frame[[columns[i] for i in np.random.default_rng(0).permutation(len(columns))]]
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    same = json.loads(_cli(capsys, "evaluate", model, "--dataset", tmp_path / "same.csv",
                           "--json"))
    moved = json.loads(_cli(capsys, "evaluate", model, "--dataset", tmp_path / "shuffled.csv",
                            "--json"))
    assert moved == same and moved["accuracy"] >= 0.97  # the label column remembered
    np.testing.assert_array_equal(
        _predict_json(capsys, model, tmp_path / "shuffled.csv")["probabilities"],
        _predict_json(capsys, model, tmp_path / "same.csv")["probabilities"])


def test_missing_and_extra_columns_are_one_error_naming_them(tmp_path, capsys, wine_model):
    model, frame = wine_model
    frame.drop(columns=["hue", "proline"]).assign(colour="red").to_csv(tmp_path / "odd.csv",
                                                                        index=False)
    for command in (["evaluate", model, "--dataset"], ["predict", model]):
        err = _cli_fails(capsys, *command, tmp_path / "odd.csv")
        assert "missing columns 'hue', 'proline'" in err and "extra column 'colour'" in err
    with pytest.raises(DataError, match="missing columns 'hue', 'proline'"):
        load_dataset(tmp_path / "odd.csv", schema=model_schema(load_bundle(model)[2]),
                     require_labels=False)


def test_the_label_column_is_remembered_unless_another_is_given(tmp_path, capsys, wine_model):
    model, frame = wine_model
    renamed = tmp_path / "renamed.csv"
    frame.rename(columns={"cultivar": "truth"}).to_csv(renamed, index=False)
    err = _cli_fails(capsys, "evaluate", model, "--dataset", renamed)
    assert "no label column" in err and "'cultivar'" in err
    report = json.loads(_cli(capsys, "evaluate", model, "--dataset", renamed,
                             "--label-column", "truth", "--json"))
    # the training rows under another name: scored on the same hold-out as in training
    held_out = train_test_split(frame, test_size=0.25, random_state=0,
                                stratify=frame["cultivar"])[1]
    assert report["n"] == len(held_out) and report["accuracy"] >= 0.97
    assert "extra column 'truth'" in _cli_fails(capsys, "predict", model, renamed)
    named = json.loads(_cli(capsys, "predict", model, renamed, "--label-column", "truth",
                            "--json"))
    assert len(named["probabilities"]) == len(frame)


@pytest.mark.parametrize("form", ["csv", "tsv", "npz", "one_row", "headerless", "svmlight"])
def test_predict_takes_rows_with_or_without_labels(tmp_path, capsys, wine, form):
    frame = wine[wine.columns[:4].tolist() + ["cultivar"]]
    model = _model_file(tmp_path, capsys, frame, "softmax", scaled=True)
    features = frame.drop(columns="cultivar")
    expected = softmaxreg.load(model).predict_proba(features)
    if form == "csv":
        features.to_csv(path := tmp_path / "rows.csv", index=False)
    elif form == "tsv":
        features.to_csv(path := tmp_path / "rows.tsv", sep="\t", index=False)
    elif form == "npz":
        np.savez(path := tmp_path / "rows.npz", X=features.to_numpy())
    elif form == "one_row":
        features.iloc[:1].to_csv(path := tmp_path / "one.csv", index=False)
        expected = expected[:1]
    elif form == "headerless":  # no names: matched by position, with or without the label
        frame.to_csv(path := tmp_path / "rows.csv", index=False, header=False)
    else:
        path = tmp_path / "rows.svm"
        dump_svmlight_file(features.to_numpy(), np.zeros(len(features)), str(path),
                           zero_based=True)
    printed = _predict_json(capsys, model, path)
    np.testing.assert_array_equal(printed["probabilities"], expected)


def test_svmlight_rows_keep_the_training_files_indexing(tmp_path, capsys):
    """One row that does not use feature 0 cannot tell whether its indices start at 0 or 1:
    the model remembers its training file's."""
    dense = sp.random(60, 5, density=0.6, random_state=0).toarray()
    dense[:, 0] = 1.0  # the training file uses index 0
    X, y = sp.csr_matrix(dense), (dense[:, 1] > 0.3).astype(int)
    dump_svmlight_file(X, y, str(tmp_path / "train.svm"), zero_based=True)
    model = tmp_path / "m.npz"
    _cli(capsys, "train", "--dataset", tmp_path / "train.svm", "--quiet", "--out", model)
    assert model_schema(load_bundle(model)[2]).index_base == 0
    row = sp.csr_matrix(np.array([[0.0, 0.0, 0.5, 0.0, 2.0]]))
    dump_svmlight_file(row, [0], str(tmp_path / "one.svm"), zero_based=True)
    printed = _predict_json(capsys, model, tmp_path / "one.svm")
    np.testing.assert_array_equal(printed["probabilities"],
                                  softmaxreg.load(model).predict_proba(row))


def test_plot_scores_a_model_trained_from_a_csv_file(tmp_path, capsys, wine_model):
    """Issue 12: plot failed for every CSV-trained model ("unknown dataset 'wine_train'")."""
    pytest.importorskip("matplotlib")
    model, frame = wine_model
    out = _cli(capsys, "plot", model, "--out", tmp_path / "figures")
    assert "confusion_matrix.png" in out


# -- 3. reading tables without guessing wrong -----------------------------------------------------
@pytest.fixture(scope="module")
def iris():
    data = load_iris(as_frame=True)
    frame = data.data.copy()
    frame["species"] = np.asarray(data.target_names)[data.target]
    return frame


def _same_as_iris(ds, iris):
    np.testing.assert_array_equal(ds.X, iris.iloc[:, :4].to_numpy())
    assert ds.y.tolist() == iris["species"].tolist()


@pytest.mark.parametrize("index", [False, True], ids=["no_index", "index"])
@pytest.mark.parametrize("names", ["named", "integer"])
def test_pandas_files_read_as_written(tmp_path, iris, names, index):
    """pandas' default integer names (0,1,2,3,species) were read as 151 rows, 4 classes."""
    frame = iris
    if names == "integer":
        frame = pd.DataFrame(iris.iloc[:, :4].to_numpy()).assign(species=iris["species"])
    frame.to_csv(tmp_path / "iris.csv", index=index)
    ds = read_csv(tmp_path / "iris.csv")
    _same_as_iris(ds, iris)
    assert ds.feature_names == [str(c) for c in frame.columns[:4]]
    assert len(np.unique(ds.y)) == 3 and ds.label_column == "species"


def test_pandas_integer_names_with_integer_labels(tmp_path, iris):
    X = iris.iloc[:, :4].to_numpy()
    pd.DataFrame(np.column_stack([X, np.repeat([0, 1, 2], 50)])).to_csv(tmp_path / "i.csv",
                                                                         index=False)
    ds = read_csv(tmp_path / "i.csv")
    assert ds.X.shape == (150, 4) and ds.feature_names == ["0", "1", "2", "3"]
    assert ds.y.tolist() == [0] * 50 + [1] * 50 + [2] * 50


def test_r_write_csv_files_read_as_written(tmp_path, iris):
    """R's write.csv: every string quoted, and a row-names column whose header is ""."""
    names = ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width", "Species"]
    lines = [",".join(f'"{n}"' for n in ["", *names])]
    for i, row in enumerate(iris.itertuples(index=False), start=1):
        lines.append(",".join([f'"{i}"', *(repr(v) for v in row[:4]), f'"{row[4]}"']))
    (tmp_path / "iris_r.csv").write_text("\n".join(lines) + "\n")
    ds = read_csv(tmp_path / "iris_r.csv")
    _same_as_iris(ds, iris)
    assert ds.feature_names == names[:4] and ds.label_column == "Species"


def test_an_empty_cell_is_an_error_not_a_header(tmp_path):
    """A first row with one empty cell was taken for a header and silently dropped."""
    (tmp_path / "gap.csv").write_text("5.1,,1.4,setosa\n4.9,3.0,1.4,setosa\n6.3,3.3,6.0,virg\n")
    with pytest.raises(DataError, match=r"gap.csv, line 1, column 2: the cell is empty"):
        read_csv(tmp_path / "gap.csv")
    dropped = read_csv(tmp_path / "gap.csv", empty="drop")
    assert dropped.X.tolist() == [[4.9, 3.0, 1.4], [6.3, 3.3, 6.0]]
    zero = read_csv(tmp_path / "gap.csv", empty="zero")
    assert zero.X[0].tolist() == [5.1, 0.0, 1.4] and len(zero.y) == 3


def test_header_option_settles_what_no_rule_can(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,c\nx,y,z\n")  # text everywhere: is row 1 a header?
    with pytest.raises(DataError, match="'x' is not a finite number"):
        read_csv(tmp_path / "t.csv", header="yes")
    (tmp_path / "n.csv").write_text("0,1,2\n5,6,1\n7,8,2\n")  # pandas' names, or a data row?
    assert read_csv(tmp_path / "n.csv").X.shape == (2, 2)
    assert read_csv(tmp_path / "n.csv", header="no").X.shape == (3, 2)
    with pytest.raises(ValueError, match="header must be one of auto, yes, no"):
        read_csv(tmp_path / "n.csv", header="maybe")


def test_cli_header_and_empty_cells_options(tmp_path, capsys, iris):
    iris.to_csv(tmp_path / "iris.csv", index=False, header=False)
    text = (tmp_path / "iris.csv").read_text().replace("5.1,3.5", "5.1,", 1)
    (tmp_path / "gap.csv").write_text(text)
    err = _cli_fails(capsys, "train", "--dataset", tmp_path / "gap.csv", "--quiet")
    assert "line 1, column 2: the cell is empty" in err
    out = _cli(capsys, "train", "--dataset", tmp_path / "gap.csv", "--empty-cells", "drop",
               "--header", "no", "--quiet", "--out", tmp_path / "m.npz")
    assert "test       accuracy" in out
    report = json.loads(_cli(capsys, "evaluate", tmp_path / "m.npz", "--dataset",
                             tmp_path / "iris.csv", "--json"))
    assert report["n"] == 150 and report["accuracy"] > 0.9


def test_the_fast_reader_and_the_row_by_row_reader_agree(tmp_path, iris):
    """read_csv parses clean files with pandas' C reader; streaming parses row by row: both
    give the same arrays, and every file pandas balks at is read (or refused) row by row."""
    from softmaxreg.streaming import CsvSource

    texts = {
        "pandas": iris.to_csv(index=False),
        "quoted": '"a","b","label"\n"1.5","2",x\n" 3 ",4e-300,"y"\n',
        "blank_lines": "a,b,label\n\n1,2,x\n   \n3,4,y\n\n",
        "crlf_bom": "\ufeffa;b;label\r\n1;2;x\r\n3;4;y\r\n",
        "underscore": "a,b,label\n1_000,2,x\n3,4,y\n",  # Python's float reads 1_000, pandas not
        "long_row": "a,b,label\n1,2,x\n3,4,y,5\n",
        "short_row": "a,b,label\n1,2,x\n3,4\n",
    }
    for name, text in texts.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        try:
            ds = read_csv(path)
        except DataError as exc:
            with pytest.raises(DataError, match=str(exc).split(": ", 1)[1][:20]):
                list(CsvSource(path).chunks(2))
            continue
        chunks = list(CsvSource(path).chunks(2))
        np.testing.assert_array_equal(ds.X, np.concatenate([X for X, _ in chunks]))
        assert ds.y.tolist() == [v for _, y in chunks for v in y.tolist()]


# -- review: the rows of a file keep their numbers; names known or not -----------------------
def test_predict_keeps_the_files_row_numbers_after_dropped_rows(tmp_path, capsys, wine):
    """With --empty-cells drop, every printed row is named by its data row in the file (as
    pandas numbers it), and the dropped rows are named on stderr and in --json."""
    frame = wine[wine.columns[:4].tolist() + ["cultivar"]]
    model = _model_file(tmp_path, capsys, frame, "softmax", scaled=True)
    rows = frame.drop(columns="cultivar").iloc[:6].astype(object)
    rows.iloc[1, 2] = None
    rows.iloc[4, 0] = None
    rows.to_csv(path := tmp_path / "gaps.csv", index=False)
    read_back = pd.read_csv(path)
    kept = read_back.dropna().index.tolist()  # pandas' own row numbers: [0, 2, 3, 5]
    dropped = sorted(set(read_back.index) - set(kept))
    expected = softmaxreg.load(model).predict_proba(read_back.dropna())
    printed = json.loads(_cli(capsys, "predict", model, path, "--empty-cells", "drop", "--json"))
    assert printed["inputs"] == [str(i) for i in kept]
    assert printed["dropped_rows"] == dropped
    np.testing.assert_allclose(printed["probabilities"], expected, rtol=1e-12)
    assert main(["predict", str(model), str(path), "--empty-cells", "drop", "--proba"]) == 0
    captured = capsys.readouterr()
    assert [line.split(",")[0] for line in captured.out.splitlines()[1:]] == \
        [str(i) for i in kept]
    assert "2 rows with empty cells dropped (data rows 1, 4" in captured.err
    assert main(["predict", str(model), str(path), "--empty-cells", "drop"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == \
        [str(i) for i in kept]
    assert read_csv(path, empty="drop").row_numbers.tolist() == kept


def test_a_model_without_column_names_warns_that_it_takes_columns_by_position(
        tmp_path, capsys, wine):
    """A model trained on a file without a header, given a file with one: the columns are
    taken by position (a shuffled file is scored wrongly), and the user is told so."""
    frame = wine[wine.columns[:5].tolist() + ["cultivar"]]
    frame.to_csv(tmp_path / "bare.csv", index=False, header=False)
    model = tmp_path / "bare.npz"
    _cli(capsys, "train", "--dataset", tmp_path / "bare.csv", "--quiet", "--out", model)
    assert not model_schema(load_bundle(model)[2]).named
    shuffled = frame[frame.columns[::-1][1:].tolist() + ["cultivar"]]
    shuffled.to_csv(tmp_path / "named.csv", index=False)
    for command in (["evaluate", model, "--dataset", tmp_path / "named.csv"],
                    ["predict", model, tmp_path / "named.csv"]):
        assert main([str(a) for a in command]) == 0
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "taken by position" in err, err
    with pytest.warns(UserWarning, match="does not know its own columns' names"):
        load_dataset(tmp_path / "named.csv", schema=model_schema(load_bundle(model)[2]))
    assert main(["predict", str(model), str(tmp_path / "bare.csv")]) == 0  # no names: no warning
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("setting", [{"model": "network", "C": 3.0}, {"alpha": 0.1},
                                     {"hidden": (5,)}, {"lr": 0.5}, {"batch_size": 16},
                                     {"early_stopping": True}])
def test_python_refuses_the_settings_the_cli_refuses(setting):
    """workflow.train, like softmaxreg train, refuses a setting its run would not use (a
    network's C, softmax regression's alpha or hidden layers, L-BFGS's minibatch settings)
    instead of ignoring it."""
    from softmaxreg.cli import main
    from softmaxreg.workflow import TrainSettings, train

    name = next(k for k in setting if k != "model")
    with pytest.raises(ValueError, match=rf"^{name}=.* applies to"):
        train(TrainSettings(dataset="iris", progress=False, **setting))
    option = "--" + name.replace("_", "-")
    value = setting[name]
    argv = [option] if value is True else [option, *map(str, np.atleast_1d(value))]
    model = ["--model", setting["model"]] if "model" in setting else []
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(["train", "--dataset", "iris", "--quiet", *model, *argv]))
    assert exited.value.code == 2
