"""The data sets of the fair benchmark's exact fit: MNIST, Fashion-MNIST and a wide sparse corpus.

Each problem is loaded once by the driver (``fair.py``) as (X, y, X_test, y_test) and saved to a
folder of its own that every worker reads (``libraries.load_data``): dense X as .npy files the
workers memory-map, sparse X as CSR .npz files.

    mnist    MNIST's IDX files (``--data``), or scikit-learn's 8x8 digits for smoke tests
    fashion  Fashion-MNIST, the same IDX files under the same names (``--fashion-data``)
    sparse   20 newsgroups TF-IDF (``fetch_20newsgroups_vectorized``) where scikit-learn has it
             cached; else a synthetic corpus of the same shape, seeded and cached as .npz

The synthetic corpus (:func:`synthetic_corpus`) draws each document's words from a Zipf
background tilted per class (log-normal factors), stops each document when it has its number of
distinct words, and weighs the counts as scikit-learn's ``TfidfTransformer`` does (smooth idf
fitted on the training rows, rows L2-normalised), so the classes overlap but can be learned.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

PROBLEMS = ("mnist", "fashion", "sparse")
NO_FASHION = "no Fashion-MNIST files (give --fashion-data)"


@dataclass(frozen=True)
class CorpusShape:
    n_train: int
    n_test: int
    n_features: int
    n_classes: int
    nnz: int  # non-zeros of the training rows; the test rows get as many per row

    @property
    def tag(self) -> str:
        return f"{self.n_train}x{self.n_features}-{self.n_classes}c-{self.nnz}nz"


# ``fetch_20newsgroups_vectorized(subset="train")``: 11,314 documents, 130,107 words; 7,532 test
NEWSGROUPS = CorpusShape(11314, 7532, 130107, 20, 1_800_000)
QUICK_CORPUS = CorpusShape(2000, 500, 20000, 20, 2000 * 100)


# -- the synthetic corpus ----------------------------------------------------------------------
def class_word_probabilities(shape: CorpusShape, rng: np.random.Generator, tilt: float = 1.0,
                             share: float = 0.5) -> np.ndarray:
    """(K, d) word distributions: ``share`` of each class's words from its tilted Zipf
    (p_j · exp(tilt · g_kj), g ~ N(0, 1)), the rest from the common Zipf background p."""
    d = shape.n_features
    background = 1.0 / (np.arange(d) + 2.7)  # Zipf–Mandelbrot, exponent 1
    background = background[rng.permutation(d)]  # columns in no frequency order, like a lexicon
    background /= background.sum()
    tilted = background * np.exp(tilt * rng.standard_normal((shape.n_classes, d)))
    tilted /= tilted.sum(axis=1, keepdims=True)
    return share * tilted + (1 - share) * background


def distinct_words(n: int, per_row: float, d: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) distinct words per document: log-normal around ``per_row``, at least 1, at most d/2."""
    k = rng.lognormal(0.0, 0.7, n)
    return np.clip(np.rint(k * per_row / k.mean()), 1, d // 2).astype(np.int64)


def count_words(y: np.ndarray, k: np.ndarray, P: np.ndarray, rng: np.random.Generator,
                oversample: int = 6) -> sp.csr_matrix:
    """(n, d) word counts: document i draws words from P[y_i] until it has k_i distinct ones
    (from a stream of ``oversample`` · k_i draws; a document whose stream runs short keeps
    fewer)."""
    n, d = len(y), P.shape[1]
    lengths = oversample * k
    doc = np.repeat(np.arange(n), lengths)
    words = np.empty(len(doc), dtype=np.int64)
    for c in range(P.shape[0]):
        mine = y[doc] == c
        cdf = np.cumsum(P[c])
        words[mine] = np.minimum(np.searchsorted(cdf, rng.random(mine.sum()) * cdf[-1]), d - 1)
    keys = doc * d + words
    first = np.zeros(len(keys), dtype=np.int64)
    first[np.unique(keys, return_index=True)[1]] = 1
    seen = np.cumsum(first)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    seen -= np.repeat(seen[starts] - first[starts], lengths)  # distinct words so far, per doc
    kept, counts = np.unique(keys[seen <= k[doc]], return_counts=True)  # sorted: CSR order
    return sp.csr_matrix((counts.astype(np.float64), (kept // d, kept % d)), shape=(n, d))


def tfidf(counts: sp.csr_matrix, df_rows: int) -> sp.csr_matrix:
    """TfidfTransformer's weighting: tf · (ln((1 + n) / (1 + df)) + 1), df over the first
    ``df_rows`` rows (the training set), then every row scaled to unit L2 norm."""
    train = counts[:df_rows]
    df = np.bincount(train.indices, minlength=counts.shape[1])
    idf = np.log((1 + df_rows) / (1 + df)) + 1
    X = counts @ sp.diags(idf)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1 / np.maximum(norms, 1e-300)) @ X)


def synthetic_corpus(shape: CorpusShape, seed: int = 0) -> tuple:
    """(X, y, X_test, y_test): X (n_train, d) and X_test (n_test, d) float64 CSR TF-IDF rows of
    unit norm, y int64 with every class present; the same arrays for the same shape and seed."""
    rng = np.random.default_rng(seed)
    n = shape.n_train + shape.n_test
    y = np.concatenate([rng.permutation(np.arange(shape.n_train) % shape.n_classes),
                        rng.permutation(np.arange(shape.n_test) % shape.n_classes)])
    P = class_word_probabilities(shape, rng)
    k = distinct_words(n, shape.nnz / shape.n_train, shape.n_features, rng)
    X = tfidf(count_words(y, k, P, rng), shape.n_train)
    X.sort_indices()
    return X[:shape.n_train], y[:shape.n_train], X[shape.n_train:], y[shape.n_train:]


def cached_corpus(shape: CorpusShape, cache: Path, seed: int = 0) -> tuple:
    """:func:`synthetic_corpus`, from ``cache`` when generated before, else generated and saved."""
    path = cache / f"synthetic-20newsgroups-{shape.tag}-seed{seed}.npz"
    if path.is_file():
        with np.load(path) as f:
            return (_csr(f, "X"), f["y"], _csr(f, "X_test"), f["y_test"])
    X, y, Xt, yt = synthetic_corpus(shape, seed)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, y=y, y_test=yt, **_parts(X, "X"), **_parts(Xt, "X_test"))
    tmp.replace(path)
    return X, y, Xt, yt


def _parts(X: sp.csr_matrix, name: str) -> dict:
    return {f"{name}_data": X.data, f"{name}_indices": X.indices, f"{name}_indptr": X.indptr,
            f"{name}_shape": np.array(X.shape)}


def _csr(f, name: str) -> sp.csr_matrix:
    return sp.csr_matrix((f[f"{name}_data"], f[f"{name}_indices"], f[f"{name}_indptr"]),
                         shape=tuple(f[f"{name}_shape"]))


# -- loading each problem ----------------------------------------------------------------------
def newsgroups() -> tuple | None:
    """20 newsgroups TF-IDF from scikit-learn's cache (never downloaded here), else None."""
    from sklearn.datasets import fetch_20newsgroups_vectorized

    try:
        train = fetch_20newsgroups_vectorized(subset="train", download_if_missing=False)
        test = fetch_20newsgroups_vectorized(subset="test", download_if_missing=False)
    except OSError:
        return None
    return train.data, train.target, test.data, test.target


def load_idx(folder: str | Path, verify_mnist: bool = True) -> tuple:
    """IDX files under MNIST's names: pixels to [0, 1] float32, labels int64.  MNIST's are
    checked against MNIST's SHA-256 (``load_mnist``); a look-alike's (Fashion-MNIST) are read
    unchecked (``read_idx_folder``: the test files may be absent, then no test rows)."""
    from softmaxreg.io import load_mnist, read_idx_folder

    ds, scale = (load_mnist if verify_mnist else read_idx_folder)(folder), np.float32(255)
    X_test, y_test = ((ds.X_test, ds.y_test) if ds.X_test is not None
                      else (ds.X[:0], ds.y[:0]))
    return ((ds.X / scale).astype(np.float32), ds.y.astype(np.int64),
            (X_test / scale).astype(np.float32), y_test.astype(np.int64))


def load_digits() -> tuple:
    from sklearn.datasets import load_digits as digits

    X, y = digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return X[:1500], y[:1500], X[1500:], y[1500:]


def fashion_folder(given: str | None) -> Path | None:
    """``--fashion-data``, else ``$SOFTMAXREG_FASHION_DATA``, if it names an existing folder."""
    folder = given or os.environ.get("SOFTMAXREG_FASHION_DATA")
    return Path(folder) if folder and Path(folder).is_dir() else None


def load_sparse(quick: bool, cache: Path) -> tuple[tuple, str]:
    """(arrays, source): 20 newsgroups if cached, else the synthetic corpus (small in quick
    mode)."""
    found = newsgroups()
    if found is not None:
        return found, "20newsgroups"
    return cached_corpus(QUICK_CORPUS if quick else NEWSGROUPS, cache), "synthetic"


# -- saving for the workers ----------------------------------------------------------------------
@dataclass
class Described:
    """What the results file records of a problem's data."""
    source: str  # mnist, digits, fashion, 20newsgroups or synthetic
    path: str | None
    n_train: int
    n_test: int
    n_features: int
    n_classes: int
    dtype: str
    scaled: str
    sha256: str
    full: bool
    sparse: bool = False
    nnz: int | None = None


def save_arrays(arrays: tuple, folder: Path, float64: bool) -> dict:
    """X and X_test in float32 (X64 too when asked) as .npy, or .npz when sparse; y int64."""
    X, y, Xt, yt = arrays
    folder.mkdir(parents=True, exist_ok=True)
    out = {"X": _float(X, np.float32), "y": np.asarray(y, dtype=np.int64),
           "X_test": _float(Xt, np.float32), "y_test": np.asarray(yt, dtype=np.int64)}
    if float64:
        out["X64"] = _float(X, np.float64)  # the same values: f* is the same
    for name, a in out.items():
        if sp.issparse(a):
            sp.save_npz(folder / f"{name}.npz", a, compressed=False)
        else:
            np.save(folder / f"{name}.npy", np.ascontiguousarray(a))
    return out


def _float(X, dtype):
    return sp.csr_matrix(X, dtype=dtype) if sp.issparse(X) else np.asarray(X, dtype=dtype)


def digest(X, y) -> str:
    """16 hex digits of the data (for dense X the digest earlier results and f* caches hold)."""
    parts = (X.data, X.indices, X.indptr) if sp.issparse(X) else (X,)
    text = "".join(hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
                   for a in (*parts, y))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(source: str, path, saved: dict, full: bool) -> dict:
    X = saved["X"]
    sparse = sp.issparse(X)
    return asdict(Described(
        source=source, path=None if path is None else str(path),
        n_train=X.shape[0], n_test=saved["X_test"].shape[0], n_features=X.shape[1],
        n_classes=int(len(np.unique(saved["y"]))), dtype="float32",
        scaled="TF-IDF rows of unit norm" if sparse else "[0, 1]",
        sha256=digest(X, saved["y"]), full=full, sparse=sparse,
        nnz=int(X.nnz) if sparse else None))
