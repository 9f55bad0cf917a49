"""ONNX export, checked by running the graph in onnxruntime against the model's own predictions."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler

from softmaxreg import SoftmaxNetwork, SoftmaxRegression, to_onnx
from softmaxreg.activations import ACTIVATIONS
from softmaxreg.cli import main
from softmaxreg.persistence import load_bundle, save
from softmaxreg.preprocessing import Scaling

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

NAMES = np.array(["setosa", "versicolor", "virginica"])
ATOL = 1e-5


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    X = X * [1, 10, 100, 1000] + [5, -50, 0, 2000]  # raw features far from standard
    return X, y


def _run(proto, X):
    """(label, probabilities) from onnxruntime on raw features X."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"], {"X": X.astype(np.float32)})
    return label, proba


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short fits: convergence is not what is tested here
        return model.fit(X, y)


def _labels(y, kind, binary):
    y = (y == 2).astype(int) if binary else y
    return NAMES[y] if kind == "str" else y


def _assert_same(proto, model, X_raw, X_model):
    label, proba = _run(proto, X_raw)
    assert proba.dtype == np.float32 and proba.shape == (len(X_raw), len(model.classes_))
    np.testing.assert_allclose(proba, model.predict_proba(X_model), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label, model.predict(X_model))


MODELS = {
    **{f"network-{a}": lambda a=a: SoftmaxNetwork((6, 5), a, solver="lbfgs", max_iter=60,
                                                  random_state=0) for a in ACTIVATIONS},
    "regression": lambda: SoftmaxRegression(max_iter=200),
    "regression-float64": lambda: SoftmaxRegression(max_iter=200, dtype="float64"),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("binary", [False, True], ids=["K=3", "K=2"])
@pytest.mark.parametrize("classes", ["int", "str"])
@pytest.mark.parametrize("scaled", [True, False], ids=["scaled", "raw"])
def test_graph_reproduces_predict_proba_and_predict(iris, name, binary, classes, scaled):
    X, y = iris
    scaling = Scaling("standard").fit(X) if scaled else None
    X_model = scaling.transform(X) if scaled else X
    model = _fit(MODELS[name](), X_model, _labels(y, classes, binary))
    proto = to_onnx(model, scaling=scaling)
    _assert_same(proto, model, X, X_model)
    label_type = onnx.TensorProto.STRING if classes == "str" else onnx.TensorProto.INT64
    assert proto.graph.output[0].type.tensor_type.elem_type == label_type


@pytest.mark.parametrize("kind", ["regression", "network-tanh"])
def test_model_file_round_trip(tmp_path, iris, kind):
    X, y = iris
    scaling = Scaling("standard").fit(X)
    model = _fit(MODELS[kind](), scaling.transform(X), NAMES[y])
    save(model, tmp_path / "model.npz", scaling=scaling)
    loaded, loaded_scaling, _ = load_bundle(tmp_path / "model.npz")
    proto = to_onnx(loaded, scaling=loaded_scaling)
    _assert_same(proto, loaded, X, loaded_scaling.transform(X))


def test_pipeline_with_standard_scaler(iris):
    X, y = iris
    pipe = _fit(Pipeline([("scale", StandardScaler()), ("clf", SoftmaxRegression())]), X, y)
    label, proba = _run(to_onnx(pipe), X)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label, pipe.predict(X))


@pytest.mark.parametrize("scaler", [StandardScaler(with_mean=False), StandardScaler(with_std=False),
                                    MaxAbsScaler(), MinMaxScaler()], ids=repr)
def test_pipeline_with_each_scikit_learn_scaler(iris, scaler):
    """The graph scales as the scaler does (StandardScaler(with_mean=False) subtracted mean_
    anyway: probabilities off by up to 0.97)."""
    X, y = iris
    pipe = _fit(Pipeline([("scale", scaler), ("clf", SoftmaxRegression())]), X, y)
    label, proba = _run(to_onnx(pipe), X)
    np.testing.assert_allclose(proba, pipe.predict_proba(X), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(label, pipe.predict(X))


def test_pipeline_holding_a_scaling_equals_the_pair(iris):
    X, y = iris
    scaling = Scaling("standard").fit(X)
    model = _fit(SoftmaxRegression(), scaling.transform(X), y)
    pipe = Pipeline([("scaling", scaling), ("clf", model)])
    assert _run(to_onnx(pipe), X)[1].tobytes() == _run(to_onnx(model, scaling), X)[1].tobytes()


def test_graph_interface(iris):
    X, y = iris
    model = _fit(SoftmaxRegression(), X, y)
    proto = to_onnx(model, opset=13)
    (x,) = proto.graph.input
    assert x.name == "X" and x.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in x.type.tensor_type.shape.dim][1] == 4
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    assert proto.opset_import[0].version == 13
    onnx.checker.check_model(proto, full_check=True)


def test_feature_names_travel_as_metadata(iris):
    pd = pytest.importorskip("pandas")
    X, y = iris
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    proto = to_onnx(_fit(SoftmaxRegression(), frame, y))
    assert {p.key: p.value for p in proto.metadata_props} == {
        "feature_names": '["a", "b", "c", "d"]'}


def test_unsupported_models_get_clear_errors(iris):
    X, y = iris
    with pytest.raises(TypeError, match="cannot export a LogisticRegression.*supported"):
        to_onnx(LogisticRegression(max_iter=1000).fit(X, y))
    with pytest.raises(NotFittedError):
        to_onnx(SoftmaxRegression())
    model = _fit(SoftmaxRegression(), X, y)
    with pytest.raises(ValueError, match="scaling transforms 3 features.*fitted with 4"):
        to_onnx(model, scaling=Scaling("standard").fit(X[:, :3]))
    with pytest.raises(TypeError, match="preprocessing step of type dict"):
        to_onnx(model, scaling={"mean": 0})
    with pytest.raises(ValueError, match="not both"):
        to_onnx(Pipeline([("s", StandardScaler()), ("m", model)]), scaling=Scaling())
    with pytest.raises(ValueError, match="opset must be between 13"):
        to_onnx(model, opset=11)


@pytest.mark.parametrize("model", [[], ["--model", "network", "--hidden", "5", "--activation",
                                        "leaky_relu", "--epochs", "3"]], ids=["softmax", "network"])
def test_cli_export_of_a_trained_model_file(tmp_path, capsys, model):
    X = load_iris(return_X_y=True)[0]
    model_path, onnx_path = tmp_path / "model.npz", tmp_path / "model.onnx"
    assert main(["train", "--dataset", "iris", *model, "--out", str(model_path), "--quiet"]) == 0
    assert main(["export", str(model_path), str(onnx_path)]) == 0
    assert "ONNX graph written to" in capsys.readouterr().out
    estimator, scaling, _ = load_bundle(model_path)
    assert scaling is not None  # the raw features go through the stored scaling
    proto = onnx.load(onnx_path)
    _assert_same(proto, estimator, X, scaling.transform(X))


def test_cli_export_errors_are_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "out.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("softmaxreg export: error:") and err.count("\n") == 1
    assert not (tmp_path / "out.onnx").exists()


def test_cli_export_refuses_to_overwrite_the_model_file(tmp_path, capsys, iris):
    model_path, link = tmp_path / "model.npz", tmp_path / "link.onnx"
    save(_fit(SoftmaxRegression(max_iter=20), *iris), model_path)
    link.symlink_to(model_path)
    before = model_path.read_bytes()
    for out in (model_path, tmp_path / "." / "model.npz", link):
        assert main(["export", str(model_path), str(out)]) == 1
        err = capsys.readouterr().err
        assert "it is the model file" in err and err.count("\n") == 1
    assert model_path.read_bytes() == before and link.is_symlink()
