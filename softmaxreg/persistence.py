"""Model files: one ``.npz`` per model, every array plus a JSON metadata entry; never pickle.

Layout of the archive (all members plain numeric or unicode arrays, read with allow_pickle=False):

    metadata        a 0-d unicode array holding a JSON object (format version, library version,
                    model kind, estimator parameters, architecture, number of features, the
                    data's schema, training settings, final metrics, training-data hash;
                    ``input_max_abs``, the largest |x| of the training features, when the
                    file holds no scaling: pictures of digits are made in that range)
    params          the flat parameter vector θ of the network (W[1], b[1], …, W[L], b[L])
    classes         the class labels, numeric or unicode, unique and sorted (np.unique's order)
    scaling.<key>   the preprocessing state (see preprocessing.Scaling.get_state), if any

The model remembers its inputs: ``metadata["schema"]`` holds the features' names (generated as
``x0..x{d-1}`` when the data had none), whether they are the data's own, and the label column
(format 2; format 1 files are read with generated names). :func:`load` gives back an object
that takes raw features: the estimator, or, when the file holds a scaling, a scikit-learn
``Pipeline`` of that scaling (:class:`~softmaxreg.preprocessing.FeatureScaler`) and the
estimator.

Files are written atomically (a temporary file in the same folder, then a rename), and loading
checks everything before building the estimator — the metadata against
:data:`softmaxreg.io.schema.MODEL`, then the arrays against it — so that a damaged or hostile
file gets one ModelFileError that names the file and the problem.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from ._array_api import to_numpy
from ._version import __version__
from .exceptions import ModelFileError
from .io.dataset import DataSchema, generated_names
from .io.npz import atomic_write_bytes, json_safe, read_model_npz
from .io.schema import (
    MAX_METADATA_CHARS,
    MODEL,
    SchemaError,
    check,
    parse_json,
    unique_names,
)
from .network import Network, NetworkSpec
from .preprocessing import FeatureScaler, Scaling

FORMAT_VERSION = 2  # 2: the data's schema (feature names, label column)
_BOUNDED = ("tanh", "sigmoid")  # hidden activations whose outputs stay in [-1, 1]
MODEL_KINDS: dict[str, type] = {}  # the estimator classes a model file may hold, by name
_MEMBERS = ("metadata", "params", "classes", "scaling.")  # what loading reads; others are ignored


def model_kind(cls: type) -> type:
    """Class decorator: files whose ``kind`` is ``cls.__name__`` load as ``cls`` (through its
    ``from_network``).  The estimators register themselves, so this floor never imports them."""
    MODEL_KINDS[cls.__name__] = cls
    return cls


def save(estimator, path: str | os.PathLike, *, scaling: Scaling | None = None,
         metadata: dict | None = None, schema: DataSchema | None = None) -> None:
    """Write a fitted estimator (and its preprocessing) to ``path`` atomically.

    ``estimator``: a fitted SoftmaxRegression or SoftmaxNetwork, or a scikit-learn ``Pipeline``
    of one scaler and such an estimator (``make_pipeline(StandardScaler(),
    SoftmaxRegression())``; see :func:`scaling_of` for the scalers), stored as the scaling
    :func:`load` puts back in front of the estimator; ``scaling``: the estimator's scaling,
    when it is not in a Pipeline. ``schema``: the columns it was trained on (default: the
    ``feature_names_in_`` of the Pipeline's or the estimator's fit, else generated names);
    ``metadata``: more JSON fields.
    """
    from sklearn.utils.validation import check_is_fitted

    estimator, scaling, schema = _unwrap(estimator, scaling, schema)
    check_is_fitted(estimator)
    if scaling is not None and scaling.n_features != estimator.n_features_in_:  # else unloadable
        raise ValueError(f"the scaling takes {scaling.n_features} features, but the model was "
                         f"fitted with {estimator.n_features_in_}")
    net: Network = estimator.network_.to_numpy()  # (a model fitted on a device: a host copy)
    schema = schema or default_schema(estimator)
    if schema.n_features != estimator.n_features_in_:
        raise ValueError(f"the schema names {schema.n_features} features, but the model was "
                         f"fitted with {estimator.n_features_in_}")
    meta = {
        "format": "softmaxreg-model",
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "kind": type(estimator).__name__,
        "params": json_safe(estimator.get_params()),
        **net.spec.as_dict(),
        "n_features_in": int(estimator.n_features_in_),
        "feature_names": list(schema.feature_names) if schema.named else None,
        "schema": {"feature_names": list(schema.feature_names), "named": schema.named,
                   "label": schema.label, "index_base": schema.index_base},
        "n_iter": json_safe(np.ravel(to_numpy(getattr(estimator, "n_iter_", [0]))).tolist()),
        "history": _history(estimator),
        **_input_range(estimator, scaling),
        **(metadata or {}),
    }
    arrays = {
        "metadata": np.array(json.dumps(meta)),
        "params": net.params,
        "classes": _classes_array(to_numpy(estimator.classes_)),
    }
    if scaling is not None:
        arrays.update({f"scaling.{k}": v for k, v in scaling.get_state().items()})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


_SAVABLE = ("a model file holds a fitted {kinds}, alone or in a Pipeline behind one scaler: "
            "scikit-learn's StandardScaler, MaxAbsScaler or MinMaxScaler(clip=False), or the "
            "FeatureScaler that softmaxreg.load returns")


def _unwrap(model, scaling, schema):
    """(estimator, scaling, schema) of what :func:`save` is given: a registered estimator, or
    a ``Pipeline`` of one scaler (:func:`scaling_of`) and the estimator; the columns' names
    are the scaler's ``feature_names_in_`` when it was fitted on named columns."""
    steps = [step for _, step in getattr(model, "steps", ())]
    if steps:
        if scaling is not None:
            raise ValueError("pass the scaling either inside the Pipeline or as scaling=, "
                             "not both")
        if len(steps) != 2 or type(steps[1]).__name__ not in MODEL_KINDS:
            raise ModelFileError(f"cannot save a Pipeline of "
                                 f"{', '.join(type(s).__name__ for s in steps)}: {_savable()}")
        scaler, model = steps
        scaling = scaling_of(scaler)
        names = getattr(scaler, "feature_names_in_", None)
        if schema is None and names is not None:
            schema = DataSchema(tuple(str(n) for n in names))
    if type(model).__name__ not in MODEL_KINDS:
        raise ModelFileError(f"cannot save a {type(model).__name__}: {_savable()}")
    return model, scaling, schema


def _savable() -> str:
    return _SAVABLE.format(kinds=" or ".join(MODEL_KINDS))


def scaling_of(scaler) -> Scaling:
    """The :class:`Scaling` ``X' = (X − mean) / scale`` (n, d) -> (n, d) that transforms as the
    fitted ``scaler`` does: a FeatureScaler's own; scikit-learn's StandardScaler, (X − mean_) /
    scale_ (each left out by with_mean / with_std=False); MaxAbsScaler, X / scale_; or
    MinMaxScaler, X · scale_ + min_ = (X − (−min_ / scale_)) / (1 / scale_), with clip=False
    (clipping is not an affine map). ModelFileError for any other step."""
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, StandardScaler
    from sklearn.utils.validation import check_is_fitted

    known = (FeatureScaler, StandardScaler, MaxAbsScaler, MinMaxScaler)
    if not isinstance(scaler, known) or isinstance(scaler, MinMaxScaler) and scaler.clip:
        shown = "MinMaxScaler(clip=True)" if isinstance(scaler, MinMaxScaler) else \
            type(scaler).__name__
        raise ModelFileError(f"cannot save a Pipeline behind a {shown}: {_savable()}")
    check_is_fitted(scaler)
    if isinstance(scaler, FeatureScaler):
        return scaler.scaling_
    d = scaler.n_features_in_
    if isinstance(scaler, StandardScaler):
        mean = scaler.mean_ if scaler.with_mean else np.zeros(d)
        scale = scaler.scale_ if scaler.with_std else np.ones(d)
        method = "standard" if scaler.with_mean or scaler.with_std else "none"
    elif isinstance(scaler, MaxAbsScaler):
        mean, scale, method = np.zeros(d), scaler.scale_, "maxabs"
    else:  # min-max has no method of its own: a refit of the loaded Pipeline standardises
        mean, scale, method = -scaler.min_ / scaler.scale_, 1.0 / scaler.scale_, "standard"
    return Scaling.from_state({"method": np.array(method), "mean": mean, "scale": scale})


def _input_range(estimator, scaling: Scaling | None) -> dict:
    """``{"input_max_abs": the largest |x| of the training features}``, when the estimator
    recorded it and takes the file's raw features (no scaling in front: behind one, it is the
    range of the scaled features, not of what the file takes)."""
    top = getattr(estimator, "_input_max_abs_", None)
    return {"input_max_abs": float(top)} if top is not None and scaling is None else {}


def default_schema(estimator) -> DataSchema:
    """The columns of a fitted estimator: its ``feature_names_in_``, or generated names."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return DataSchema(tuple(generated_names(int(estimator.n_features_in_))), named=False)
    return DataSchema(tuple(str(n) for n in names))


def _history(estimator) -> dict | None:
    """The fit's curve: a minibatch fit's per-epoch ``history_`` (loss, accuracy, val_loss,
    val_accuracy), else a full-batch solver's ``{"objective": J per iteration}``."""
    curve = [float(J) for J in getattr(estimator, "loss_curve_", None) or ()]
    history = getattr(estimator, "history_", None)
    if history is not None and history.loss == curve:  # not a later full-batch refit's
        return history.as_dict()
    return {"objective": curve} if curve else None


def _classes_array(classes: np.ndarray) -> np.ndarray:
    classes = np.asarray(classes)
    if classes.dtype.kind == "b":
        raise ValueError("boolean class labels cannot be stored in a model file: fit on "
                         "integer (y.astype(int)) or string labels")
    if classes.dtype.kind in "iuf":
        return classes
    return classes.astype(str)  # object arrays of strings cannot be stored without pickle


# -- loading ------------------------------------------------------------------------------------
def load(path: str | os.PathLike):
    """What ``path`` holds, ready for raw features: the fitted estimator, or a scikit-learn
    ``Pipeline([("scaling", FeatureScaler), ("model", estimator)])`` when the file holds the
    scaling its features were trained behind (as files written by ``softmaxreg train`` and
    saved Pipelines do), the scaling's output in the estimator's float type.

    Named columns (a CSV header, DataFrame columns) come back as ``feature_names_in_`` of the
    first step, so that a DataFrame is checked by scikit-learn as at fit time.
    """
    from sklearn.pipeline import Pipeline

    estimator, scaling, meta = load_bundle(path)
    schema = model_schema(meta)
    names = list(schema.feature_names) if schema.named else None
    if scaling is None:
        if names is not None:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
        return estimator
    return Pipeline([("scaling", FeatureScaler.from_scaling(scaling, names, meta["dtype"])),
                     ("model", estimator)])


def load_bundle(path: str | os.PathLike):
    """``(estimator, scaling or None, metadata)`` from a model file, fully validated. The
    estimator takes the scaled features (and has no ``feature_names_in_``); the data's schema
    is :func:`model_schema` of the metadata."""
    path = Path(path)
    members = read_model_npz(path, _MEMBERS)
    meta = _read_metadata(path, members)
    estimator = _build_estimator(path, meta, members)
    return estimator, _read_scaling(path, members, estimator.n_features_in_), meta


def model_schema(meta: dict) -> DataSchema:
    """The columns the model of this (validated) metadata was trained on. Format 1 files kept
    only the names of named columns, and the label column in the training settings."""
    stored = meta.get("schema")
    if stored is not None:
        return DataSchema(tuple(stored["feature_names"]), stored["named"], stored["label"],
                          stored.get("index_base"))
    names = meta.get("feature_names")
    label = (meta.get("training") or {}).get("label_column")
    if names:
        return DataSchema(tuple(names), True, label)
    return DataSchema(tuple(generated_names(meta["n_features_in"])), False, label)


def _fail(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{path}: {problem}")


def _read_metadata(path: Path, members: dict[str, np.ndarray]) -> dict:
    """The metadata JSON, checked against :data:`~softmaxreg.io.schema.MODEL` and for the
    agreements between its fields."""
    raw = members.get("metadata")
    if raw is None or raw.dtype.kind != "U" or raw.shape != ():
        raise _fail(path, "not a softmaxreg model file (no metadata entry)")
    try:
        meta = parse_json(str(raw), MAX_METADATA_CHARS)
    except SchemaError as exc:
        raise _fail(path, f"metadata {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != "softmaxreg-model":
        raise _fail(path, "not a softmaxreg model file (wrong format tag)")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _fail(path, "metadata has no integer format_version")
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"written in model format {version} by softmaxreg {meta.get('library_version')}; "
            f"this version reads format {FORMAT_VERSION} — upgrade softmaxreg",
        )
    try:
        check(meta, MODEL)
        _check_agreement(meta)
    except SchemaError as exc:
        raise _fail(path, f"bad metadata: {exc}") from None
    return meta


def _check_agreement(meta: dict) -> None:
    """What the schema cannot say field by field: the fields that describe the same thing."""
    sizes, kind = meta["layer_sizes"], meta["kind"]
    if kind not in MODEL_KINDS:
        raise SchemaError("kind", f"unknown model kind {kind!r}")
    d = sizes[0]
    if meta["n_features_in"] != d:
        raise SchemaError("n_features_in", f"is {meta['n_features_in']}, but W[1] takes {d}")
    for key in ("feature_names", "schema.feature_names"):
        names = meta.get("schema", {}).get("feature_names") if "." in key else meta.get(key)
        if names is not None:
            if len(names) != d:
                raise SchemaError(key, f"names {len(names)} features, the model takes {d}")
            unique_names(names, key)
    shape = meta.get("image_shape")
    if shape is not None and shape[0] * shape[1] != d:
        raise SchemaError("image_shape", f"{shape} does not hold the model's {d} features")
    if (sizes[-1] == 1) != (meta["output"] == "sigmoid"):
        raise SchemaError("layer_sizes", f"a {meta['output']} output of {sizes[-1]} units "
                                         "(two classes: one sigmoid unit; more: softmax)")
    _check_params(meta.get("params", {}), meta)


def _check_params(params: dict, meta: dict) -> None:
    """The estimator's parameters must describe the stored network."""
    sizes = meta["layer_sizes"]
    expected = {"dtype": (meta["dtype"], "auto")}
    if meta["kind"] == "SoftmaxRegression":
        if len(sizes) != 2:
            raise SchemaError("layer_sizes", "softmax regression has no hidden layer")
        expected["fit_intercept"] = (meta["fit_intercept"],)
    else:
        hidden = sizes[1:-1]
        expected["hidden_layer_sizes"] = (hidden, *hidden[:1]) if len(hidden) == 1 else (hidden,)
        if len(sizes) > 2:
            expected["activation"] = (meta["activation"],)
    for key, allowed in expected.items():
        if key in params and params[key] not in allowed:
            raise SchemaError(f"params.{key}", f"is {params[key]!r}, but the stored network "
                                               f"has {allowed[0]!r}")


def _expect(path: Path, ok: bool, problem: str) -> None:
    if not ok:
        raise _fail(path, problem)


def _build_estimator(path: Path, meta: dict, members: dict[str, np.ndarray]):
    sizes = meta["layer_sizes"]
    # the size the architecture implies is checked against the stored vector before the network
    # allocates it: layer_sizes [2**31 - 1, 2**31 - 1] must not ask for 37 exabytes
    n_params = sum(d_out * (d_in + 1) for d_in, d_out in zip(sizes[:-1], sizes[1:]))
    params = members.get("params")
    _expect(path, params is not None and params.ndim == 1 and params.dtype.kind == "f"
            and params.size == n_params, f"params must be a float vector of {n_params} values")
    _expect(path, bool(np.all(np.isfinite(params))), "params contain NaN or infinity")
    try:
        net = NetworkSpec(tuple(sizes), meta["activation"], meta["output"], meta["dtype"],
                          meta["fit_intercept"]).build(params)
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"bad architecture ({exc})") from None
    bound, limit = _logit_bound(net), float(np.finfo(net.dtype).max) ** 0.5
    _expect(path, bound <= limit, f"weights too large: inputs in [-1, 1] could reach logits of "
                                  f"{bound:.3g} (at most {limit:.3g} keep predictions finite)")
    classes = _check_classes(path, members.get("classes"),
                             2 if net.output == "sigmoid" else sizes[-1])
    cls = MODEL_KINDS[meta["kind"]]
    valid = cls().get_params()
    try:  # what fit would check: C > 0, known solver, ...
        estimator = cls.from_network(  # input_max_abs kept when the model is saved again
            net, classes, input_max_abs=meta.get("input_max_abs"),
            **{k: _param(v) for k, v in meta.get("params", {}).items() if k in valid})
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"bad estimator parameters ({exc})") from None
    return estimator


def _logit_bound(net: Network) -> float:
    """An upper bound of |Z[L]| over inputs with every |x_j| ≤ 1, by interval arithmetic in
    float64: |A[l]| ≤ |W[l]| |A[l-1]| + |b[l]|, and ≤ 1 after tanh or sigmoid (relu, leaky
    relu and identity do not increase magnitudes). inf when it overflows."""
    a = np.ones(net.layer_sizes[0])
    with np.errstate(over="ignore", invalid="ignore"):
        for l, (W, b) in enumerate(zip(net.W, net.b)):
            a = np.abs(np.asarray(W, np.float64)) @ a + np.abs(np.asarray(b, np.float64))
            if l < len(net.W) - 1 and net.activation in _BOUNDED:
                a = np.minimum(a, 1.0)
        bound = float(np.max(a))
    return bound if np.isfinite(bound) else float("inf")


def _check_classes(path: Path, classes, n_classes: int) -> np.ndarray:
    """Class labels as the estimator keeps them: n_classes numbers or strings, unique and in
    np.unique's order (predict maps output unit k to classes[k]); no NaN, no booleans."""
    _expect(path, classes is not None and classes.ndim == 1 and classes.size == n_classes
            and classes.dtype.kind in "iufU",
            f"classes must be a vector of {n_classes} integer, float or string labels")
    _expect(path, classes.dtype.kind != "f" or bool(np.all(np.isfinite(classes))),
            "classes contain NaN or infinity")
    _expect(path, np.array_equal(np.unique(classes), classes),
            f"classes must be unique and sorted, got {classes.tolist()[:10]}")
    return classes


def _param(value):
    return tuple(value) if isinstance(value, list) else value


def _read_scaling(path: Path, members: dict[str, np.ndarray], n_features: int):
    state = {k.split(".", 1)[1]: v for k, v in members.items() if k.startswith("scaling.")}
    if not state:
        return None
    try:
        scaling = Scaling.from_state(state)
    except (ValueError, KeyError, TypeError) as exc:
        raise _fail(path, f"bad preprocessing state ({exc})") from None
    _expect(path, scaling.n_features == n_features,
            f"the preprocessing scales {scaling.n_features} features, the model has {n_features}")
    return scaling
