"""The command line end to end: defaults, every subcommand, and one clear line for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sklearn.datasets import load_digits, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmaxreg.cli import main
from softmaxreg.persistence import load_bundle


def _digits_holdout():
    """The CLI's documented default split, rebuilt independently: 75/25 stratified, seed 0."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    return X_train, X_test, y_test


@pytest.mark.parametrize("model, floor", [("softmax", 0.96), ("network", 0.97)])
def test_train_defaults_reach_the_accuracy_floors(tmp_path, capsys, model, floor):
    out = tmp_path / "model.npz"
    assert main(["train", "--model", model, "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test" in printed and "accuracy" in printed
    estimator, scaling, meta = load_bundle(out)
    X_train, X_test, y_test = _digits_holdout()
    reference = StandardScaler().fit(X_train)  # --scale auto standardises non-pixel features
    np.testing.assert_allclose(scaling.transform(X_test), reference.transform(X_test), atol=1e-5)
    accuracy = np.mean(estimator.predict(scaling.transform(X_test)) == y_test)
    assert accuracy >= floor
    assert meta["metrics"]["test"]["accuracy"] == pytest.approx(accuracy)


def test_evaluate_and_predict_apply_the_model_files_scaling(tmp_path, capsys):
    """Wine's features span 0.1 to 1700: the model file's standardisation must be applied to raw
    rows before predicting (skipping it drops the test accuracy from 1.00 to 0.33)."""
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)  # the CLI's hold-out, rebuilt
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    expected = reference.fit(X_train, y_train).predict(X_test)
    assert np.mean(expected == y_test) >= 0.95
    model = tmp_path / "wine.npz"
    assert main(["train", "--dataset", "wine", "--quiet", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), "--dataset", "wine", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == len(y_test)
    assert report["accuracy"] >= np.mean(expected == y_test) - 1 / len(y_test)
    rows = tmp_path / "wine_test.csv"
    np.savetxt(rows, np.column_stack([X_test, y_test]), delimiter=",")  # raw features, label last
    assert main(["predict", str(model), str(rows)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    predicted = np.array([int(line.split(": ")[1].split()[0]) for line in lines])
    assert len(predicted) == len(y_test)
    assert np.mean(predicted == expected) >= 1 - 1 / len(y_test)  # scikit-learn's labels


def test_console_script_and_module_run():
    for cmd in (["softmaxreg", "--help"], [sys.executable, "-m", "softmaxreg", "train", "--help"]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0
        assert "usage" in done.stdout
    done = subprocess.run([sys.executable, "-m", "softmaxreg", "train", "--dataset", "iris",
                           "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "test" in done.stdout


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "iris.npz"
    assert main(["train", "--dataset", "iris", "--quiet", "--out", str(path)]) == 0
    return path


def test_evaluate_text_and_json(iris_model, capsys):
    assert main(["evaluate", str(iris_model), "--dataset", "iris", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (3, 3) and cm.sum() == report["n"] == 38  # the 25% hold-out of 150
    assert report["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert main(["evaluate", str(iris_model), "--dataset", "iris"]) == 0
    text = capsys.readouterr().out
    assert "precision" in text and "confusion matrix" in text


def test_predict_csv_rows(iris_model, tmp_path, capsys):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    csv = tmp_path / "rows.csv"
    np.savetxt(csv, np.column_stack([X[:5], y[:5]]), delimiter=",")
    assert main(["predict", str(iris_model), str(csv), "--proba"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "input,0,1,2" and len(lines) == 6
    P = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-5)
    assert main(["predict", str(iris_model), str(csv), "--top-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 5


def _bars(n, rng):
    """28×28 uint8 images of a vertical (class 0) or horizontal (class 1) bar, jittered."""
    X = np.zeros((n, 28, 28), np.uint8)
    y = rng.integers(0, 2, n)
    for i in range(n):
        a, b = rng.integers(6, 20, 2)
        if y[i] == 0:
            X[i, 4:24, a:a + 4] = 255
        else:
            X[i, b:b + 4, 4:24] = 255
    return X.reshape(n, 784), y


def test_predict_images_of_a_digit_like_shape(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X, y = _bars(400, rng)
    data = tmp_path / "bars.npz"
    np.savez(data, X=X, y=y)
    model = tmp_path / "bars_model.npz"
    assert main(["train", "--dataset", str(data), "--quiet", "--out", str(model)]) == 0
    capsys.readouterr()
    picture = Image.new("L", (90, 120), color=255)  # dark ink on a light background
    ImageDraw.Draw(picture).rectangle([40, 10, 55, 110], fill=0)
    path = tmp_path / "vertical.png"
    picture.save(path)
    assert main(["predict", str(model), str(path), "--top-k", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: 0 (")


def test_gradcheck_command(capsys):
    assert main(["gradcheck", "--hidden", "4", "3", "--activation", "relu"]) == 0
    out = capsys.readouterr().out
    assert out.count("max relative error") == 3 and "OK" in out


def test_plot_writes_png_figures(iris_model, tmp_path, capsys):
    paths = tmp_path / "figs"
    assert main(["plot", str(iris_model), "--out", str(paths)]) == 0
    names = sorted(p.name for p in paths.iterdir())
    assert "confusion_matrix.png" in names
    for p in paths.iterdir():
        with Image.open(p) as im:
            assert im.format == "PNG" and min(im.size) > 100


def test_plot_history_json(tmp_path, capsys):
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.5],
                                   "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.4, 0.6, 0.7]}))
    assert main(["plot", str(history), "--out", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f" / "learning_curves.png").is_file()


def _run_fails(capsys, argv, message):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err
    return err


def test_bad_input_gets_one_clear_line(tmp_path, iris_model, capsys):
    _run_fails(capsys, ["train", "--dataset", "nosuch"], "unknown dataset 'nosuch'")
    _run_fails(capsys, ["evaluate", str(tmp_path / "absent.npz"), "--dataset", "iris"],
               "no such model file")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    _run_fails(capsys, ["train", "--dataset", str(bad)], "bad.csv")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,label\n1,2,x\n3,4\n")
    _run_fails(capsys, ["train", "--dataset", str(ragged)], "ragged.csv")
    wine_like = tmp_path / "wrong_features.csv"
    np.savetxt(wine_like, np.ones((4, 6)), delimiter=",")
    _run_fails(capsys, ["predict", str(iris_model), str(wine_like)], "features")
    unseen = tmp_path / "unseen.csv"
    np.savetxt(unseen, np.column_stack([np.ones((3, 4)), [0, 1, 7]]), delimiter=",")
    _run_fails(capsys, ["evaluate", str(iris_model), "--dataset", str(unseen)], "never seen")
    not_image = tmp_path / "broken.png"
    not_image.write_bytes(b"not an image")
    _run_fails(capsys, ["predict", str(iris_model), str(not_image)], "broken.png")


def test_failed_training_keeps_the_existing_model_file(tmp_path, iris_model, capsys):
    out = tmp_path / "keep.npz"
    out.write_bytes(iris_model.read_bytes())
    before = out.read_bytes()
    _run_fails(capsys, ["train", "--dataset", "nosuch", "--out", str(out)], "unknown dataset")
    assert out.read_bytes() == before
