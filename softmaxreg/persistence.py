"""Model files: one ``.npz`` per model, every array plus a JSON metadata entry; never pickle.

Layout of the archive (all members plain numeric or unicode arrays, read with allow_pickle=False):

    metadata        a 0-d unicode array holding a JSON object (format version, library version,
                    model kind, estimator parameters, architecture, classes' dtype, number of
                    features, preprocessing, training settings, final metrics, training-data hash)
    params          the flat parameter vector θ of the network (W[1], b[1], …, W[L], b[L])
    classes         the class labels, numeric or unicode
    scaling.<key>   the preprocessing state (see preprocessing.Scaling.get_state), if any

Files are written atomically (a temporary file in the same folder, then a rename), and loading
validates everything before building the estimator: a damaged file gets one ModelFileError that
names the file and the problem.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from ._version import __version__
from .exceptions import ModelFileError
from .io.npz import atomic_write_bytes, json_safe, read_model_npz
from .network import Network, NetworkSpec

FORMAT_VERSION = 1
_MAX_METADATA_BYTES = 16 * 2**20
MODEL_KINDS: dict[str, type] = {}  # the estimator classes a model file may hold, by name


def model_kind(cls: type) -> type:
    """Class decorator: files whose ``kind`` is ``cls.__name__`` load as ``cls`` (through its
    ``from_network``).  The estimators register themselves, so this floor never imports them."""
    MODEL_KINDS[cls.__name__] = cls
    return cls


def save(estimator, path: str | os.PathLike, *, scaling=None, metadata: dict | None = None) -> None:
    """Write a fitted estimator (and its preprocessing) to ``path`` atomically."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    net: Network = estimator.network_
    meta = {
        "format": "softmaxreg-model",
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "kind": type(estimator).__name__,
        "params": json_safe(estimator.get_params()),
        **net.spec.as_dict(),
        "n_features_in": int(estimator.n_features_in_),
        "feature_names": json_safe(list(getattr(estimator, "feature_names_in_", []))) or None,
        "n_iter": json_safe(np.ravel(getattr(estimator, "n_iter_", [0])).tolist()),
        "history": _history(estimator),
        **(metadata or {}),
    }
    arrays = {
        "metadata": np.array(json.dumps(meta)),
        "params": net.params,
        "classes": _classes_array(estimator.classes_),
    }
    if scaling is not None:
        arrays.update({f"scaling.{k}": v for k, v in scaling.get_state().items()})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


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
    if classes.dtype.kind in "biuf":
        return classes
    return classes.astype(str)  # object arrays of strings cannot be stored without pickle


# -- loading ------------------------------------------------------------------------------------
def load(path: str | os.PathLike):
    """The fitted estimator stored in ``path``."""
    return load_bundle(path)[0]


def load_bundle(path: str | os.PathLike):
    """``(estimator, scaling or None, metadata)`` from a model file, fully validated."""
    path = Path(path)
    members = read_model_npz(path)
    meta = _read_metadata(path, members)
    estimator = _build_estimator(path, meta, members)
    return estimator, _read_scaling(path, members, estimator.n_features_in_), meta


def _fail(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{path}: {problem}")


def _read_metadata(path: Path, members: dict[str, np.ndarray]) -> dict:
    raw = members.get("metadata")
    if raw is None or raw.dtype.kind != "U" or raw.shape != ():
        raise _fail(path, "not a softmaxreg model file (no metadata entry)")
    text = str(raw)
    if len(text) > _MAX_METADATA_BYTES:
        raise _fail(path, "metadata entry is too large")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != "softmaxreg-model":
        raise _fail(path, "not a softmaxreg model file (wrong format tag)")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise _fail(path, "metadata has no integer format_version")
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"written in model format {version} by softmaxreg {meta.get('library_version')}; "
            f"this version reads format {FORMAT_VERSION} — upgrade softmaxreg",
        )
    return meta


def _expect(path: Path, ok: bool, problem: str) -> None:
    if not ok:
        raise _fail(path, problem)


def _build_estimator(path: Path, meta: dict, members: dict[str, np.ndarray]):
    kind = meta.get("kind")
    _expect(path, isinstance(kind, str) and kind in MODEL_KINDS, f"unknown model kind {kind!r}")
    sizes = meta.get("layer_sizes")
    _expect(path, isinstance(sizes, list) and len(sizes) >= 2
            and all(isinstance(s, int) and 0 < s < 2**31 for s in sizes), "bad layer_sizes")
    _expect(path, meta.get("output") in ("softmax", "sigmoid"), "bad output layer")
    _expect(path, meta.get("dtype") in ("float32", "float64"), "bad dtype")
    # the size the architecture implies is checked against the stored vector before the network
    # allocates it: layer_sizes [2**31 - 1, 2**31 - 1] must not ask for 37 exabytes
    n_params = sum(d_out * (d_in + 1) for d_in, d_out in zip(sizes[:-1], sizes[1:]))
    params = members.get("params")
    _expect(path, params is not None and params.ndim == 1 and params.dtype.kind == "f"
            and params.size == n_params, f"params must be a float vector of {n_params} values")
    _expect(path, bool(np.all(np.isfinite(params))), "params contain NaN or infinity")
    try:
        net = NetworkSpec(tuple(sizes), meta.get("activation", "identity"), meta["output"],
                          meta["dtype"], bool(meta.get("fit_intercept", True))).build(params)
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"bad architecture ({exc})") from None
    classes = members.get("classes")
    n_classes = 2 if net.output == "sigmoid" else sizes[-1]
    _expect(path, classes is not None and classes.ndim == 1 and classes.size == n_classes
            and classes.dtype.kind in "biufU", f"classes must be a vector of {n_classes} labels")
    _expect(path, meta.get("n_features_in") == sizes[0], "n_features_in does not match W[1]")

    params_meta = meta.get("params", {})
    _expect(path, isinstance(params_meta, dict), "estimator parameters must be a JSON object")
    cls = MODEL_KINDS[kind]
    valid = cls().get_params()
    names = meta.get("feature_names")
    names = names if isinstance(names, list) and len(names) == sizes[0] else None
    try:  # what fit would check: C > 0, known solver, ...
        return cls.from_network(net, classes, feature_names=names,
                                **{k: _param(v) for k, v in params_meta.items() if k in valid})
    except (ValueError, TypeError) as exc:
        raise _fail(path, f"bad estimator parameters ({exc})") from None


def _param(value):
    return tuple(value) if isinstance(value, list) else value


def _read_scaling(path: Path, members: dict[str, np.ndarray], n_features: int):
    state = {k.split(".", 1)[1]: v for k, v in members.items() if k.startswith("scaling.")}
    if not state:
        return None
    from .preprocessing import Scaling

    try:
        scaling = Scaling.from_state(state)
    except (ValueError, KeyError, TypeError) as exc:
        raise _fail(path, f"bad preprocessing state ({exc})") from None
    _expect(path, scaling.n_features == n_features,
            f"the preprocessing scales {scaling.n_features} features, the model has {n_features}")
    return scaling
