"""Text tables of examples: CSV/TSV (numeric features and one label column) and svmlight.

Each format is parsed by one set of functions, used whole by ``read_csv``/``read_svmlight`` and
chunk by chunk by :mod:`softmaxreg.streaming`, so that both read a file the same way.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from ..exceptions import DataError
from .dataset import Dataset, PathLike

_CSV_CHUNK = 4096  # rows converted to floats at once


# -- CSV ------------------------------------------------------------------------------------------
def read_csv(path: PathLike, label_column: int | str | None = None) -> Dataset:
    """Read a CSV (or TSV) file: numeric features and one label column.

    The header row is optional and detected (a first row with a non-numeric field above a
    numeric one). ``label_column`` is a column name or index (negative counts from the end);
    by default the column named ``label`` if the header has one, else the last column. Labels
    that are all integers become int64, others stay strings. A ragged row, an empty label or
    a non-numeric or non-finite feature raises DataError naming the line and the column.
    """
    with open_csv(path, label_column) as (table, rows):
        X, y = table.parse(rows)
        return Dataset(X, y, name=table.path.stem, feature_names=table.feature_names)


@contextmanager
def open_csv(path: PathLike, label_column: int | str | None = None
             ) -> Iterator[tuple[CsvTable, Iterator[tuple[int, list[str]]]]]:
    """(layout, data rows) of a CSV file: its header detected, its label column resolved, and
    an iterator of (line number, fields) to give :meth:`CsvTable.parse`, whole or in blocks.
    Every problem reading the file inside the ``with`` block is a DataError."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = _csv_rows(file, _csv_delimiter(path, file))
            head = list(itertools.islice(rows, 2))
            if not head:
                raise DataError(f"{path} is empty")
            has_header = _looks_like_header(head[0][1], head[1][1] if len(head) > 1 else None)
            names = [n.strip() for n in head[0][1]] if has_header else None
            table = CsvTable(path, len(head[0][1]), head[0][0], names)
            table.label = table.label_index(label_column)
            yield table, itertools.chain(head[1:] if has_header else head, rows)
    except OSError as exc:
        raise DataError(f"cannot open {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 text file ({exc})") from exc
    except csv.Error as exc:
        raise DataError(f"{path} is not a valid CSV file ({exc})") from exc


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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_like_header(first: list[str], second: list[str] | None) -> bool:
    """A header has a non-numeric field above a numeric one (or, alone, no number at all)."""
    if second is None:
        return not any(_is_number(field) for field in first)
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=False))


@dataclass
class CsvTable:
    """The layout of a CSV file being read, and the conversion of its rows."""

    path: Path
    n_columns: int
    first_line: int
    names: list[str] | None
    label: int = -1

    @property
    def feature_names(self) -> list[str] | None:
        """The header's names without the label column's, or None without a header."""
        if self.names is None:
            return None
        return self.names[: self.label] + self.names[self.label + 1:]

    def column(self, j: int) -> str:
        """'column 3' or "column 3 ('petal_length')" for messages (1-based)."""
        name = f" ({self.names[j]!r})" if self.names else ""
        return f"column {j + 1}{name}"

    def label_index(self, label_column: int | str | None) -> int:
        """Resolve the label column to a 0-based index."""
        if self.n_columns < 2:
            raise DataError(f"{self.path} has a single column on line {self.first_line}; "
                            "expected features and a label separated by ',', tab or ';'")
        if label_column is None:
            lowered = [n.lower() for n in self.names or []]
            return lowered.index("label") if "label" in lowered else self.n_columns - 1
        if isinstance(label_column, str) and self.names and label_column in self.names:
            return self.names.index(label_column)
        if isinstance(label_column, str) and not re.fullmatch(r"-?\d+", label_column.strip()):
            columns = f"its columns are {self.names}" if self.names else "it has no header row"
            raise DataError(f"{self.path} has no column named {label_column!r}: {columns}")
        index = int(label_column)
        if not -self.n_columns <= index < self.n_columns:
            raise DataError(f"label column {index} is out of range: {self.path} has "
                            f"{self.n_columns} columns")
        return index % self.n_columns

    def parse(self, rows: Iterable[tuple[int, list[str]]]) -> tuple[NDArray[Any], NDArray[Any]]:
        """Features (n, d) float64 and labels (n,) from the data rows."""
        blocks: list[NDArray[np.float64]] = []
        labels: list[str] = []
        chunk: list[list[str]] = []
        lines: list[int] = []
        for line, fields in rows:
            if len(fields) != self.n_columns:
                raise DataError(f"{self.path}, line {line}: {len(fields)} fields, expected "
                                f"{self.n_columns} as on line {self.first_line}")
            label = fields.pop(self.label).strip()
            if not label:
                raise DataError(f"{self.path}, line {line}: the label ({self.column(self.label)}) "
                                "is empty")
            labels.append(label)
            chunk.append(fields)
            lines.append(line)
            if len(chunk) == _CSV_CHUNK:
                blocks.append(self._floats(chunk, lines))
                chunk, lines = [], []
        if chunk:
            blocks.append(self._floats(chunk, lines))
        if not blocks:
            raise DataError(f"{self.path} has a header but no data rows")
        return np.concatenate(blocks), _parse_labels(labels)

    def _floats(self, chunk: list[list[str]], lines: list[int]) -> NDArray[np.float64]:
        """Convert a block of rows; on failure find and name the offending cell."""
        try:
            block = np.array(chunk, dtype=np.float64)
        except ValueError:
            block = None
        if block is not None and np.isfinite(block).all():
            return block
        for row, line in zip(chunk, lines, strict=True):
            for k, text in enumerate(row):
                if not _is_number(text) or not math.isfinite(float(text)):
                    j = k if k < self.label else k + 1
                    raise DataError(f"{self.path}, line {line}, {self.column(j)}: {text!r} is "
                                    "not a finite number")
        raise DataError(f"{self.path}: cannot convert the rows on lines {lines[0]}–{lines[-1]} "
                        "to numbers")


def integer_labels(y: NDArray[Any]) -> NDArray[Any]:
    """Numeric labels y (n,) as int64 when all are whole numbers that int64 holds exactly (1e300
    is whole but would wrap around), else y."""
    whole = np.all(np.abs(y) <= 2**53) and np.all(y == np.round(y))
    return y.astype(np.int64) if whole else y


def _parse_labels(labels: list[str]) -> NDArray[Any]:
    """int64 when every label is an integer (also '3.0'), else the strings."""
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
def read_svmlight(path: PathLike) -> Dataset:
    """Read a svmlight/libsvm file into a CSR matrix (scikit-learn's load_svmlight_file);
    integral labels become int64."""
    path = Path(path)
    X, y = parse_svmlight(str(path), path)
    return Dataset(X, y, name=path.stem)


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
