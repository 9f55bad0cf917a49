"""The command line end to end: defaults, every subcommand, and one clear line for bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_gradcheck_command_says_how_long_a_slow_check_takes_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(sys.modules["softmaxreg.gradcheck"], "SLOW_SECONDS", 0.0)  # all "slow"
    assert main(["gradcheck", "--hidden", "4"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: gradcheck: ") and "about" in err[0]


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


@pytest.mark.parametrize("text, why", [
    ("[" * 100_000, "nested more than"),
    ('{"loss": [{}]}', "has no accuracy, val_loss, val_accuracy"),
    ('{"loss": ["a", "b"], "accuracy": [], "val_loss": [], "val_accuracy": []}',
     "loss[0]: must be a finite number"),
    ('{"objective": [1, NaN]}', "objective[1]: must be a finite number"),
    ('{"objective": [1e308, -1e308]}', "objective: its values span more than a float"),
], ids=["deep", "keys", "str", "nan", "span"])
def test_plot_refuses_a_hostile_history_json(tmp_path, capsys, text, why):
    history = tmp_path / "history.json"
    history.write_text(text)
    err = _run_fails(capsys, ["plot", str(history), "--out", str(tmp_path / "f")], why)
    assert str(history) in err
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("case", ["long feature", "long label", "duplicate features"])
def test_train_refuses_columns_a_model_file_cannot_hold(tmp_path, capsys, case):
    long = "x" * 4097
    if case == "duplicate features":
        data = tmp_path / "data.npz"
        np.savez(data, X=np.arange(60.0).reshape(20, 3), y=np.arange(20) % 2,
                 feature_names=np.array(["a", "a", "b"]))
        why = "feature_names: names the column 'a' twice"
    else:
        data = tmp_path / "data.csv"
        header = [long, "b", "y"] if case == "long feature" else ["a", "b", long]
        data.write_text(",".join(header) + "\n" + "".join(f"{i},{i % 5},{i % 2}\n"
                                                           for i in range(20)))
        why = "feature_names[0]: must be" if case == "long feature" else "label: must be"
    _run_fails(capsys, ["train", "--dataset", str(data), "--out", str(tmp_path / "m.npz")],
               "a model file cannot hold its columns: " + why)
    assert not (tmp_path / "m.npz").exists()


def test_train_refuses_more_hidden_layers_than_a_model_file_holds(tmp_path, capsys):
    from softmaxreg.workflow import TrainSettings

    argv = ["train", "--model", "network", "--hidden", *["2"] * 63, "--out", str(tmp_path / "m")]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert "--hidden: at most 62 hidden layers (what a model file holds), got 63" in err
    with pytest.raises(ValueError, match="at most 62 hidden layers"):
        TrainSettings(model="network", hidden=[2] * 63)


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


# -- options refused when parsed (issue 13, point 4): one line, exit status 2 -------------------
def _usage_error(capsys, argv, *words):
    """argv is refused by the parser: exit status 2, one line on stderr naming ``words``."""
    with pytest.raises(SystemExit) as exited:
        code = main(argv)
        raise SystemExit(code)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


HOSTILE = [  # (CLI option and value, the TrainSettings field and value Python refuses alike)
    (["--epochs", "0"], {"epochs": 0}),
    (["--epochs", "-3"], {"epochs": -3}),
    (["--batch-size", "0"], {"batch_size": 0}),
    (["--lr", "0"], {"lr": 0.0}),
    (["--lr", "nan"], {"lr": float("nan")}),
    (["--lr", "inf"], {"lr": float("inf")}),
    (["--C", "-1"], {"C": -1.0}),
    (["--C", "5e-324"], {"C": 5e-324}),
    (["--alpha", "-0.1"], {"alpha": -0.1}),
    (["--alpha", "nan"], {"alpha": float("nan")}),
    (["--seed", "-1"], {"seed": -1}),
    (["--val-fraction", "1"], {"val_fraction": 1.0}),
    (["--hidden", "64", "0"], {"hidden": (64, 0)}),
]


@pytest.mark.parametrize("argv, field", HOSTILE, ids=lambda v: " ".join(v) if isinstance(
    v, list) else None)
def test_bad_numbers_are_refused_when_parsed_and_by_the_settings(capsys, argv, field):
    from softmaxreg.workflow import TrainSettings

    _usage_error(capsys, ["train", *argv], f"argument {argv[0]}")
    with pytest.raises(ValueError, match=next(iter(field))):
        TrainSettings(**field)


def test_other_counts_are_refused_when_parsed(capsys, iris_model, tmp_path):
    _usage_error(capsys, ["train", "--stream", "--chunk-rows", "0"], "--chunk-rows")
    _usage_error(capsys, ["train", "--checkpoint-every", "0"], "--checkpoint-every")
    _usage_error(capsys, ["predict", str(iris_model), "x.csv", "--top-k", "0"], "--top-k")
    _usage_error(capsys, ["export", str(iris_model), "x.onnx", "--opset", "0"], "--opset")
    _usage_error(capsys, ["gradcheck", "--classes", "1"], "--classes", "at least 2")
    _usage_error(capsys, ["gradcheck", "--inputs", "0"], "--inputs")
    _usage_error(capsys, ["gradcheck", "--hidden", "3", "0"], "--hidden")
    from softmaxreg.workflow import TrainSettings, check_gradients, train

    for args in ((6, [5], 1), (0, [5], 3), (6, [0], 3)):
        with pytest.raises(ValueError):
            check_gradients(*args)
    with pytest.raises(ValueError, match="positive integer"):
        train(TrainSettings(dataset="iris"), stream=True, chunk_rows=0)


def test_a_network_too_large_for_memory_is_refused_before_allocating(capsys, monkeypatch,
                                                                     peak_memory):
    """Today's 364 TiB MemoryError traceback: refused with its size, before any allocation."""

    from softmaxreg import workflow

    err = _usage_error(capsys, ["train", "--model", "network", "--hidden", "10000000",
                                "10000000"], "--hidden", "100,000,040,000,001 parameters",
                       "363.8 TiB", "memory available")
    assert "MemoryError" not in err
    _usage_error(capsys, ["gradcheck", "--inputs", "100000000", "--hidden", "100000"],
                 "parameters", "memory available")
    # with the data's width: a softmax regression of iris fits; 1e9 hidden units do not
    with peak_memory() as peak, pytest.raises(ValueError, match="parameters.*memory available"):
        workflow.train(workflow.TrainSettings(dataset="iris", model="network",
                                              hidden=(10**9,), progress=False))
    assert peak.bytes < 50 * 2**20
    monkeypatch.setattr(workflow, "available_memory", lambda: 10**6)  # 1 MB left
    with pytest.raises(ValueError, match="more than the 976.6 KiB of memory available"):
        workflow.check_network_fits((784, 512, 10), "adam", 4)


def test_dask_local_workers_are_bounded_by_the_machine(capsys):
    from softmaxreg.distributed import check_address, connect, machine_cores

    _usage_error(capsys, ["train", "--dask", "local:1000"], "--dask", "local:1000",
                 f"use local:{machine_cores()} at most")
    _usage_error(capsys, ["train", "--dask", "local:0"], "--dask")
    _usage_error(capsys, ["train", "--dask", "nowhere"], "--dask", "tcp://HOST:PORT")
    assert check_address(" local:1 ") == "local:1"
    with pytest.raises(ValueError, match="worker processes"):  # Python: before any process
        with connect("local:1000"):
            pass


# -- outputs never clobber inputs (issue 12, point 5) ---------------------------------------------
def test_outputs_that_would_replace_an_input_are_refused_before_training(tmp_path, capsys):
    from softmaxreg.workflow import TrainSettings, train

    data = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(data, index=False)
    test = tmp_path / "test.csv"
    test.write_bytes(data.read_bytes())
    before = data.read_bytes()
    cases = [
        (["--dataset", str(data), "--out", str(data)], "is the training data"),
        (["--dataset", str(data), "--out", str(tmp_path / "." / "wine.csv")], "training data"),
        (["--dataset", "wine", "--test", str(test), "--out", str(test)], "is the test data"),
        (["--dataset", "wine", "--model", "network", "--checkpoint", str(tmp_path / "c.npz"),
          "--out", str(tmp_path / "c.npz")], "--out and --checkpoint name the same file"),
        (["--dataset", "wine", "--out", str(tmp_path)], "is a folder"),
        (["--dataset", "wine", "--out", str(tmp_path / "missing" / "m.npz")],
         "the folder", "does not exist"),
        (["--dataset", str(data), "--checkpoint", str(data)], "--checkpoint", "training data"),
        (["--dataset", str(data), "--stream", "--out", str(data)], "is the training data"),
    ]
    for argv, *words in cases:
        err = _run_fails(capsys, ["train", "--quiet", *argv], words[0])
        assert all(w in err for w in words) and "fitted" not in err
    assert data.read_bytes() == before and test.read_bytes() == before
    folder = tmp_path / "idx"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(b"")
    _run_fails(capsys, ["train", "--dataset", str(folder), "--out",
                        str(folder / "train-images-idx3-ubyte")], "a file of the training data")
    resume = tmp_path / "run.ckpt"
    assert main(["train", "--dataset", "iris", "--model", "network", "--epochs", "1",
                 "--quiet", "--checkpoint", str(resume)]) == 0
    capsys.readouterr()  # (one epoch learns little, and says so)
    saved = resume.read_bytes()
    _run_fails(capsys, ["train", "--resume", str(resume), "--out", str(resume)],
               "the checkpoint to resume")
    assert resume.read_bytes() == saved
    with pytest.raises(ValueError, match="is the training data"):  # Python agrees
        train(TrainSettings(dataset=str(data)), out=data)


def test_written_files_honour_the_umask_and_keep_a_replaced_files_mode(tmp_path, capsys):
    import stat

    from softmaxreg.io import atomic_write_bytes

    def mode(path):
        return stat.S_IMODE(os.stat(path).st_mode)

    old = os.umask(0o022)
    try:
        out, ckpt = tmp_path / "m.npz", tmp_path / "c.npz"
        assert main(["train", "--dataset", "iris", "--model", "network", "--solver", "adam",
                     "--epochs", "2", "--quiet", "--out", str(out), "--checkpoint",
                     str(ckpt)]) == 0
        assert mode(out) == mode(ckpt) == 0o644  # mkstemp alone gives 0600
        os.chmod(out, 0o640)
        assert main(["train", "--dataset", "iris", "--quiet", "--out", str(out)]) == 0
        assert mode(out) == 0o640
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "private.bin", b"x")
        assert mode(tmp_path / "private.bin") == 0o600
        with pytest.raises(FileNotFoundError, match="missing does not exist"):
            atomic_write_bytes(tmp_path / "missing" / "a.bin", b"x")
        assert not list(tmp_path.glob(".*.tmp"))
    finally:
        os.umask(old)
    capsys.readouterr()


# -- CLI manners (issue 12, point 7) --------------------------------------------------------------
def test_predict_into_a_reader_that_leaves_ends_quietly(tmp_path, iris_model):
    """`softmaxreg predict ... | head -1`: exit status 141 (as `yes | head -1`), no traceback."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    rows = tmp_path / "many.csv"
    np.savetxt(rows, np.column_stack([np.tile(X, (400, 1)), np.tile(y, 400)]), delimiter=",")
    for extra in ([], ["--proba"]):
        process = subprocess.Popen([sys.executable, "-m", "softmaxreg", "predict",
                                    str(iris_model), str(rows), *extra],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = process.stdout.readline()
        process.stdout.close()  # what head does after one line
        err = process.stderr.read().decode()
        assert process.wait(timeout=120) in (0, 141)
        assert first and "Traceback" not in err and "Exception ignored" not in err, err


def test_ctrl_c_while_starting_exits_130_without_a_traceback():
    """SIGINT while the package is still being imported (the first second) or later: one line,
    status 130. The console script's entry point is _softmaxreg_main.main."""
    import signal
    import time

    argv = [sys.executable, "-c", "import sys, _softmaxreg_main; sys.exit(_softmaxreg_main.main())",
            "train", "--dataset", "wine", "--quiet"]
    for delay in (0.4, 2.5):
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                                               signal.SIG_DFL))
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        if process.returncode == 0:  # finished before the signal: nothing to interrupt
            continue
        assert "Traceback" not in err, err
        if process.returncode == -signal.SIGINT:  # still in Python's own start: killed by the
            continue  # signal, which a shell reports as 130 too
        assert process.returncode == 130 and err.strip().endswith("interrupted"), err


def test_ctrl_c_during_the_import_is_caught_by_the_entry_point(monkeypatch, capsys):
    """Deterministically: a KeyboardInterrupt raised by the import of the CLI."""
    import builtins

    import _softmaxreg_main

    real = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "softmaxreg.cli":
            raise KeyboardInterrupt
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert _softmaxreg_main.main() == 130
    assert capsys.readouterr().err == "softmaxreg: interrupted\n"


def test_offline_mnist_names_the_three_ways_and_leaves_no_empty_cache(tmp_path, capsys,
                                                                      monkeypatch):
    cache = tmp_path / "cache" / "deep"
    monkeypatch.delenv("SOFTMAXREG_DATA", raising=False)
    monkeypatch.setenv("SOFTMAXREG_CACHE", str(cache))
    monkeypatch.setenv("SOFTMAXREG_MNIST_MIRRORS", "http://127.0.0.1:9/")  # refused at once
    assert main(["train", "--dataset", "mnist", "--quiet"]) == 1
    err = capsys.readouterr().err
    for needed in ("--data-dir", "SOFTMAXREG_DATA", str(cache / "mnist"),
                   "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                   "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert needed in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "cache").exists()
    assert main(["train", "--dataset", "mnist", "--stream", "--quiet"]) == 1  # streaming too
    assert "SOFTMAXREG_DATA" in capsys.readouterr().err and not (tmp_path / "cache").exists()


def test_every_option_says_what_it_does_and_its_default():
    import argparse

    from softmaxreg.cli import _HelpFormatter, _parser

    parser = _parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags = (argparse._StoreTrueAction, argparse._HelpAction, argparse._VersionAction)
    for name, sub in subparsers.choices.items():
        formatter = _HelpFormatter(prog=name)
        for action in sub._actions:
            text = formatter._get_help_string(action)
            assert text and len(text) > 10, (name, action.dest)
            if action.option_strings and not isinstance(action, flags) and not action.required:
                assert "default" in text, (name, action.option_strings, text)
        assert "default: 128 64" in sub.format_help() if name == "train" else True


def test_unknown_file_types_list_the_formats_read(tmp_path, iris_model, capsys):
    unknown = tmp_path / "rows.parquet"
    unknown.write_bytes(b"PAR1")
    err = _run_fails(capsys, ["predict", str(iris_model), str(unknown)], "unknown file type")
    for kind in (".csv", ".npz", ".svmlight", ".png", ".jpg", ".tif"):
        assert kind in err, err
    err = _run_fails(capsys, ["train", "--dataset", str(unknown)], "unknown file type")
    assert ".csv" in err and ".svmlight" in err


def test_warnings_name_the_cli_options(capsys):
    from softmaxreg.cli import cli_words

    assert main(["train", "--dataset", "wine", "--scale", "none", "--epochs", "5",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--epochs, now 5" in err and "--scale standard" in err
    assert "max_iter" not in err and "sklearn" not in err
    assert main(["train", "--dataset", "wine", "--model", "network", "--epochs", "1",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "learned little" in err and "--lr" in err and "learning_rate_init" not in err
    assert cli_words("Increase max_iter (or tune learning_rate_init); a smaller C") == \
        "Increase --epochs (or tune --lr); a smaller --C"


def _as_files(tmp_path, name, X, y) -> list[Path]:
    """The rows (X, y) as a CSV file (label last) and as a svmlight file."""
    from sklearn.datasets import dump_svmlight_file

    csv, svm = tmp_path / f"{name}.csv", tmp_path / f"{name}.svmlight"
    np.savetxt(csv, np.column_stack([X, y]), delimiter=",")
    dump_svmlight_file(X, y, str(svm), zero_based=False)  # read back as 1-based
    return [csv, svm]


@pytest.mark.parametrize("data, method", [("wine", "standard"), ("ink", "maxabs")])
def test_auto_scaling_decides_on_the_data_not_the_file_format(tmp_path, capsys, data, method):
    """The same rows from a CSV or a svmlight file get the same scaling and the same model:
    dense data (wine: every value non-zero) are standardised, as scikit-learn's StandardScaler,
    also from svmlight (which gave maxabs: test log loss 0.27 against 0.03); sparse data (the
    digits' strongest ink, 29% non-zero; standardising a rare feature gives values of 36 and
    L-BFGS stops unconverged) are divided by each feature's largest |x|, as MaxAbsScaler, also
    from a CSV file."""
    from sklearn.preprocessing import MaxAbsScaler

    X, y = load_wine(return_X_y=True) if data == "wine" else load_digits(return_X_y=True)
    if data == "ink":
        X = np.where(X > 8, X, 0.0)
        X[0, -1] = X[0, -1] or 1.0  # a svmlight file then names the last feature
    assert (np.count_nonzero(X) / X.size > 0.5) == (method == "standard")
    X_train = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)[0]
    reference = (StandardScaler() if method == "standard" else MaxAbsScaler()).fit(X_train)
    losses = []
    for path in _as_files(tmp_path, data, X, y):
        out = tmp_path / f"{path.suffix[1:]}.npz"
        assert main(["train", "--dataset", str(path), "--quiet", "--out", str(out)]) == 0
        assert "warning" not in capsys.readouterr().err
        _, scaling, meta = load_bundle(out)
        assert scaling.resolved == method
        np.testing.assert_allclose(scaling.transform(X_train, dtype=np.float64),
                                   reference.transform(X_train), rtol=1e-6, atol=1e-9)
        losses.append(meta["metrics"]["test"]["log_loss"])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    streamed = tmp_path / "streamed.npz"  # the same scaling, from the same statistics
    assert main(["train", "--dataset", str(path), "--stream", "--chunk-rows", "100",
                 "--epochs", "1", "--quiet", "--out", str(streamed)]) == 0
    stream_scaling = load_bundle(streamed)[1]
    assert stream_scaling.resolved == method
    np.testing.assert_allclose(stream_scaling.mean, scaling.mean, atol=1e-9)
    np.testing.assert_allclose(stream_scaling.scale, scaling.scale, rtol=1e-9)


# -- review: what the output must say ----------------------------------------------------------
@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    """Iris as a CSV file whose label column, 'species', is found by default (text)."""
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[frame["species"]]
    path = tmp_path_factory.mktemp("d") / "iris.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_train_names_the_default_label_column_and_warns_when_it_looks_like_a_feature(
        tmp_path, capsys, iris_csv):
    path, frame = iris_csv
    assert main(["train", "--dataset", str(path), "--quiet"]) == 0
    captured = capsys.readouterr()
    n_classes = frame["species"].nunique()
    assert f"label column 'species' ({n_classes} classes)" in captured.out
    assert "warning" not in captured.err
    assert main(["train", "--dataset", str(path), "--label-column", "species", "--quiet"]) == 0
    assert "label column" not in capsys.readouterr().out  # chosen by the user: not repeated
    wine = load_wine(as_frame=True).data  # no label: the last column, proline, is taken
    wine.to_csv(tmp_path / "wine.csv", index=False)
    assert main(["train", "--dataset", str(tmp_path / "wine.csv"), "--quiet"]) in (0, 1)
    err = capsys.readouterr().err
    distinct = wine["proline"].nunique()
    assert f"'proline' (chosen by default) holds {distinct} distinct numbers" in err, err
    assert err.count("looks like a feature") == 1, err  # the reader says it, once
    assert "--label-column" in err


def test_held_out_labels_no_training_row_has_are_refused_before_fitting(tmp_path, capsys,
                                                                       monkeypatch):
    """A class first and the float feature 'proline' taken as labels by default: the held-out
    rows' labels are not in the training rows, said before any fitting, naming the column."""
    import softmaxreg.workflow as workflow

    data = load_wine(as_frame=True)
    frame = data.frame[["target", *data.feature_names]]
    frame.to_csv(tmp_path / "wine.csv", index=False)

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the labels were checked")

    monkeypatch.setattr(workflow, "_fit", no_fit)
    assert main(["train", "--dataset", str(tmp_path / "wine.csv"), "--quiet"]) == 1
    warning, error = capsys.readouterr().err.strip().splitlines()  # one warning, one error
    assert "looks like a feature" in warning
    assert "of the held-out test rows are in no training" in error
    assert "'proline'" in error and "--label-column" in error


def test_unknown_labels_name_the_label_column(tmp_path, capsys, iris_csv):
    path, frame = iris_csv
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", str(path), "--quiet", "--out", str(model)]) == 0
    capsys.readouterr()
    frame.assign(species=frame["species"].str.upper()).to_csv(tmp_path / "odd.csv", index=False)
    err = _run_fails(capsys, ["evaluate", str(model), "--dataset", str(tmp_path / "odd.csv")],
                     "never seen in training")
    assert "taken from the column 'species'" in err and "--label-column" in err


def test_evaluating_the_training_rows_says_so(tmp_path, capsys, iris_csv):
    """A model trained with --test FILE was fitted to every row of its data set: scored on
    that file (or a copy), it is told that the rows include the training rows; a model trained
    on a hold-out is scored on the same held-out rows, whatever the file is called."""
    path, frame = iris_csv
    frame.iloc[::5].to_csv(tmp_path / "test.csv", index=False)
    model = tmp_path / "m.npz"
    assert main(["train", "--dataset", str(path), "--test", str(tmp_path / "test.csv"),
                 "--quiet", "--out", str(model)]) == 0
    capsys.readouterr()
    frame.to_csv(tmp_path / "copy.csv", index=False)
    for data in (path, tmp_path / "copy.csv"):
        assert main(["evaluate", str(model), "--dataset", str(data), "--json"]) == 0
        captured = capsys.readouterr()
        report = json.loads(captured.out)
        assert report["n"] == len(frame) and report["includes_training_rows"] is True
        assert "include the training rows" in captured.err
    assert main(["evaluate", str(model), "--dataset", str(tmp_path / "test.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["includes_training_rows"] is False
    held = tmp_path / "held.npz"
    assert main(["train", "--dataset", str(path), "--quiet", "--out", str(held)]) == 0
    capsys.readouterr()
    _, test = train_test_split(np.arange(len(frame)), test_size=0.25, random_state=0,
                               stratify=frame["species"])  # the CLI's hold-out, rebuilt
    assert main(["evaluate", str(held), "--dataset", str(tmp_path / "copy.csv"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == len(test) and report["includes_training_rows"] is False
    assert main(["evaluate", str(held), "--dataset", str(path)]) == 0
    assert f"({len(test)} examples)" in capsys.readouterr().out


def test_one_example_is_singular(tmp_path, capsys, iris_model):
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    np.savetxt(tmp_path / "one.csv", np.column_stack([X[:1], y[:1]]), delimiter=",")
    assert main(["evaluate", str(iris_model), "--dataset", str(tmp_path / "one.csv")]) == 0
    assert "(1 example)" in capsys.readouterr().out


def test_a_minibatch_fit_that_stops_early_says_why(capsys, iris_csv):
    path, _ = iris_csv
    from softmaxreg.workflow import TrainSettings, train

    result = train(TrainSettings(dataset=str(path), model="network", hidden=(4,),
                                 solver="sgd", epochs=400, progress=False))
    epochs = result.estimator.n_iter_
    assert epochs < 400  # the stall rule stopped it (tol=1e-4 for 10 epochs)
    assert main(["train", "--dataset", str(path), "--model", "network", "--hidden", "4",
                 "--solver", "sgd", "--epochs", "400", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert (f"stopped after {epochs} of 400 epochs: the training loss improved by less than "
            "tol=1e-4 for 10 epochs") in out
    assert main(["train", "--dataset", str(path), "--quiet"]) == 0  # lbfgs: no such line
    assert "stopped after" not in capsys.readouterr().out


# -- options that the run would not use are refused, not ignored --------------------------------
NOT_APPLYING = [  # (argv, the option refused, settings that differ from BASE only by that option)
    (["--hidden", "5"], "--hidden", {"hidden": (5,)}),
    (["--activation", "tanh"], "--activation", {"activation": "tanh"}),
    (["--alpha", "0.1"], "--alpha", {"alpha": 0.1}),
    (["--model", "network", "--C", "3"], "--C", {"model": "network", "C": 3.0}),
    (["--lr", "0.5"], "--lr", {"lr": 0.5}),
    (["--batch-size", "16"], "--batch-size", {"batch_size": 16}),
    (["--schedule", "cosine"], "--schedule", {"schedule": "constant"}),  # given, as the default
    (["--early-stopping"], "--early-stopping", {"early_stopping": True}),
    (["--solver", "lbfgs", "--model", "network", "--lr", "0.5"], "--lr",
     {"solver": "lbfgs", "model": "network", "lr": 0.5}),
]


@pytest.mark.parametrize("argv, option, _", NOT_APPLYING, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_options_that_do_not_apply_are_usage_errors(capsys, argv, option, _):
    err = _usage_error(capsys, ["train", "--dataset", "iris", *argv],
                       f"argument {option}: applies to")
    assert "only, not to" in err


@pytest.mark.parametrize("argv, option", [
    (["--chunk-rows", "50"], "--chunk-rows: applies with --stream only"),
    (["--checkpoint-every", "2"], "--checkpoint-every: applies with --checkpoint or --resume only"),
])
def test_options_of_a_run_not_asked_for_are_usage_errors(capsys, argv, option):
    _usage_error(capsys, ["train", "--dataset", "iris", *argv], f"argument {option}")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 3 epochs
@pytest.mark.parametrize("argv, option, field", NOT_APPLYING, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else None)
def test_the_refused_options_would_not_change_the_model(monkeypatch, argv, option, field):
    """What the refusal says, measured: with make_estimator's own refusal lifted, the setting
    never reaches the estimator (its parameters are those of the same run without it), and
    the two estimators fit the same parameters on iris, with a validation fraction of 0.2 so
    that early stopping, were it passed on, would change the fit."""
    from sklearn.datasets import load_iris

    from softmaxreg import workflow
    from softmaxreg.workflow import TrainSettings, make_estimator

    monkeypatch.setattr(workflow, "inapplicable", lambda model, solver: {})  # let it through
    base = {"dataset": "iris", "epochs": 3 if field.get("model") == "network" else None,
            "hidden": (4,), "progress": False, "val_fraction": 0.2}
    base.update({k: field[k] for k in ("model", "solver") if k in field})
    given = make_estimator(TrainSettings(**{**base, **field}), 150)
    plain = make_estimator(TrainSettings(**base), 150)
    assert given.get_params() == plain.get_params()
    X, y = load_iris(return_X_y=True)
    np.testing.assert_array_equal(given.fit(X, y).network_.params,
                                  plain.fit(X, y).network_.params)


def test_options_that_apply_are_accepted_and_defaults_refuse_nothing(capsys, iris_csv):
    path, _ = iris_csv
    runs = [["--model", "network", "--hidden", "3", "--activation", "tanh", "--alpha", "0.01",
             "--solver", "sgd", "--lr", "0.05", "--batch-size", "16", "--schedule", "constant",
             "--early-stopping", "--epochs", "2"],
            ["--C", "3", "--solver", "adam", "--lr", "0.05", "--epochs", "2"],
            ["--stream", "--lr", "0.05", "--batch-size", "16", "--epochs", "2"],  # stream: adam
            ["--model", "network", "--epochs", "2"], []]
    for argv in runs:
        assert main(["train", "--dataset", str(path), "--quiet", *argv]) == 0, \
            capsys.readouterr().err


def _help(command: str) -> str:
    """The --help text of ``command``, its lines joined."""
    import argparse

    from softmaxreg.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(sub.choices[command].format_help().split())


def test_the_epochs_help_states_the_stopping_rule_that_fits_follow(iris_csv):
    """A minibatch fit without --early-stopping stops by itself: the help of --epochs says
    when, and the recorded losses of such a fit follow that rule exactly."""
    import re

    from softmaxreg.workflow import TrainSettings, train

    text = _help("train")
    rule = re.search(r"its training loss \(with --early-stopping, the validation loss\) has "
                     r"improved by less than tol=(\S+) \(softmax: \S+\) for (\d+) epochs in a row",
                     text)
    assert rule, text
    tol, patience = float(rule[1]), int(rule[2])
    assert "watch their loss instead of the training loss" in text  # --early-stopping
    path, _ = iris_csv
    result = train(TrainSettings(dataset=str(path), model="network", hidden=(4,), solver="sgd",
                                 epochs=400, progress=False))
    loss = np.asarray(result.estimator.history_.loss)
    assert patience < len(loss) < 400
    improved = [loss[j] < loss[:j].min() - tol for j in range(1, len(loss))]
    assert not any(improved[-patience:]) and improved[-patience - 1]


def _train(argv, stderr, leader=None) -> tuple[int, str, bytes]:
    """(exit status, stdout, what the terminal ``leader`` received) of `softmaxreg train
    ARGV` whose stderr is ``stderr``."""
    import select

    proc = subprocess.Popen([sys.executable, "-m", "softmaxreg", "train", *argv],
                            stdout=subprocess.PIPE, stderr=stderr)
    shown = b""
    while leader is not None:  # read as it comes: a full terminal would block the command
        if select.select([leader], [], [], 0.1)[0]:
            shown += os.read(leader, 65536)
        elif proc.poll() is not None:
            break
    out = proc.communicate(timeout=120)[0].decode()
    return proc.returncode, out, shown


def _on_a_terminal(argv) -> tuple[int, str, bytes]:
    """:func:`_train` with stderr on a pseudo-terminal of 100 columns (at 0, tqdm draws
    nothing)."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        return _train(argv, follower, leader)
    finally:
        os.close(follower)
        os.close(leader)


def test_no_progress_frames_when_stderr_is_not_a_terminal(tmp_path, iris_csv):
    """`softmaxreg train 2>log` wrote every frame of the bar into the log; a terminal still
    gets the bar (a stream: one per pass over the file), and stdout the summary either way."""
    stream = ["--dataset", str(iris_csv[0]), "--stream", "--epochs", "2", "--chunk-rows", "50"]
    for argv, bars in ((["--dataset", "iris"], [b"SoftmaxRegression"]),
                       (stream, [b"labels", b"statistics", b"chunks", b"metrics"])):
        with open(tmp_path / "log", "w") as log:
            code, out, _ = _train(argv, log)
        assert code == 0 and "test       accuracy" in out
        log = (tmp_path / "log").read_text()  # warnings only, no frames of a bar
        assert "\r" not in log and "%|" not in log and log.count("\n") <= 1, log
        code, out, shown = _on_a_terminal(argv)
        assert code == 0 and "test       accuracy" in out
        assert all(bar in shown for bar in bars) and b"\r" in shown, shown


def test_plot_out_must_be_a_folder(tmp_path, capsys, iris_model):
    """`--out wine.csv`, an existing file, printed `[Errno 17] File exists: 'wine.csv'`."""
    data = tmp_path / "wine.csv"
    data.write_text("a,b\n1,2\n")
    for out, where in ((data, f"{data} is a file"), (data / "figs", f"inside {data}, a file")):
        err = _run_fails(capsys, ["plot", str(iris_model), "--out", str(out)],
                         "--out must be a folder")
        assert where in err and "Errno" not in err
    assert data.read_text() == "a,b\n1,2\n"


@pytest.mark.parametrize("name", ["digits", "Wine"])
def test_stream_of_a_bundled_set_says_why_not(capsys, name):
    argv = ["train", "--stream"] + (["--dataset", name] if name != "digits" else [])
    err = _run_fails(capsys, argv, "--stream reads a data file")
    assert "bundled" in err and "drop --stream" in err and "no such file" not in err


def test_evaluate_scores_the_training_data_by_default(tmp_path, capsys, iris_model):
    """As plot: without --dataset, the held-out part of the data set the model was trained
    on (iris: 38 of 150 rows); a model file that does not name its data says to give one."""
    assert main(["evaluate", str(iris_model), "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(iris_model), "--dataset", "iris", "--json"]) == 0
    assert default == json.loads(capsys.readouterr().out) and default["n"] == 38
    from sklearn.datasets import load_iris

    from softmaxreg.estimators import SoftmaxRegression

    bare = tmp_path / "bare.npz"  # saved from Python: no data set named
    SoftmaxRegression().fit(*load_iris(return_X_y=True)).save(bare)
    _run_fails(capsys, ["evaluate", str(bare)], "give a data set with --dataset")


def test_the_help_names_the_files_each_command_reads(tmp_path):
    """Each data file the help of train names is read: a small iris file of that kind, as
    pandas, scikit-learn or NumPy write it, loads with its 150 rows, 4 features and labels."""
    import re

    import pandas as pd
    from sklearn.datasets import dump_svmlight_file, load_iris

    from softmaxreg.io import BUNDLED, load_dataset

    text = _help("train")
    files = "".join(re.search(r"--dataset DATASET .*?a data file \(([^;]+);", text)[1].split()).split("/")
    assert {".csv", ".npz", ".npy", ".svm", ".tsv"} <= set(files), files
    X, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)]).assign(label=y)
    for suffix in files:
        path = tmp_path / f"iris{suffix}"
        if suffix in (".csv", ".tsv"):
            frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
        elif suffix == ".npy":
            np.save(path, np.column_stack([X, y]))
        elif suffix == ".npz":
            np.savez(path, X=X, y=y)
        else:  # .svm, .svmlight, .libsvm, .txt: svmlight text
            dump_svmlight_file(X, y, str(path))
        data = load_dataset(str(path))
        rows = data.X.toarray() if hasattr(data.X, "toarray") else data.X  # svmlight: sparse
        np.testing.assert_allclose(np.asarray(rows, dtype=float), X, err_msg=suffix)
        np.testing.assert_array_equal(np.asarray(data.y, dtype=float), y, err_msg=suffix)
    assert all(name in text for name in ("mnist", *BUNDLED))
    assert "an .npz holds arrays X and y" in text
    for command in ("train", "evaluate", "predict"):
        assert "the label column of a CSV file, by name or index, or of a .npy file, by " \
               "index" in _help(command)
    assert "column named label, else its only column of text, else its last" in text
    guide = (Path(__file__).parents[1] / "docs" / "guide" / "cli.rst").read_text()
    assert "else the only column of text" in " ".join(guide.split())  # as read_csv chooses


def test_predict_reads_every_picture_format_its_help_names(tmp_path, capsys):
    """The help said PNG/JPEG, the code read TIFF, BMP and GIF too, and refused a .webp
    though its reader takes WEBP: each format the help names, under each suffix Pillow gives
    it, is classified."""
    import re

    formats = re.search(r"images of digits \(([^)]*)\)", _help("predict"))[1].split(", ")
    assert {"PNG", "JPEG", "TIFF", "BMP", "GIF"} <= set(formats)
    X, y = _bars(200, np.random.default_rng(0))
    np.savez(tmp_path / "bars.npz", X=X, y=y)
    model = tmp_path / "bars_model.npz"
    assert main(["train", "--dataset", str(tmp_path / "bars.npz"), "--quiet", "--out",
                 str(model)]) == 0
    picture = Image.new("L", (90, 120), color=255)
    ImageDraw.Draw(picture).rectangle([40, 10, 55, 110], fill=0)
    Image.init()
    paths = []
    for suffix, kind in Image.registered_extensions().items():
        if kind in formats:
            paths.append(tmp_path / f"vertical{suffix}")
            picture.save(paths[-1], format=kind)
    assert len(paths) >= len(formats)
    capsys.readouterr()
    assert main(["predict", str(model), *map(str, paths)]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(": ")[0] for line in lines] == list(map(str, paths))
    assert all(line.split(": ")[1].startswith("0 (") for line in lines)  # a vertical bar


def test_small_messages(capsys):
    _run_fails(capsys, ["train", "--dataset", "nothere.csv"], "no such file: nothere.csv")
    _run_fails(capsys, ["train", "--dataset", "nothere"], "unknown dataset 'nothere'")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("softmaxreg.workflow.available_memory", lambda: 2**30)
        assert main(["train", "--model", "network", "--hidden", "10000000", "10000000"]) == 2
    err = capsys.readouterr().err
    assert "(hidden layers 10000000-10000000)" in err and "1-10000000" not in err


def test_resume_accepts_another_data_dir(tmp_path, capsys, iris_csv):
    path, _ = iris_csv
    ckpt = tmp_path / "run.ckpt"
    assert main(["train", "--dataset", str(path), "--solver", "sgd", "--epochs", "3",
                 "--quiet", "--checkpoint", str(ckpt)]) == 0
    moved = tmp_path / "data"
    moved.mkdir()
    assert main(["train", "--resume", str(ckpt), "--data-dir", str(moved), "--quiet",
                 "--out", str(tmp_path / "m.npz")]) == 0, capsys.readouterr().err
    assert load_bundle(tmp_path / "m.npz")[2]["training"]["data_dir"] == str(moved)
    capsys.readouterr()
    _run_fails(capsys, ["train", "--resume", str(ckpt), "--epochs", "5"], "drop --epochs")


def test_evaluate_and_plot_find_mnist_where_the_model_was_trained(tmp_path, capsys,
                                                                   monkeypatch, mnist_dir):
    model = tmp_path / "mnist.npz"
    assert main(["train", "--dataset", "mnist", "--data-dir", str(mnist_dir), "--epochs", "2",
                 "--quiet", "--out", str(model)]) == 0
    capsys.readouterr()
    monkeypatch.delenv("SOFTMAXREG_DATA", raising=False)
    monkeypatch.setenv("SOFTMAXREG_CACHE", str(tmp_path / "cache"))  # empty: would download
    monkeypatch.setenv("SOFTMAXREG_MNIST_MIRRORS", "http://127.0.0.1:9/")  # refused at once
    assert main(["evaluate", str(model), "--dataset", "mnist", "--json"]) == 0, \
        capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["n"] == 10000  # MNIST's own test split
    assert main(["plot", str(model), "--out", str(tmp_path / "fig")]) == 0
    assert (tmp_path / "fig" / "confusion_matrix.png").exists()
    assert not (tmp_path / "cache").exists()


def test_the_cli_guide_has_a_section_for_every_subcommand():
    import argparse

    from softmaxreg.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    names = list(sub.choices)
    text = (Path(__file__).parents[1] / "docs" / "guide" / "cli.rst").read_text()
    words = {5: "five", 6: "six", 7: "seven"}
    assert f"has {words[len(names)]} subcommands" in text
    for name in names:
        assert f"``{name}``\n{'-' * (len(name) + 4)}\n" in text, name
        assert f".. softmaxreg-command:: {name} --help" in text, name


def test_a_test_value_beyond_the_scaled_range_is_refused_before_fitting(tmp_path, capsys,
                                                                      monkeypatch):
    """A test cell of 1.7e308 becomes inf once standardised in float32: one line naming it,
    before any fitting (it failed after the fit with scikit-learn's 'Input X contains
    infinity')."""
    import softmaxreg.workflow as workflow

    frame = load_wine(as_frame=True).frame
    frame.to_csv(tmp_path / "wine.csv", index=False)
    frame.iloc[:5].assign(alcohol=[1.7e308, 13, 13, 13, 13]).to_csv(tmp_path / "test.csv",
                                                                       index=False)

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the test rows were scaled")

    monkeypatch.setattr(workflow, "_fit", no_fit)
    _run_fails(capsys, ["train", "--dataset", str(tmp_path / "wine.csv"), "--test",
                        str(tmp_path / "test.csv"), "--quiet"],
               "the test rows: X[0, 0] = 1.7e+308 is beyond")


def test_data_beyond_the_range_a_model_was_trained_on_warn(tmp_path, capsys):
    """A model fitted in Python on load_digits / 16 (its file records |x| ≤ 1), given the raw
    0..16 rows: a warning naming both ranges; the rows / 16 give none."""
    X, y = load_digits(return_X_y=True)
    from softmaxreg import SoftmaxRegression

    model = SoftmaxRegression(C=1.0).fit(X / 16, y)
    model.save(tmp_path / "m.npz")
    np.save(tmp_path / "raw.npy", X[:20])
    np.save(tmp_path / "scaled.npy", X[:20] / 16)
    assert main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "scaled.npy"), "--json"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "raw.npy"), "--json"]) == 0
    err = capsys.readouterr().err
    assert "the data reach |x| = 16, but the model was trained on values up to 1" in err


def test_a_solver_of_the_other_model_is_a_usage_error(capsys):
    _usage_error(capsys, ["train", "--dataset", "iris", "--solver", "adamw"],
                 "argument --solver: adamw is not a solver of --model softmax")
    _usage_error(capsys, ["train", "--dataset", "iris", "--model", "network", "--solver",
                          "fista"], "fista is not a solver of --model network")


@pytest.mark.parametrize("shown", ["--proba", "--json"])
def test_top_k_with_every_probability_printed_is_a_usage_error(iris_model, tmp_path, capsys,
                                                                shown):
    from sklearn.datasets import load_iris

    load_iris(as_frame=True).data.to_csv(tmp_path / "rows.csv", index=False)
    _usage_error(capsys, ["predict", str(iris_model), str(tmp_path / "rows.csv"), shown,
                          "--top-k", "2"], "argument --top-k")
    assert main(["predict", str(iris_model), str(tmp_path / "rows.csv"), shown]) == 0


def _no_fit(monkeypatch):
    """Make any fit of the workflow fail the test: what is checked must be checked first."""
    import softmaxreg.streaming as streaming
    import softmaxreg.workflow as workflow

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the labels were checked")

    monkeypatch.setattr(workflow, "_fit", no_fit)
    monkeypatch.setattr(streaming, "fit_stream", no_fit)


@pytest.mark.parametrize("stream", [[], ["--stream"]], ids=["memory", "stream"])
def test_test_labels_no_training_row_has_are_refused_before_fitting(tmp_path, capsys,
                                                                   monkeypatch, stream):
    """An .npz whose own y_test holds a class y lacks, and a --test file likewise."""
    X, y = load_wine(return_X_y=True)
    keep = y < 2
    np.savez(tmp_path / "w.npz", X=X[keep], y=y[keep], X_test=X[~keep][:5], y_test=y[~keep][:5])
    frame = load_wine(as_frame=True).frame
    frame[frame.target < 2].to_csv(tmp_path / "train.csv", index=False)
    frame[frame.target == 2].to_csv(tmp_path / "test.csv", index=False)
    _no_fit(monkeypatch)
    for argv in (["--dataset", str(tmp_path / "w.npz")],
                 ["--dataset", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv")]):
        _run_fails(capsys, ["train", *argv, *stream, "--quiet"],
                   "the test rows: labels [2] never seen in training")


@pytest.mark.parametrize("stream", [[], ["--stream"]], ids=["memory", "stream"])
def test_a_single_class_is_refused_before_fitting(tmp_path, capsys, monkeypatch, stream):
    frame = load_wine(as_frame=True).frame.assign(kind="red")
    frame.to_csv(tmp_path / "one.csv", index=False)
    _no_fit(monkeypatch)
    err = _run_fails(capsys, ["train", "--dataset", str(tmp_path / "one.csv"), *stream,
                              "--quiet"], "every training row has the label 'red'")
    assert "two classes at least" in err and "column 'kind'" in err


def test_a_float64_pipeline_predicts_from_the_cli_as_in_python(tmp_path, capsys):
    """A saved StandardScaler pipeline of a float64 model: the CLI scales in float64 too
    (float32 left differences of 5e-8)."""
    import softmaxreg
    from softmaxreg import SoftmaxRegression

    data = load_wine(as_frame=True)
    pipe = make_pipeline(StandardScaler(), SoftmaxRegression(dtype="float64"))
    pipe.fit(data.data, data.target)
    softmaxreg.save(pipe, tmp_path / "p.npz")
    data.data.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["predict", str(tmp_path / "p.npz"), str(tmp_path / "rows.csv"), "--json"]) == 0
    cli = np.asarray(json.loads(capsys.readouterr().out)["probabilities"])
    np.testing.assert_allclose(cli, pipe.predict_proba(data.data), rtol=1e-12, atol=1e-15)
