"""ONNX export: a fitted model as a graph that runs wherever an ONNX runtime does.

The graph has one input ``X``, float32 (n, d), of **raw** features, and computes

    A[0] = (X − mean) / scale                   each stored scaling, in float32 as Scaling does
    A[l] = σ(A[l-1] W[l] + b[l])                l = 1..L−1 (Gemm, then the hidden activation)
    Z    = A[L-1] W[L] + b[L]                   the logits, (n, K) or (n, 1)
    probabilities = softmax(Z), or [σ(−z), σ(z)] for one sigmoid unit        (n, K) float32
    label         = classes[argmax_k Z], or classes[z > 0]                    (n,)

with ``W[l]`` of shape (d_in, d_out) (scikit-learn's ``coefs_``), in the estimator's own float
type.  ``label`` is int64 for integer classes, a string tensor for string classes (float and
bool classes keep their types: double, bool), so it equals ``predict``'s labels.

:func:`build_graph` is a function of plain arrays; :func:`to_onnx` only finds those arrays in an
estimator, an (estimator, scaling) pair or a scikit-learn ``Pipeline``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._version import __version__
from .activations import LEAKY_SLOPE
from .exceptions import SoftmaxRegError

if TYPE_CHECKING:
    import onnx

__all__ = ["to_onnx", "build_graph", "export_file", "DEFAULT_OPSET", "MissingDependencyError"]

DEFAULT_OPSET = 17
_MIN_OPSET = 13  # Softmax normalises over one axis (not the flattened trailing axes) from 13 on
# hidden activations as ONNX operators: (op_type, attributes); identity adds no node
_ACTIVATION_OPS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "relu": ("Relu", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": LEAKY_SLOPE}),
    "tanh": ("Tanh", {}),
    "sigmoid": ("Sigmoid", {}),
    "identity": None,
}
_SUPPORTED = ("a fitted softmaxreg SoftmaxRegression or SoftmaxNetwork, alone, with its "
              "scaling as scaling=, or as the last step of a scikit-learn Pipeline whose other "
              "steps are softmaxreg Scaling or FeatureScaler (what softmaxreg.load returns), or "
              "scikit-learn's StandardScaler, MaxAbsScaler or MinMaxScaler(clip=False)")

Layer = tuple[NDArray[np.floating], NDArray[np.floating]]  # W (d_in, d_out), b (d_out,)
Affine = tuple[NDArray[np.floating], NDArray[np.floating]]  # mean (d,), scale (d,)


class MissingDependencyError(SoftmaxRegError, ImportError):
    """An optional package that this feature needs is not installed."""


def export_file(model_path, onnx_path, *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Write the graph of the model file ``model_path`` (what :func:`softmaxreg.load` gives:
    the estimator, behind its stored scaling) to ``onnx_path`` atomically; returns the graph.
    An ``onnx_path`` that is the model file itself (same path, or a link to it) is refused."""
    from .persistence import atomic_write_bytes, load

    try:
        same = os.path.samefile(model_path, onnx_path)
    except OSError:  # one of them does not exist (yet)
        same = Path(model_path).resolve() == Path(onnx_path).resolve()
    if same:
        raise ValueError(f"cannot write the ONNX graph to {onnx_path}: it is the model file "
                         f"{model_path}; give another output file")
    proto = to_onnx(load(model_path), opset=opset)
    atomic_write_bytes(onnx_path, proto.SerializeToString())
    return proto


def to_onnx(model, scaling=None, *, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The ONNX graph of a fitted model, taking raw float32 features ``X`` (n, d).

    ``model`` is a fitted :class:`~softmaxreg.SoftmaxRegression` or
    :class:`~softmaxreg.SoftmaxNetwork`, with the preprocessing it was trained behind passed as
    ``scaling`` (a fitted :class:`softmaxreg.preprocessing.Scaling`, e.g. the second item of
    ``persistence.load_bundle``), or a ``sklearn.pipeline.Pipeline`` whose last step is such an
    estimator and whose earlier steps are scalings.  Outputs: ``label`` (n,) and
    ``probabilities`` (n, K) float32.  Needs the optional packages ``pip install
    'softmaxreg[onnx]'``.

    >>> import onnxruntime as ort                                   # doctest: +SKIP
    >>> proto = softmaxreg.to_onnx(softmaxreg.load("model.npz"))   # Pipeline(scaling, model)
    >>> session = ort.InferenceSession(proto.SerializeToString())
    >>> label, proba = session.run(None, {"X": X_raw.astype(np.float32)})
    """
    estimator, steps = _unpack(model, scaling)
    layers, activation, output = _network_of(estimator)
    for mean, _ in steps:
        if len(mean) != layers[0][0].shape[0]:
            raise ValueError(f"the scaling transforms {len(mean)} features, but the model was "
                             f"fitted with {layers[0][0].shape[0]}")
    names = getattr(model, "feature_names_in_", None)  # a Pipeline's are its first step's
    return build_graph(layers, activation, output, estimator.classes_, steps, opset=opset,
                       feature_names=None if names is None else [str(n) for n in names])


def build_graph(layers: Sequence[Layer], activation: str, output: str, classes: NDArray[Any],
                scalings: Sequence[Affine] = (), *, opset: int = DEFAULT_OPSET,
                feature_names: Sequence[str] | None = None) -> onnx.ModelProto:
    """The graph of the module docstring from plain arrays.

    ``layers`` = [(W[1], b[1]), …, (W[L], b[L])] with W[l] (d_in, d_out); ``activation`` is the
    hidden layers' (a name of :mod:`softmaxreg.activations`); ``output`` is "softmax" (K units)
    or "sigmoid" (one unit, K = 2); ``classes`` (K,); ``scalings`` [(mean, scale)] applied in
    order, each x' = (x − mean) / scale.
    """
    onnx, helper = _onnx()
    if not _MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"opset must be between {_MIN_OPSET} and "
                         f"{onnx.defs.onnx_opset_version()} (this onnx), got {opset}")
    if activation not in _ACTIVATION_OPS:
        raise ValueError(f"cannot export activation {activation!r}: supported are "
                         f"{', '.join(_ACTIVATION_OPS)}")
    g = _Graph(onnx, np.dtype(layers[0][0].dtype))
    A = g.scaled_input(layers[0][0].shape[0], scalings)
    for l, (W, b) in enumerate(layers):
        A = g.node("Gemm", [A, g.const(W), g.const(b)])
        if l < len(layers) - 1 and _ACTIVATION_OPS[activation] is not None:
            op, attributes = _ACTIVATION_OPS[activation]
            A = g.node(op, [A], **attributes)
    g.outputs(A, output, _classes_tensor(onnx, classes))
    graph = helper.make_graph(g.nodes, "softmaxreg", g.inputs, g.graph_outputs, g.initializers)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="softmaxreg",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    if feature_names is not None:
        helper.set_model_props(proto, {"feature_names": json.dumps(list(feature_names))})
    onnx.checker.check_model(proto, full_check=True)
    return proto


class _Graph:
    """Nodes and constants of the graph being built, with generated value names."""

    def __init__(self, onnx, dtype: np.dtype) -> None:
        self.onnx, self.dtype = onnx, dtype
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.graph_outputs: list = []

    def _name(self, stem: str) -> str:
        return f"{stem}_{len(self.nodes) + len(self.initializers)}"

    def const(self, value: NDArray[Any], dtype: np.dtype | None = None) -> str:
        name = self._name("const")
        array = np.ascontiguousarray(value, dtype=dtype or self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], name: str | None = None, **attributes) -> str:
        out = name or self._name(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], **attributes))
        return out

    def scaled_input(self, d: int, scalings: Sequence[Affine]) -> str:
        """``X`` (n, d) float32 through each (X − mean) / scale in float32 — what
        ``Scaling.transform`` computes — then cast to the weights' float type."""
        TensorProto = self.onnx.TensorProto
        self.inputs.append(self.onnx.helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                                   ["N", d]))
        A = "X"
        for mean, scale in scalings:
            if np.any(mean != 0):
                A = self.node("Sub", [A, self.const(mean, np.float32)])
            if np.any(scale != 1):
                A = self.node("Div", [A, self.const(scale, np.float32)])
        if self.dtype != np.float32:
            A = self.node("Cast", [A], to=self.onnx.helper.np_dtype_to_tensor_dtype(self.dtype))
        return A

    def outputs(self, Z: str, output: str, classes) -> None:
        """``probabilities`` (n, K) float32 and ``label`` (n,) from the logits Z."""
        helper, TensorProto = self.onnx.helper, self.onnx.TensorProto
        if output == "softmax":
            P = self.node("Softmax", [Z], axis=1)
            index = self.node("ArgMax", [Z], axis=1, keepdims=0)  # first maximum, as NumPy
        else:  # one sigmoid unit: 1 − σ(z) as σ(−z), which keeps its digits where σ(z) ≈ 1
            P = self.node("Concat", [self.node("Sigmoid", [self.node("Neg", [Z])]),
                                     self.node("Sigmoid", [Z])], axis=1)
            zero = self.const(np.zeros(1))
            positive = self.node("Cast", [self.node("Greater", [Z, zero])], to=TensorProto.INT64)
            index = self.node("Reshape", [positive, self.const([-1], np.int64)])
        self.node("Cast", [P], name="probabilities", to=TensorProto.FLOAT)
        self.initializers.append(classes)
        self.node("Gather", [classes.name, index], name="label", axis=0)
        K = classes.dims[0]
        self.graph_outputs += [
            helper.make_tensor_value_info("label", classes.data_type, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", K]),
        ]


def _classes_tensor(onnx, classes: NDArray[Any]):
    """The class labels as a constant tensor: int64, string, double or bool."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "OUS" and all(isinstance(c, (str, bytes, np.str_)) for c in classes):
        values = [c if isinstance(c, bytes) else str(c).encode("utf-8") for c in classes]
        return onnx.helper.make_tensor("classes", onnx.TensorProto.STRING, [len(values)], values)
    if classes.dtype.kind in "iu":
        if classes.dtype.kind == "u" and classes.max() > np.iinfo(np.int64).max:
            raise ValueError("class labels above 2**63 - 1 do not fit the int64 label output")
        return onnx.numpy_helper.from_array(classes.astype(np.int64), "classes")
    if classes.dtype.kind in "fb":
        return onnx.numpy_helper.from_array(classes.astype(np.float64 if classes.dtype.kind
                                                           == "f" else bool), "classes")
    raise TypeError(f"cannot export class labels of dtype {classes.dtype}: supported are "
                    "integers, strings, floats and booleans")


def _unpack(model, scaling) -> tuple[Any, list[Affine]]:
    """(estimator, [(mean, scale), …]) from an estimator (+ scaling) or a Pipeline."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        if scaling is not None:
            raise ValueError("pass the scaling either inside the Pipeline or as scaling=, "
                             "not both")
        steps = [step for _, step in model.steps[:-1] if step not in (None, "passthrough")]
        return model.steps[-1][1], [_affine(step) for step in steps]
    return model, [] if scaling is None else [_affine(scaling)]


def _affine(step) -> Affine:
    """(mean, scale) of a per-feature scaling x' = (x − mean) / scale: a softmaxreg Scaling, or
    a step :func:`softmaxreg.persistence.scaling_of` converts (FeatureScaler, StandardScaler,
    MaxAbsScaler, MinMaxScaler)."""
    from .exceptions import ModelFileError
    from .persistence import scaling_of
    from .preprocessing import Scaling

    try:
        scaling = step if isinstance(step, Scaling) else scaling_of(step)
    except ModelFileError:
        raise TypeError(f"cannot export a preprocessing step of type {type(step).__name__}: "
                        f"supported are {_SUPPORTED}") from None
    state = scaling.get_state()
    return np.asarray(state["mean"], float), np.asarray(state["scale"], float)


def _network_of(estimator) -> tuple[list[Layer], str, str]:
    """(layers, hidden activation, output) of a fitted softmaxreg estimator."""
    from sklearn.utils.validation import check_is_fitted

    from .estimators import SoftmaxNetwork, SoftmaxRegression

    if isinstance(estimator, SoftmaxRegression):
        check_is_fitted(estimator)
        W, b = estimator.coef_.T, estimator.intercept_  # (d, K) or (d, 1)
        return [(W, b)], "identity", "sigmoid" if W.shape[1] == 1 else "softmax"
    if isinstance(estimator, SoftmaxNetwork):
        check_is_fitted(estimator)
        layers = list(zip(estimator.coefs_, estimator.intercepts_))
        output = "sigmoid" if estimator.out_activation_ == "logistic" else "softmax"
        return layers, estimator.activation, output
    raise TypeError(f"cannot export a {type(estimator).__name__}: supported is {_SUPPORTED}")


def _onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError:
        raise MissingDependencyError("ONNX export needs the optional package onnx: "
                                     "pip install 'softmaxreg[onnx]'") from None
    return onnx, onnx.helper
