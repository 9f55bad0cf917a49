"""One schema for model metadata and checkpoint settings (issue 13, point 3).

Valid containers with hostile contents — fields of the wrong type, nesting, duplicate classes,
huge declared sizes, weights at the edge of float32 — each give exactly one ModelFileError that
names the file, never another exception, whether read by ``softmaxreg.load``, by the command
line's ``evaluate``/``predict``/``plot``, or (checkpoints) by ``train --resume``.
"""

import dataclasses
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import softmaxreg
from softmaxreg import ModelFileError, SoftmaxRegression
from softmaxreg.checkpoint import load_checkpoint
from softmaxreg.cli import main
from softmaxreg.io import schema
from softmaxreg.persistence import load_bundle
from softmaxreg.workflow import TrainSettings

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _arrays(path: Path) -> dict:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _seeds() -> dict[str, dict]:
    """Model files as the command line writes them: softmax regression on digits (an image
    shape, an objective curve), a network on iris (per-epoch history), and a Python-saved
    model with string classes; and a checkpoint of `softmaxreg train`."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        runs = {"digits": ["--dataset", "digits", "--epochs", "5"],
                "network": ["--dataset", "iris", "--model", "network", "--hidden", "4",
                            "--solver", "adam", "--epochs", "2", "--checkpoint",
                            str(tmp / "run.ckpt")]}
        for name, args in runs.items():
            assert main(["train", *args, "--quiet", "--out", str(tmp / f"{name}.npz")]) == 0
        X = np.random.default_rng(0).normal(size=(30, 3))
        y = np.array(["a", "b", "c"])[np.arange(30) % 3]
        SoftmaxRegression().fit(X, y).save(tmp / "strings.npz")
        seeds = {name: _arrays(tmp / f"{name}.npz") for name in (*runs, "strings")}
        seeds["checkpoint"] = _arrays(tmp / "run.ckpt")
        return seeds


SEEDS = _seeds()
MODELS = ("digits", "network", "strings")


def _meta(name: str) -> dict:
    return json.loads(str(SEEDS[name]["metadata"]))


def _write(path: Path, name: str, meta=None, **arrays) -> Path:
    members = {**SEEDS[name], **arrays}
    if meta is not None:
        members["metadata"] = np.array(meta if isinstance(meta, str) else json.dumps(meta))
    np.savez(path, **members)
    return path


def _refused(path: Path, match: str = ""):
    with pytest.raises(ModelFileError, match=match) as err:
        softmaxreg.load(path)
    assert str(path) in str(err.value)
    return err.value


# -- the named cases of the issue ----------------------------------------------------------------
@pytest.mark.parametrize(("field", "value", "message"), [
    ("fit_intercept", "no", "fit_intercept: must be true or false, got 'no'"),
    ("image_shape", "28x28", "image_shape"),
    ("image_shape", [8], "image_shape"),
    ("image_shape", [4, 4], r"image_shape: \[4, 4\] does not hold the model's 64"),
    ("image_shape", [8, -8], "image_shape"),
    ("history", [1, 2], "history"),
    ("history", {"objective": [1.0, "x"]}, r"history"),
    ("history", {"loss": [math.nan], "accuracy": [], "val_loss": [], "val_accuracy": []},
     "history"),
    ("training", [1, 2], "training"),
    ("training", {"dataset": 5}, "training: has no model, seed"),
    ("training", {**_meta("digits")["training"], "dataset": 5}, "training.dataset"),
    ("metrics", {"test": {"accuracy": 7}}, r"metrics.test.accuracy"),
    ("layer_sizes", [64, 2**31 - 1], "params must be a float vector of 139586437055"),
    ("layer_sizes", [64, 2**31 - 1, 10], "no hidden layer"),
    ("layer_sizes", [64, 2**40, 10], "layer_sizes"),
    ("n_features_in", 65, "n_features_in"),
    ("feature_names", ["a"] * 64, "twice"),
    ("params", {"C": -1}, "bad estimator parameters"),
    ("kind", "os.system", "unknown model kind"),
    ("dtype", "float16", "dtype"),
])
def test_hostile_fields_are_refused_before_use(tmp_path, field, value, message):
    meta = {**_meta("digits"), field: value}
    _refused(_write(tmp_path / "m.npz", "digits", meta), message)


def test_params_must_describe_the_stored_network(tmp_path):
    meta = _meta("network")
    meta["params"]["hidden_layer_sizes"] = [10**9]
    _refused(_write(tmp_path / "m.npz", "network", meta), "hidden_layer_sizes")


@pytest.mark.parametrize("depth", [17, 100, 100_000])
def test_deeply_nested_json_is_refused_without_recursion_error(tmp_path, depth):
    nested = '{"format": "softmaxreg-model", "deep": ' + "[" * depth + "]" * depth + "}"
    _refused(_write(tmp_path / "m.npz", "digits", nested), "nested more than 16 levels")
    shallow = {**_meta("digits"), "note": json.loads("[" * 10 + "]" * 10)}
    softmaxreg.load(_write(tmp_path / "ok.npz", "digits", shallow))  # ten levels are fine


@pytest.mark.parametrize(("classes", "message"), [
    (np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 8]), "unique and sorted"),
    (np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]), "unique and sorted"),
    (np.array([0.0, 1, 2, 3, 4, 5, 6, 7, 8, np.nan]), "NaN"),
    (np.array([0.0, 1, 2, 3, 4, 5, 6, 7, 8, np.inf]), "NaN or infinity"),
    (np.array([True, False] * 5), "integer, float or string"),
    (np.arange(11), "vector of 10"),
])
def test_classes_are_unique_sorted_numbers_or_strings(tmp_path, classes, message):
    _refused(_write(tmp_path / "m.npz", "digits", classes=classes), message)


def test_boolean_classes_are_not_saved(tmp_path):
    X = np.random.default_rng(0).normal(size=(20, 2))
    model = SoftmaxRegression().fit(X, X[:, 0] > 0)
    with pytest.raises(ValueError, match="boolean class labels"):
        model.save(tmp_path / "b.npz")
    assert not (tmp_path / "b.npz").exists()


def test_weights_must_keep_predictions_finite(tmp_path, capsys):
    """Finite weights near float32's limit used to print '0 (nan)' with exit status 0."""
    params = SEEDS["digits"]["params"]
    huge = np.full_like(params, np.finfo(np.float32).max / 10)
    _refused(_write(tmp_path / "m.npz", "digits", params=huge), "weights too large")
    large = params * 1e6  # large, but far from float32's limit: still a model
    softmaxreg.load(_write(tmp_path / "ok.npz", "digits", params=large))
    rows = tmp_path / "rows.csv"
    np.savetxt(rows, np.zeros((2, 64)), delimiter=",")
    assert main(["predict", str(tmp_path / "m.npz"), str(rows)]) == 1
    err = capsys.readouterr().err
    assert "weights too large" in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["evaluate", "predict", "plot"])
@pytest.mark.parametrize("field, value", [("image_shape", {"h": 8}), ("history", "all"),
                                          ("training", [1, 2])])
def test_the_cli_gives_one_line_for_a_hostile_field(tmp_path, capsys, command, field, value):
    """These fields raised TypeError/AttributeError in plot and evaluate."""
    model = _write(tmp_path / "m.npz", "digits", {**_meta("digits"), field: value})
    args = {"evaluate": ["evaluate", model, "--dataset", "digits"],
            "predict": ["predict", model, tmp_path / "rows.csv"],
            "plot": ["plot", model, "--out", tmp_path / "figures"]}[command]
    np.savetxt(tmp_path / "rows.csv", np.zeros((1, 64)), delimiter=",")
    assert main([str(a) for a in args]) == 1
    err = capsys.readouterr().err
    assert "m.npz" in err and field in err and err.count("\n") == 1


# -- checkpoints ---------------------------------------------------------------------------------
def _checkpoint(path: Path, change) -> Path:
    meta = json.loads(str(SEEDS["checkpoint"]["metadata"]))
    change(meta)
    with open(path, "wb") as file:  # (np.savez would add .npz to the name)
        np.savez(file, **{**SEEDS["checkpoint"], "metadata": np.array(json.dumps(meta))})
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["settings"]["training"].update(hidden=5), "settings.training.hidden"),
    (lambda m: m["settings"]["training"].update(batch_size=0), "settings.training.batch_size"),
    (lambda m: m["settings"].update(training=[1, 2]), "settings.training"),
    (lambda m: m["settings"]["training"].update(seed="x"), "settings.training.seed"),
    (lambda m: m["config"].update(batch_size=0), "config.batch_size"),
    (lambda m: m["position"].update(epoch=-1), "position.epoch"),
    (lambda m: m["network"].update(fit_intercept="no"), "network.fit_intercept"),
    (lambda m: m.update(deep=json.loads("[" * 50 + "]" * 50)), "nested"),
])
def test_hostile_checkpoint_settings_are_refused_on_resume(tmp_path, capsys, change, message):
    path = _checkpoint(tmp_path / "run.ckpt", change)
    with pytest.raises(ModelFileError, match=message):
        load_checkpoint(path)
    assert main(["train", "--resume", str(path), "--quiet"]) == 1
    err = capsys.readouterr().err
    field = message.split(".")[-1]  # (the CLI may spell a setting as its option, --batch-size)
    assert str(path) in err and err.count("\n") == 1
    assert field in err or field.replace("_", "-") in err


def test_the_training_schema_follows_train_settings():
    fields = {f.name for f in dataclasses.fields(TrainSettings)} - {"progress"}
    assert fields <= set(schema.TRAINING_FIELDS)
    assert set(schema.TRAINING_FIELDS) - fields == {"stream"}  # what train_stream adds


def test_the_seeds_fit_their_schemas():
    for name in MODELS:
        schema.check(_meta(name), schema.MODEL)
    schema.check(json.loads(str(SEEDS["checkpoint"]["metadata"])), schema.CHECKPOINT)


# -- structured fuzzing: valid containers, hostile contents ---------------------------------------
def _paths(document, prefix=()):
    """Every (path of keys) to a field of a JSON object, nested objects included."""
    for key, value in document.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from _paths(value, (*prefix, key))


def _nest(depth: int, leaf, as_object: bool):
    for _ in range(depth):
        leaf = {"k": leaf} if as_object else [leaf]
    return leaf


SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**63, 10**30])
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6))
HOSTILE = st.one_of(
    SCALARS,
    st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(
        st.text(max_size=4), c, max_size=4), max_leaves=12),
    st.builds(_nest, st.integers(1, 3000), SCALARS, st.booleans()),  # nesting
    st.lists(st.sampled_from([1, 1, 2, 2**31 - 1, 10**12]), min_size=1, max_size=4),  # sizes
    st.lists(st.sampled_from(["a", "a", "b", "x0"]), min_size=1, max_size=70),  # names
)
CLASSES = st.one_of(
    st.lists(st.integers(-3, 12), min_size=1, max_size=12).map(np.array),
    st.lists(st.floats(allow_nan=True), min_size=1, max_size=12).map(np.array),
    st.lists(st.booleans(), min_size=1, max_size=12).map(np.array),
    st.lists(st.text(max_size=3), min_size=1, max_size=12).map(lambda v: np.array(v, str)),
)


@st.composite
def hostile_model_files(draw) -> tuple[str, dict, dict]:
    """(seed, metadata, arrays): one seed with fields replaced or removed, or its classes or
    parameters swapped for hostile ones."""
    name = draw(st.sampled_from(MODELS))
    meta, arrays = _meta(name), {}
    paths = sorted(_paths(meta))  # the seed's fields, before any is replaced
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        target = meta
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if not isinstance(target, dict) or path[-1] not in target:
            continue
        if draw(st.integers(0, 5)) == 0:
            del target[path[-1]]
        else:
            target[path[-1]] = draw(HOSTILE)
    if draw(st.integers(0, 3)) == 0:
        arrays["classes"] = draw(CLASSES)
    if draw(st.integers(0, 5)) == 0:
        params = SEEDS[name]["params"]
        arrays["params"] = params * draw(st.sampled_from([1e3, 1e15, 1e30, -1e36]))
    return name, meta, arrays


def _load_or_refuse(path: Path) -> None:
    """Exactly one outcome: a model that predicts finite probabilities, or one ModelFileError
    naming the file."""
    try:
        model = softmaxreg.load(path)
    except ModelFileError as exc:
        assert str(path) in str(exc)
        return
    estimator, scaling, meta = load_bundle(path)
    P = model.predict_proba(np.ones((2, estimator.n_features_in_)))
    assert np.all(np.isfinite(P)) and P.shape == (2, len(estimator.classes_))
    assert np.array_equal(np.unique(estimator.classes_), estimator.classes_)
    schema.check(meta, schema.MODEL)


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=hostile_model_files())
def test_hostile_metadata_gives_one_model_file_error(case):
    name, meta, arrays = case
    with tempfile.TemporaryDirectory() as folder:
        try:
            text = json.dumps(meta)
        except (ValueError, RecursionError):  # nested too deep for json itself to write
            text = '{"format": "softmaxreg-model", "x": ' + "[" * 5000 + "]" * 5000 + "}"
        _load_or_refuse(_write(Path(folder) / "m.npz", name, text, **arrays))


@st.composite
def hostile_checkpoints(draw) -> dict:
    meta = json.loads(str(SEEDS["checkpoint"]["metadata"]))
    paths = sorted(_paths(meta))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        target = meta
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict) and path[-1] in target:
            target[path[-1]] = draw(HOSTILE)
    return meta


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(meta=hostile_checkpoints())
def test_hostile_checkpoint_metadata_gives_one_model_file_error(meta):
    from softmaxreg.workflow import resume_settings

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.ckpt"
        try:
            text = json.dumps(meta)
        except (ValueError, RecursionError):
            text = "[" * 5000 + "]" * 5000
        with open(path, "wb") as file:
            np.savez(file, **{**SEEDS["checkpoint"], "metadata": np.array(text)})
        try:
            resume_settings(path, progress=False)
        except ModelFileError as exc:
            assert str(path) in str(exc)
