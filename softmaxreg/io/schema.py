"""The JSON of model files and checkpoints, declared once and checked before any field is used.

A schema is built from a few field types — :class:`Int`, :class:`Real`, :class:`Bool`,
:class:`Text`, :class:`Null`, :class:`ListOf`, :class:`Obj`, :class:`Either` — and
:func:`check` walks a parsed document against it, raising one :class:`SchemaError` that names
the field (``history.loss[3]``) and what is wrong with it. :func:`parse_json` reads the text
first, with its size and nesting bounded, so that no document can exhaust the stack.

Model files (:data:`MODEL`) and checkpoints (:data:`CHECKPOINT`) share the network's
architecture (:data:`NETWORK`), the per-epoch history (:data:`EPOCHS`) and the settings of a
``softmaxreg train`` run (:data:`TRAINING`). What a schema cannot say about one field alone
(``n_features_in`` equals ``layer_sizes[0]``) is checked by the reader right after.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..activations import ACTIVATIONS
from ..preprocessing import METHODS as SCALINGS

MAX_DEPTH = 16  # nesting of any JSON document read (the files' own need 4)
MAX_SIZE = 2**31 - 1  # a layer's width, a feature count: what an index of the arrays can be
MAX_LAYERS = 64
MAX_NAME = 4096  # characters of a feature name or a label column's name
MAX_METADATA_CHARS = 16 * 2**20  # the JSON metadata of a model file or checkpoint

__all__ = ["CHECKPOINT", "EPOCHS", "HISTORY", "MODEL", "NETWORK", "OBJECTIVE", "TRAINING",
           "Bool", "Either", "Int", "ListOf", "Null", "Obj", "Real", "SchemaError", "Text",
           "check", "depth", "parse_json"]


class SchemaError(ValueError):
    """A document that does not fit its schema: ``where`` is the field, ``problem`` the rest."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where or 'the document'}: {problem}" if where else problem)
        self.where, self.problem = where, problem


# -- field types ----------------------------------------------------------------------------------
class Spec:
    """A field type: ``check(value, where)`` raises SchemaError unless ``value`` fits."""

    def check(self, value: Any, where: str) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _fail(where: str, spec: Spec, value: Any) -> SchemaError:
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return SchemaError(where, f"must be {spec.describe()}, got {shown[:80]}")


@dataclass(frozen=True)
class Int(Spec):
    """An integer (not a boolean) in [low, high]."""

    low: int = 0
    high: int = 2**63 - 1

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, int) or isinstance(value, bool) \
                or not self.low <= value <= self.high:
            raise _fail(where, self, value)

    def describe(self) -> str:
        return f"an integer from {self.low} to {self.high}"


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float (JSON 1e400 is a float: inf)
        return False


@dataclass(frozen=True)
class Real(Spec):
    """A number (not a boolean) in [low, high] (``open_low``: low excluded); never NaN, and
    infinite only if ``infinite`` (JSON's ``Infinity``, e.g. C = ∞ or a best loss not yet set)."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    infinite: bool = False

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
            raise _fail(where, self, value)
        if not self.infinite and not _finite(value):
            raise _fail(where, self, value)
        if not self.low <= value <= self.high or self.open_low and value == self.low:
            raise _fail(where, self, value)

    def describe(self) -> str:
        kind = "a number" if self.infinite else "a finite number"
        if math.isinf(self.low) and math.isinf(self.high):
            return kind
        if math.isinf(self.high):
            return f"{kind} {'>' if self.open_low else '≥'} {self.low:g}"
        return f"{kind} in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Bool(Spec):
    """true or false (not 0, 1 or "no")."""

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, bool):
            raise _fail(where, self, value)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text(Spec):
    """A string of at most ``max_len`` characters, one of ``choices`` when given."""

    choices: tuple[str, ...] | None = None
    max_len: int = MAX_NAME

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or len(value) > self.max_len \
                or self.choices is not None and value not in self.choices:
            raise _fail(where, self, value)

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"a string of at most {self.max_len} characters"


@dataclass(frozen=True)
class Null(Spec):
    """JSON null."""

    def check(self, value: Any, where: str) -> None:
        if value is not None:
            raise _fail(where, self, value)

    def describe(self) -> str:
        return "null"


@dataclass(frozen=True)
class Either(Spec):
    """Any one of ``options``."""

    options: tuple[Spec, ...]

    def check(self, value: Any, where: str) -> None:
        errors = []
        for option in self.options:
            try:
                option.check(value, where)
                return
            except SchemaError as exc:
                errors.append(exc)
        # the option of the value's kind says what is wrong inside it
        inside = [e for e in errors if len(e.where) > len(where)
                  or not e.problem.startswith("must be")]
        raise max(inside, key=lambda e: len(e.where)) if inside else _fail(where, self, value)

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.options)


def optional(spec: Spec) -> Either:
    """``spec`` or null."""
    return Either((spec, Null()))


@dataclass(frozen=True)
class ListOf(Spec):
    """A list of ``min_len`` to ``max_len`` items, each fitting ``item``."""

    item: Spec
    min_len: int = 0
    max_len: int = MAX_SIZE

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list) or not self.min_len <= len(value) <= self.max_len:
            raise _fail(where, self, value)
        for i, item in enumerate(value):
            self.item.check(item, f"{where}[{i}]")

    def describe(self) -> str:
        return f"a list of {self.min_len} to {self.max_len} items"


@dataclass(frozen=True)
class Obj(Spec):
    """A JSON object with the ``fields`` given (those in ``required`` must be present), and any
    other key only if ``extra`` says what its value must be (None: no other key allowed)."""

    fields: Mapping[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    extra: Spec | None = None

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _fail(where, self, value)
        missing = [k for k in self.required if k not in value]
        if missing:
            raise SchemaError(where, f"has no {', '.join(missing)}")
        for key, item in value.items():
            spec = self.fields.get(key, self.extra)
            if spec is None:
                raise SchemaError(where, f"has an unknown field {key!r}")
            spec.check(item, f"{where}.{key}" if where else key)

    def describe(self) -> str:
        return "a JSON object"


class AnyJson(Spec):
    """Any JSON value (its nesting is bounded by :func:`parse_json`)."""

    def check(self, value: Any, where: str) -> None:
        return None

    def describe(self) -> str:
        return "any JSON value"


def check(document: Any, spec: Spec) -> None:
    """Raise :class:`SchemaError` unless ``document`` fits ``spec``."""
    if depth(document) > MAX_DEPTH:
        raise SchemaError("", f"is nested more than {MAX_DEPTH} levels deep")
    spec.check(document, "")


# -- reading --------------------------------------------------------------------------------------
def depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:  # deeper is refused anyway: stop counting there
                stack.extend((child, level + 1) for child in children)
    return deepest


def parse_json(text: str, max_chars: int) -> Any:
    """The JSON document ``text``, refused (SchemaError) if longer than ``max_chars``, not JSON,
    or nested deeper than :data:`MAX_DEPTH`. json's parser stops a document nested a few
    thousand levels deep with RecursionError; that is caught here, like any other bad JSON."""
    if len(text) > max_chars:
        raise SchemaError("", f"is {len(text)} characters long, more than {max_chars}")
    try:
        document = json.loads(text)
    except RecursionError:
        raise SchemaError("", f"is nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError as exc:
        raise SchemaError("", f"is not valid JSON ({exc})") from None
    if depth(document) > MAX_DEPTH:
        raise SchemaError("", f"is nested more than {MAX_DEPTH} levels deep")
    return document


# -- the documents --------------------------------------------------------------------------------
FINITE = Real()
NON_NEGATIVE = Real(0.0)
SIZE = Int(1, MAX_SIZE)
NAME = Text()
LABEL_COLUMN = Either((Null(), Text(), Int(-MAX_SIZE, MAX_SIZE)))

#: The architecture of a network (``NetworkSpec.as_dict``).
NETWORK = {
    "layer_sizes": ListOf(SIZE, 2, MAX_LAYERS),
    "activation": Text(tuple(ACTIVATIONS)),
    "output": Text(("softmax", "sigmoid")),
    "dtype": Text(("float32", "float64")),
    "fit_intercept": Bool(),
}
_NETWORK_KEYS = tuple(NETWORK)

#: The per-epoch history of a minibatch run (``History.as_dict``).
EPOCHS = Obj({k: ListOf(FINITE) for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
             required=("loss", "accuracy", "val_loss", "val_accuracy"))

#: The history of a fit, in a model file or a history JSON: the objective per iteration of a
#: full-batch solver (:data:`OBJECTIVE`), or :data:`EPOCHS`.
OBJECTIVE = Obj({"objective": ListOf(FINITE)}, required=("objective",))
HISTORY = Either((OBJECTIVE, EPOCHS))

#: The settings of a ``softmaxreg train`` run (``workflow.TrainSettings`` less ``progress``);
#: a test keeps it in step with the dataclass.
TRAINING_FIELDS: dict[str, Spec] = {
    "dataset": NAME,
    "test": optional(NAME),
    "model": Text(("softmax", "network")),
    "hidden": ListOf(SIZE, 0, MAX_LAYERS),
    "activation": Text(tuple(ACTIVATIONS)),
    "solver": optional(Text(max_len=32)),
    "epochs": optional(Int(1, MAX_SIZE)),
    "batch_size": Int(1, MAX_SIZE),
    "lr": optional(Real(0.0, open_low=True)),
    "schedule": Text(max_len=32),
    "C": Real(0.0, open_low=True, infinite=True),
    "alpha": NON_NEGATIVE,
    "seed": Int(0, 2**32 - 1),
    "val_fraction": Real(0.0, 1.0),
    "early_stopping": Bool(),
    "scale": Text(SCALINGS),
    "label_column": LABEL_COLUMN,
    "header": Text(("auto", "yes", "no")),
    "empty": Text(("error", "drop", "zero")),
    "test_fraction": Real(0.0, 1.0, open_low=True),
    "data_dir": optional(NAME),
    "stream": Obj({"chunk_rows": SIZE, "n": Int(0)}, required=("chunk_rows", "n")),
}
TRAINING = Obj(TRAINING_FIELDS, required=("dataset", "model", "seed"),  # a model file keeps
               extra=AnyJson())                              # only the settings its run used

_SCORES = Obj({"accuracy": Real(0.0, 1.0), "log_loss": Real(0.0, infinite=True), "n": Int(0)},
              extra=AnyJson())
_PARAM = Either((Null(), Bool(), Real(infinite=True), Text(), ListOf(Int(-MAX_SIZE, MAX_SIZE)),
                 Obj(extra=Real())))

#: The metadata of a model file (``persistence``). Fields a caller adds (``metadata=``) are
#: any JSON, nested no deeper than :data:`MAX_DEPTH`.
MODEL = Obj({
    "format": Text(("softmaxreg-model",)),
    "format_version": Int(1),
    "library_version": Text(max_len=64),
    "kind": Text(max_len=64),
    "params": Obj(extra=_PARAM),
    **NETWORK,
    "n_features_in": SIZE,
    "feature_names": optional(ListOf(NAME)),
    "schema": Obj({"feature_names": ListOf(NAME, 1), "named": Bool(), "label": LABEL_COLUMN,
                   "index_base": Either((Null(), Int(0, 1)))},
                  required=("feature_names", "named", "label")),
    "n_iter": ListOf(Int(0)),
    "history": Either((Null(), *HISTORY.options)),
    "dataset": optional(Text()),
    "image_shape": optional(ListOf(SIZE, 2, 2)),
    "input_max_abs": NON_NEGATIVE,  # the largest |x| of the training features, when unscaled
    "training": optional(TRAINING),
    "metrics": Obj(extra=_SCORES),
    "fit_seconds": NON_NEGATIVE,
    "data_sha256": Text(max_len=64),
}, required=("format", "format_version", "kind", *_NETWORK_KEYS, "n_features_in"),
    extra=AnyJson())

#: The metadata of a checkpoint (``checkpoint``).
CHECKPOINT = Obj({
    "format": Text(("softmaxreg-checkpoint",)),
    "format_version": Int(1),
    "library_version": Text(max_len=64),
    "position": Obj({"epoch": Int(0), "step": Int(0), "total": FINITE, "correct": Int(0),
                     "best_loss": Real(infinite=True), "stale": Int(0), "finished": Bool()},
                    required=("epoch", "step", "total", "correct", "best_loss", "stale",
                              "finished")),
    "config": Obj({"epochs": Int(0, MAX_SIZE), "batch_size": SIZE, "l2": NON_NEGATIVE,
                   "seed": Int(0, 2**32 - 1), "early_stopping": Bool(),
                   "n_iter_no_change": SIZE, "tol": NON_NEGATIVE},
                  required=("epochs", "batch_size", "l2", "seed", "early_stopping",
                            "n_iter_no_change", "tol")),
    "network": Obj(NETWORK, required=_NETWORK_KEYS),
    "optimizer": Obj({"class": Text(max_len=64)}, required=("class",),
                     extra=Either((Bool(), Real()))),
    "history": EPOCHS,
    "data_sha256": Text(max_len=64),
    "settings": Obj({"training": TRAINING}, extra=AnyJson()),
}, required=("format", "format_version", "position", "config", "network", "optimizer",
             "history", "data_sha256", "settings"))


def unique_names(names: Sequence[str], where: str) -> None:
    """Raise SchemaError if a name appears twice (columns are matched by name)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SchemaError(where, f"names the column {name!r} twice")
        seen.add(name)
