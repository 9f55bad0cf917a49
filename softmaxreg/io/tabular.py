"""Text tables of examples: CSV/TSV (numeric features and one label column) and svmlight.

Each format is parsed by one set of functions, used whole by ``read_csv``/``read_svmlight`` and
chunk by chunk by :mod:`softmaxreg.streaming`, so that both read a file the same way.

How a CSV file's layout is settled (:func:`open_csv`), from its first rows:

* **header** (``header="auto"``): the first row is a header when it names the model's columns
  (given a :class:`DataSchema`), when one of its fields is a name above a column of numbers,
  or when it is the header pandas writes for unnamed columns (``0,1,2,…`` in order, then the
  names of the other columns, none of them a value found below it). A data row is never taken
  for a header because it holds an empty cell. ``"yes"`` and ``"no"`` settle the cases no rule
  can.
* **row names**: a first column whose header is empty (what R's ``write.csv`` and pandas'
  ``to_csv`` write for row names or the index) is dropped.
* **label column**: the one named or numbered by ``label_column``; else the schema's; else the
  column named ``label`` (in any case); else the only column of text among the first rows (text
  cannot be a feature; a column of ``True``/``False`` counts only when no other column holds
  text); else the last. Given a schema, a file may also have no label column (rows to predict).
  An error that may follow from a label column chosen so names it and why it was taken.
* **features**: every other column; given a schema, matched by name (reordered if need be) or,
  without names on either side, by position. ``True`` and ``False`` (any case) read as 1 and 0.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from ..exceptions import DataError
from .dataset import (
    DataSchema,
    Dataset,
    PathLike,
    check_default_labels,
    label_column_hint,
    warn_by_position,
)

HEADER_CHOICES = ("auto", "yes", "no")
EMPTY_CHOICES = ("error", "drop", "zero")  # an empty cell: refused, its row dropped, or 0
_CSV_CHUNK = 4096  # rows converted to floats at once
_SNIFF_ROWS = 64  # rows read to settle the layout
_INDEX_NAMES = ("", "Unnamed: 0")  # the header of a row-names column (R, pandas)


# -- CSV ------------------------------------------------------------------------------------------
def read_csv(path: PathLike, label_column: int | str | None = None, *, header: str = "auto",
             empty: str = "error", schema: DataSchema | None = None,
             require_labels: bool = True) -> Dataset:
    """Read a CSV (or TSV) file: numeric features and one label column.

    The layout (header, row names, label column, features) is settled as the module docstring
    says. ``label_column`` is a column name or index (negative counts from the end; indices
    count the columns after a row-names column). ``schema``: the columns a model was trained on
    (see :class:`DataSchema`): the features are then matched to it and come out in its order,
    and with ``require_labels=False`` the label column may be absent (``y`` is None). Labels
    that are all integers become int64, others stay strings. ``empty``: what an empty feature
    cell means ("error", "drop" the row, "zero"). A ragged row, an empty label or a
    non-numeric or non-finite feature raises DataError naming the line and the column. A label
    column chosen by default whose values look like a feature gives one UserWarning
    (:func:`~softmaxreg.io.dataset.check_default_labels`).
    """
    with open_csv(path, label_column, header=header, empty=empty, schema=schema,
                  require_labels=require_labels) as (table, rows):
        X, y = table.read(rows)
        if table.label_reason is not None:
            check_default_labels(np.unique(y), len(y), table.label_name, table.label_reason)
        return Dataset(X, y, name=table.path.stem, feature_names=table.feature_names,
                       label_column=table.label_name, dropped_rows=tuple(table.dropped),
                       label_reason=table.label_reason)


@contextmanager
def open_csv(path: PathLike, label_column: int | str | None = None, *, header: str = "auto",
             empty: str = "error", schema: DataSchema | None = None, require_labels: bool = True
             ) -> Iterator[tuple[CsvTable, Iterator[tuple[int, list[str]]]]]:
    """(layout, data rows) of a CSV file: its layout settled (see the module docstring), and
    an iterator of (line number, fields) to give :meth:`CsvTable.parse`, whole or in blocks.
    Every problem reading the file inside the ``with`` block is a DataError."""
    path = Path(path)
    _check_choice("header", header, HEADER_CHOICES)
    _check_choice("empty", empty, EMPTY_CHOICES)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            delimiter = _csv_delimiter(path, file)
            rows = _csv_rows(file, delimiter)
            head = list(itertools.islice(rows, _SNIFF_ROWS))
            if not head:
                raise DataError(f"{path} is empty")
            has_header = header == "yes" or header == "auto" and _detect_header(head, schema)
            table = CsvTable(path, delimiter, len(head[0][1]), head[0][0],
                             [n.strip() for n in head[0][1]] if has_header else None,
                             empty=empty)
            table.settle(label_column, schema, require_labels,
                         head[1:] if has_header else head)
            table.tell = file.buffer.tell  # bytes read so far, for a progress bar
            yield table, itertools.chain(head[1:] if has_header else head, rows)
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 text file ({exc})") from exc
    except csv.Error as exc:
        raise DataError(f"{path} is not a valid CSV file ({exc})") from exc


def _check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, got {value!r}")


def _csv_delimiter(path: Path, file: IO[str]) -> str:
    """Tab for .tsv/.tab; otherwise the first of ',', tab, ';' found on the first line."""
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    first = file.readline()
    file.seek(0)
    return next((d for d in (",", "\t", ";") if d in first), ",")


def _csv_rows(file: IO[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank row."""
    reader = csv.reader(file, delimiter=delimiter)
    for fields in reader:
        if fields and (len(fields) > 1 or fields[0].strip()):
            yield reader.line_num, fields


_FLAGS = {"true": "1", "false": "0"}  # a column of booleans (pandas writes True/False)


def _is_flag(text: str) -> bool:
    return text.strip().lower() in _FLAGS


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _text_columns(columns: list[int], sample: list[tuple[int, list[str]]]) -> list[int]:
    """The columns that hold text in the rows ``sample``: words, else (if no column holds
    words) True/False."""
    def holding(test: Any) -> list[int]:
        return [j for j in columns if any(j < len(f) and test(f[j]) for _, f in sample)]

    words = holding(lambda v: v.strip() and not _is_number(v) and not _is_flag(v))
    return words or holding(_is_flag)


def _detect_header(head: list[tuple[int, list[str]]], schema: DataSchema | None) -> bool:
    """Whether the first of the rows ``head`` is a header (see the module docstring)."""
    first = [f.strip() for f in head[0][1]]
    below = [[f.strip() for f in fields] for _, fields in head[1:]]
    if schema is not None and schema.named:
        known = {*schema.feature_names, schema.label}
        if set(schema.feature_names) <= set(first) or any(
                f in known and not _is_number(f) for f in first):
            return True
    if not below:  # a file of one row: a header if it holds no number at all
        return not any(_is_number(f) for f in first)
    return _names_over_numbers(first, below) or _pandas_range_names(first, below)


def _names_over_numbers(first: list[str], below: list[list[str]]) -> bool:
    """A field of text above a column whose other (non-empty) cells are all numbers, or
    True/False (which read as 1 and 0: a CSV of pandas bool columns has a header too)."""
    def value(text: str) -> bool:
        return _is_number(text) or _is_flag(text)

    for j, name in enumerate(first):
        if not name or value(name):
            continue
        column = [row[j] for row in below if j < len(row) and row[j]]
        if column and all(value(v) for v in column):
            return True
    return False


def _pandas_range_names(first: list[str], below: list[list[str]]) -> bool:
    """pandas' header for columns without names: ``0,1,…,m-1`` (after an empty index name),
    then names that are text and appear nowhere below them (a label, not a class)."""
    start = 1 if first and first[0] == "" else 0
    fields = first[start:]
    m = next((i for i, f in enumerate(fields) if f != str(i)), len(fields))
    if m < 2 or (m == len(fields) and m < 3):
        return False
    for j in range(start + m, len(first)):
        name = first[j]
        if not name or _is_number(name) or any(j < len(row) and row[j] == name for row in below):
            return False
    return True


@dataclass
class CsvTable:
    """The layout of a CSV file being read, and the conversion of its rows.

    Column indices (``label``, ``features``, ``index``) count the file's fields from 0.
    """

    path: Path
    delimiter: str
    n_columns: int
    first_line: int
    names: list[str] | None  # the header's fields, or None without a header
    empty: str = "error"
    index: int | None = None  # a row-names column, dropped
    label: int | None = -1
    features: list[int] = field(default_factory=list)
    feature_names: list[str] | None = None
    label_name: str | int | None = None
    label_reason: str | None = None  # why the label column was taken, when no one named it
    dropped: list[int] = field(default_factory=list)  # the last parse's dropped rows (0-based)
    tell: Callable[[], int] | None = field(default=None, repr=False, compare=False)

    def column(self, j: int) -> str:
        """'column 3' or "column 3 ('petal_length')" for messages (1-based)."""
        name = f" ({self.names[j]!r})" if self.names else ""
        return f"column {j + 1}{name}"

    # -- the layout -----------------------------------------------------------------------------
    def settle(self, label_column: int | str | None, schema: DataSchema | None,
               require_labels: bool, sample: list[tuple[int, list[str]]] = ()) -> None:
        """Find the row-names column, the label column and the features (module docstring),
        looking at the first data rows ``sample``."""
        names = self.names
        if names is not None and names[0] in _INDEX_NAMES and self.n_columns > 2 and not (
                schema is not None and schema.named and names[0] in schema.feature_names):
            self.index = 0
        columns = [j for j in range(self.n_columns) if j != self.index]
        if len(columns) < (2 if require_labels else 1):
            raise DataError(f"{self.path} has a single column on line {self.first_line}; "
                            "expected features and a label separated by ',', tab or ';'")
        if label_column is not None:
            self.label = self.label_index(label_column, columns)
        elif schema is None:
            self.label = self._named_label(columns, "label") if names else None
            self.label_reason = "the column named 'label'"
            if self.label is None:  # a column of text cannot be a feature
                text = _text_columns(columns, sample)
                self.label, self.label_reason = (text[0], "the only column of text") \
                    if len(text) == 1 else (columns[-1], "the last column")
        else:
            self.label = self._schema_label(columns, schema)
        if self.label is None and require_labels:
            held = f" (the model's was {schema.label!r})" if schema and \
                schema.label is not None else ""
            raise DataError(f"{self.path} has no label column{held}, and scoring needs the "
                            "labels: name the column that holds them (--label-column)")
        self._settle_features([j for j in columns if j != self.label], schema)
        if self.label is not None:
            self.label_name = names[self.label] if names else columns.index(self.label)

    def _encode(self, j: int) -> str:
        """What to do with column j, a column of categories (words) among the features."""
        column = repr(self.names[j]) if self.names else j
        return (f"encode this column of categories as numbers, one column per category (e.g. "
                f"pandas.get_dummies(frame, columns=[{column}])), or drop it")

    def label_hint(self) -> str:
        """For an error that may follow from a label column chosen by default: which it is, why,
        and how to choose another; "" when it was named."""
        return label_column_hint(self.label_name, self.label_reason) if self.label_reason \
            else ""

    def _named_label(self, columns: list[int], name: str | None) -> int | None:
        """The column whose header is ``name`` (any case for "label"), or None."""
        if not self.names or name is None:
            return None
        found = [j for j in columns if self.names[j] == name]
        if not found and name == "label":
            found = [j for j in columns if self.names[j].lower() == "label"]
            if len(found) > 1:  # 'Label' and 'LABEL': which one holds the labels is a guess
                raise DataError(f"{self.path}: {self.column(found[0])} and "
                                f"{self.column(found[1])} are both named 'label' (in any case): "
                                "name the label column with --label-column (label_column=)")
        return found[0] if found else None

    def _schema_label(self, columns: list[int], schema: DataSchema) -> int | None:
        """The label column of a file read for a model with ``schema``; None if it has none."""
        d, names = schema.n_features, self.names
        if names is not None and schema.named:
            found = self._named_label(columns, schema.label if isinstance(schema.label, str)
                                      else None)
            known = set(schema.feature_names)
            others = [j for j in columns if names[j] not in known]
            if found is None and not isinstance(schema.label, str) and len(others) == 1:
                found = others[0]
            return found
        if len(columns) == d:
            return None
        if len(columns) != d + 1:
            raise DataError(f"{self.path} has {len(columns)} columns, but the model takes "
                            f"{d} features (and, for scoring, a label column)")
        if isinstance(schema.label, int) and -len(columns) <= schema.label < len(columns):
            return columns[schema.label]
        found = self._named_label(columns, schema.label if isinstance(schema.label, str)
                                  else "label")
        return columns[-1] if found is None else found

    def _settle_features(self, columns: list[int], schema: DataSchema | None) -> None:
        names = self.names
        if names is not None:
            seen: dict[str, int] = {}
            for j in columns + ([self.label] if self.label is not None else []):
                if names[j] in seen:
                    raise DataError(f"{self.path}: columns {seen[names[j]] + 1} and {j + 1} "
                                    f"are both named {names[j]!r}")
                seen[names[j]] = j
        if schema is None:
            self.features = columns
            self.feature_names = [names[j] for j in columns] if names else None
            return
        if names is not None and schema.named:
            order = schema.order([names[j] for j in columns], str(self.path))
            self.features = [columns[i] for i in order]
        elif len(columns) != schema.n_features:
            raise DataError(f"{self.path} has {len(columns)} feature columns, but the model "
                            f"was trained with {schema.n_features}")
        else:
            if names is not None:
                warn_by_position(str(self.path), [names[j] for j in columns], schema)
            self.features = columns
        self.feature_names = list(schema.feature_names) if schema.named else None

    def label_index(self, label_column: int | str, columns: list[int] | None = None) -> int:
        """Resolve the label column (a name, or an index among ``columns``) to a file index."""
        columns = list(range(self.n_columns)) if columns is None else columns
        if isinstance(label_column, str) and self.names and label_column in self.names:
            return self.names.index(label_column)
        if isinstance(label_column, str) and not re.fullmatch(r"-?\d+", label_column.strip()):
            shown = [self.names[j] for j in columns] if self.names else None
            held = f"its columns are {shown}" if shown else "it has no header row"
            raise DataError(f"{self.path} has no column named {label_column!r}: {held}")
        index = int(label_column)
        if not -len(columns) <= index < len(columns):
            raise DataError(f"label column {index} is out of range: {self.path} has "
                            f"{len(columns)} columns")
        return columns[index]

    # -- the rows -------------------------------------------------------------------------------
    def read(self, rows: Iterable[tuple[int, list[str]]]) -> tuple[NDArray[Any], Any]:
        """Features (n, d) float64 and labels (n,) (or None) of the whole file: parsed by
        pandas' C reader when the file is clean, else row by row by :meth:`parse`, which says
        what is wrong where (and drops or fills empty cells if asked)."""
        fast = self._read_fast()
        return fast if fast is not None else self.parse(rows)

    def _read_fast(self) -> tuple[NDArray[Any], Any] | None:
        """What :meth:`parse` would return, from pandas; None whenever anything is unusual."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a dependency
            return None
        dtype: dict[int, Any] = {j: str for j in range(self.n_columns)}
        dtype.update(dict.fromkeys(self.features, np.float64))
        exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
        try:
            with warnings.catch_warnings():  # e.g. a row longer than the others, cut short
                warnings.simplefilter("error")
                frame = pd.read_csv(self.path, sep=self.delimiter, header=0 if self.names
                                    else None, names=list(range(self.n_columns)),
                                    index_col=False, dtype=dtype, na_filter=False, engine="c",
                                    encoding="utf-8-sig", skip_blank_lines=True, **exact)
        except Exception:  # noqa: BLE001 - whatever pandas objects to, parse() names it
            return None
        X = frame[self.features].to_numpy(np.float64) if len(frame) else None
        if X is None or frame.shape[1] != self.n_columns or not np.isfinite(X).all():
            return None
        if self.label is None:
            return X, None
        labels = np.char.strip(frame[self.label].to_numpy(dtype=str))
        if not np.all(np.char.str_len(labels)):
            return None
        return X, parse_labels(labels)

    def parse(self, rows: Iterable[tuple[int, list[str]]], typed: bool = True
              ) -> tuple[NDArray[Any], Any]:
        """Features (n, d) float64 and labels (n,) (None without a label column) of data rows.

        ``typed=False``: the labels as the stripped strings of the file, for a reader that
        types them once for many blocks with :func:`parse_labels` (streaming). The rows that
        ``empty="drop"`` dropped are left in :attr:`dropped`, by their 0-based position among
        ``rows`` (for a whole file, the data row's index, as pandas numbers it)."""
        blocks: list[NDArray[np.float64]] = []
        labels: list[str] = []
        chunk: list[list[str]] = []
        lines: list[int] = []
        self.dropped = []
        for position, (line, fields) in enumerate(rows):
            if len(fields) != self.n_columns:
                raise DataError(f"{self.path}, line {line}: {len(fields)} fields, expected "
                                f"{self.n_columns} as on line {self.first_line}")
            values = [fields[j] for j in self.features]
            if self.empty != "error" and not all(v.strip() for v in values):
                if self.empty == "drop":
                    self.dropped.append(position)
                    continue
                values = [v if v.strip() else "0" for v in values]
            if self.label is not None:
                label = fields[self.label].strip()
                if not label and self.empty == "drop":
                    self.dropped.append(position)
                    continue
                if not label:
                    raise DataError(f"{self.path}, line {line}: the label "
                                    f"({self.column(self.label)}) is empty{self.label_hint()}")
                labels.append(label)
            chunk.append(values)
            lines.append(line)
            if len(chunk) == _CSV_CHUNK:
                blocks.append(self._floats(chunk, lines))
                chunk, lines = [], []
        if chunk:
            blocks.append(self._floats(chunk, lines))
        if not blocks:
            raise DataError(f"{self.path} has a header but no data rows" if self.names else
                            f"{self.path} has no data rows")
        if self.label is None:
            return np.concatenate(blocks), None
        return np.concatenate(blocks), parse_labels(labels) if typed else np.array(labels)

    def _floats(self, chunk: list[list[str]], lines: list[int]) -> NDArray[np.float64]:
        """Convert a block of rows; on failure find and name the offending cell."""
        block = _as_floats(chunk)
        if block is None:  # True/False cells are 1 and 0
            block = _as_floats([[_FLAGS.get(v.strip().lower(), v) for v in row] for row in chunk])
        if block is not None and np.isfinite(block).all():
            return block
        for row, line in zip(chunk, lines, strict=True):
            for k, text in enumerate(row):
                where = f"{self.path}, line {line}, {self.column(self.features[k])}"
                if not text.strip():
                    raise DataError(f"{where}: the cell is empty (read empty cells as 0 "
                                    "or drop their rows with --empty-cells zero|drop)")
                if "," in text and _is_number(text.replace(",", ".", 1)):
                    raise DataError(f"{where}: {text!r} is a number with a comma; numbers "
                                    "are read with a decimal point and no thousands separator: "
                                    "write the file so (pandas: frame.to_csv(path, "
                                    "decimal='.'))")
                if not _is_flag(text) and not _is_number(text):
                    raise DataError(f"{where}: {text!r} is not a finite number, and features "
                                    f"are numbers: {self._encode(self.features[k])}"
                                    f"{self.label_hint()}")
                if not _is_flag(text) and not math.isfinite(float(text)):
                    raise DataError(f"{where}: {text!r} is not a finite number"
                                    f"{self.label_hint()}")
        raise DataError(f"{self.path}: cannot convert the rows on lines {lines[0]}–{lines[-1]} "
                        "to numbers")


def _as_floats(rows: list[list[str]]) -> NDArray[np.float64] | None:
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        return None


def integer_labels(y: NDArray[Any]) -> NDArray[Any]:
    """Numeric labels y (n,) as int64 when all are whole numbers that int64 holds exactly (1e300
    is whole but would wrap around), else y. Compared in float64: float16 cannot hold 2**53
    (its inf passed as 'whole' and became the class -2**63)."""
    whole = np.all(np.abs(y, dtype=np.float64) <= 2**53) and np.all(y == np.round(y))
    return y.astype(np.int64) if whole else y


def parse_labels(labels: Sequence[str]) -> NDArray[Any]:
    """int64 when every label is an integer (also '3.0'), else the strings: the labels of a
    whole file are typed together, so that ``007`` and ``12A`` in one file stay strings."""
    text = np.array(labels)
    try:
        return text.astype(np.int64)
    except (ValueError, OverflowError):  # OverflowError: an integer beyond int64's range
        pass
    try:
        values = text.astype(np.float64)
    except ValueError:
        return text
    labels = integer_labels(values)
    return text if labels is values else labels


# -- svmlight -------------------------------------------------------------------------------------
def read_svmlight(path: PathLike, *, schema: DataSchema | None = None) -> Dataset:
    """Read a svmlight/libsvm file into a CSR matrix (scikit-learn's load_svmlight_file);
    integral labels become int64.

    Whether indices start at 0 or 1 is found as scikit-learn's ``zero_based="auto"`` does (1
    unless some index is 0), or taken from ``schema`` (the training file's), whose number of
    features the rows must then fit in (a file of a few rows need not use the last feature).
    """
    path = Path(path)
    d = None if schema is None else schema.n_features
    base = None if schema is None else schema.index_base
    if d is not None and base is not None:
        X, y = parse_svmlight(str(path), path, d, zero_based=base == 0)
        return Dataset(X, y, name=path.stem, index_base=base)
    X, y = parse_svmlight(str(path), path, None if d is None else d + 1, zero_based=True)
    base = 1 if X.nnz and X.indices.min() > 0 else 0
    if d is not None and base == 0 and X[:, d].nnz:
        raise DataError(f"{path} uses feature index {d}, beyond the model's {d} features "
                        f"(0..{d - 1})")
    X = X[:, 1:] if base else X if d is None else X[:, :d]
    if d is None:
        check_svmlight_width(path, X.shape[1], X.shape[0], X.nnz)
    return Dataset(sp.csr_matrix(X), y, name=path.stem, index_base=base)


# A file justifies as many features as it has values, or 2¹⁸ (a few hundred MB for the weights
# and L-BFGS's history with 10 classes): past both, the model's weights (d × K), the solver's
# state and the features' names would grow with one index written in the file, not with the data.
SVMLIGHT_MIN_WIDTH = 1 << 18


def check_svmlight_width(path: PathLike, n_features: int, n_rows: int, nnz: int) -> None:
    """DataError unless ``n_features`` (the largest index in the file) is justified by its
    ``nnz`` values: at most max(nnz, SVMLIGHT_MIN_WIDTH)."""
    if n_features > max(nnz, SVMLIGHT_MIN_WIDTH):
        raise DataError(
            f"{path}: its largest feature index makes {n_features} features, from only {nnz} "
            f"values in {n_rows} rows; a file justifies at most max(its values, "
            f"{SVMLIGHT_MIN_WIDTH}) features")


def parse_svmlight(data: str | IO[bytes], path: Path, n_features: int | None = None,
                   zero_based: bool | str = "auto") -> tuple[sp.csr_matrix, NDArray[Any]]:
    """Features (n, d) CSR and labels (n,) of svmlight text: the file named ``data``, or a
    binary stream of some of ``path``'s lines. ``n_features`` and ``zero_based`` as in
    scikit-learn's load_svmlight_file; integral labels become int64."""
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(data, n_features=n_features, zero_based=zero_based)
    except FileNotFoundError as exc:
        raise DataError(f"cannot open {path}: no such file") from exc
    except (ValueError, OSError, TypeError, OverflowError) as exc:
        raise DataError(f"{path} is not a valid svmlight/libsvm file ({exc})") from exc
    for what, values in (("a label", y), ("a feature value", X.data)):
        if not np.isfinite(values).all():
            raise DataError(f"{path}: {what} is not a finite number (NaN or infinity)")
    return sp.csr_matrix(X), integer_labels(y)
