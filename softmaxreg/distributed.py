"""Rows on Dask: the data stay on the workers, only θ and ∇J travel.

:class:`DaskRows` is a backend of :mod:`softmaxreg.objective`: each row chunk c lives on a
worker as a :class:`~softmaxreg.objective.MemoryRows` and returns its partial sums

    (Σ_{i∈c} s_i CE_i, Σ_{i∈c} s_i ∇CE_i, Σ_{i∈c} s_i)

which a tree reduction adds on the workers.  The objective (division by Σ s, the penalty), the
solvers, the training loop and the estimators are the in-memory ones: the sums are the in-memory
sums in another order, so a fit here equals the in-memory fit of the same data up to rounding
(float64: far below the solver's tolerance).

Full batch (``lbfgs``, ``fista``): one evaluation of J and ∇J per solver step; the staged
preconditioner asks for the Gram sums X̃ᵀ diag(w) X̃, (d + 1) × (d + 1), once per stage.
Minibatch (``sgd``, ``adam``, ``adamw``): synchronous data parallelism.  Each step's minibatch
is drawn from the same permutation of all rows as in memory; every chunk holding some of its
rows returns their gradient sum, and the step uses the exact weighted sum.  With the same seed a
run equals the in-memory run up to rounding.

Cost model, per step (W workers, p = θ.size parameters, 8 bytes each in float64):
    sent to the workers      p · 8 bytes to each worker holding a chunk (θ fetched once per
                             worker), plus the step's row indices (B · 8 bytes, minibatch only)
    returned                 p · 8 bytes per tree edge: log-depth on the workers, one to the
                             client
    steps                    1 per L-BFGS iteration (plus line-search evaluations, usually
                             none); ⌈n / B⌉ per epoch for a minibatch solver
    once per L-BFGS stage    (d + 1)² · 8 bytes per tree edge: the preconditioner's matrix
For MNIST softmax regression p = 7 850 (63 kB): a step moves well under 1 MB whatever n is, so
full-batch solvers are compute-bound until n / W is small; minibatch steps are latency-bound
(a few ms of scheduling per step), so use large batches on a cluster.

Faults: the data are persisted with their task graph, so when a worker dies Dask recomputes its
chunks from the source on the other workers, the evaluation in flight completes, and the fit
goes on with a :class:`WorkerLostWarning`.  If no worker is left for ``worker_timeout`` seconds,
:class:`ClusterError` is raised instead of waiting for ever.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .exceptions import SoftmaxRegError
from .io.dataset import available_memory
from .network import Network, NetworkSpec
from .objective import MemoryRows, Rows

__all__ = ["ClusterError", "WorkerLostWarning", "connect", "check_address", "machine_cores",
           "available_memory", "as_dask_array", "is_dask_collection", "scan", "DaskData",
           "DaskRows", "map_rows"]

CONNECT_TIMEOUT_S = 10.0
WORKER_TIMEOUT_S = 60.0  # how long an evaluation waits with no worker at all before failing
_POLL_S = 0.5
_FAN_IN = 8  # partial sums added per task of the tree reduction


class ClusterError(SoftmaxRegError, ConnectionError):
    """The Dask cluster cannot be reached, or lost every worker."""


class WorkerLostWarning(RuntimeWarning):
    """A Dask worker left during a fit; its chunks were recomputed on the others."""


def is_dask_collection(obj) -> bool:
    """True for a Dask array, DataFrame or Series (without importing Dask when it is absent)."""
    if not type(obj).__module__.startswith("dask"):
        return False
    from dask import is_dask_collection as _is

    return _is(obj)


# -- the cluster ----------------------------------------------------------------------------------
@contextlib.contextmanager
def connect(address: str, timeout: float | None = None) -> Iterator:
    """A ``dask.distributed.Client`` for ``address``, closed (with its cluster) on exit.

    ``local:N`` starts a LocalCluster of N single-threaded worker processes on 127.0.0.1 (N
    at most this machine's cores, and as many as its memory holds: :func:`check_address`);
    ``tcp://HOST:PORT`` (or ``tls://…``) joins a running scheduler, which must answer within
    ``timeout`` seconds (default ``CONNECT_TIMEOUT_S``), else :class:`ClusterError`.
    """
    from dask.distributed import Client, LocalCluster

    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    address = check_address(address)
    if address.startswith("local:"):
        n = int(address.removeprefix("local:"))
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0")
        with cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                           f"({exc}); is `dask scheduler` running there?") from exc
    with client:
        yield client


LOCAL_WORKER_BYTES = 256 * 2**20  # the least a local worker process takes (Python, NumPy, Dask)


def check_address(address: str) -> str:
    """``address`` stripped, if it is ``local:N`` with 1 ≤ N ≤ :func:`machine_cores` and N
    workers of :data:`LOCAL_WORKER_BYTES` in :func:`available_memory`, or a ``scheme://``
    address; else ValueError saying why (``local:1000`` on a 2-core machine would start a
    thousand processes)."""
    address = address.strip()
    if not address.startswith("local:"):
        if "://" not in address:
            raise ValueError(f"unknown Dask address {address!r}: expected local:N or "
                             "tcp://HOST:PORT")
        return address
    n = address.removeprefix("local:")
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"local:N needs a positive number of workers, got {address!r}")
    cores, memory = machine_cores(), available_memory()
    most = cores if memory is None else min(cores, max(1, memory // LOCAL_WORKER_BYTES))
    if int(n) > most:
        held = "" if memory is None else f" and {memory / 2**30:.1f} GiB of memory available"
        raise ValueError(f"local:{int(n)} asks for {int(n)} worker processes, but this machine "
                         f"has {cores} CPU core{'s' * (cores != 1)}{held}: use local:{most} at "
                         "most")
    return address


def machine_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def as_dask_array(X, client=None, chunks_per_worker: int = 2):
    """In-memory X (n, d), dense or sparse, as a Dask array of row chunks: ``chunks_per_worker``
    chunks for each worker of ``client`` (the current one by default), at least 1 000 rows each.
    The chunks live in the task graph, so a lost worker's chunks can be recomputed."""
    import dask.array as da

    n_workers = max(1, len(_current_client(client).nthreads()))
    rows = max(1000, -(-X.shape[0] // (chunks_per_worker * n_workers)))
    return da.from_array(X, chunks=(rows, -1), asarray=not sp.issparse(X))


def _current_client(client=None):
    if client is not None:
        return client
    from dask.distributed import default_client

    try:
        return default_client()
    except ValueError:
        raise ValueError(
            "fitting on a Dask collection needs a dask.distributed Client: start one first, "
            "e.g. `client = Client(LocalCluster())`, or use softmaxreg.distributed.connect"
            "('local:2')"
        ) from None


class _Watch:
    """Waits for results, and says so when a worker left instead of hanging on it."""

    def __init__(self, client, worker_timeout: float):
        self.client, self.worker_timeout = client, worker_timeout
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except TimeoutError as exc:
            raise ClusterError(f"the Dask cluster at {client.scheduler.address} has had no "
                               f"worker for {worker_timeout:g} s") from exc
        self.workers = set(client.nthreads())

    def result(self, future):
        return self.gather([future])[0]

    def gather(self, futures: list) -> list:
        """The futures' results; warns when a worker left, fails when none is left."""
        from dask.distributed import wait

        alone_since = None
        while True:
            try:
                wait(futures, timeout=_POLL_S)
                break
            except TimeoutError:
                alone_since = self._check(alone_since)
        self._check(None)
        try:
            return self.client.gather(futures)
        except Exception as exc:
            if type(exc).__name__ == "KilledWorker":
                raise ClusterError(f"Dask workers kept dying while computing {exc}; see the "
                                   "workers' logs (out of memory?)") from exc
            raise

    def _check(self, alone_since):
        now = set(self.client.nthreads())
        lost = self.workers - now
        if lost:
            warnings.warn(
                f"Dask worker(s) {', '.join(sorted(lost))} left during the fit; their chunks "
                f"are recomputed from the task graph on the {len(now)} worker(s) left",
                WorkerLostWarning, stacklevel=6)
        self.workers = now
        if now:
            return None
        alone_since = alone_since or time.monotonic()
        if time.monotonic() - alone_since > self.worker_timeout:
            raise ClusterError(f"no Dask worker left for {self.worker_timeout:g} s; the fit "
                               "cannot go on")
        return alone_since


def _add(*parts):
    """Element-wise sum of tuples of partial sums (arrays or numbers)."""
    return tuple(sum(values[1:], values[0]) for values in zip(*parts))


def _tree_sum(client, futures: Sequence):
    """Σ of the futures' tuples in a tree of fan-in ``_FAN_IN``, computed on the workers."""
    level = list(futures)
    while len(level) > 1:
        level = [client.submit(_add, *level[i: i + _FAN_IN], pure=False)
                 for i in range(0, len(level), _FAN_IN)]
    return level[0]


# -- the data on the workers ----------------------------------------------------------------------
def _as_dask_array(obj, name: str):
    """A Dask array from a Dask array, DataFrame or Series, with known chunk sizes."""
    import dask.array as da

    if not isinstance(obj, da.Array):
        if not hasattr(obj, "to_dask_array"):
            raise TypeError(f"{name} must be a Dask array, DataFrame or Series, got "
                            f"{type(obj).__name__}")
        obj = obj.to_dask_array(lengths=True)
    if any(np.isnan(c) for c in obj.chunks[0]):
        obj = obj.compute_chunk_sizes()
    return obj


def _align(v, X, name: str):
    """``v`` (n,) as a Dask array chunked like X's rows."""
    import dask.array as da

    v = _as_dask_array(v, name) if is_dask_collection(v) else da.from_array(np.asarray(v))
    if v.ndim != 1 or v.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has shape {v.shape}, but X has {X.shape[0]} rows")
    return v.rechunk((X.chunks[0],))


def _persist(client, X, y, sample_weight):
    """(X, y, sample_weight) as aligned Dask arrays, persisted: one future per row chunk."""
    from dask.distributed import futures_of

    X = _as_dask_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d), got shape {X.shape}")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    arrays = [X, _align(y, X, "y")]
    if sample_weight is not None:
        arrays.append(_align(sample_weight, X, "sample_weight"))
    persisted = client.persist(arrays)
    by_key = {f.key: f for f in futures_of(persisted)}
    blocks = [[by_key[k] for k in _block_keys(a)] for a in persisted]
    return blocks + [None] * (3 - len(blocks))


def _block_keys(a) -> list:
    keys = a.__dask_keys__()
    return [k[0] for k in keys] if a.ndim == 2 else list(keys)


def _chunk_summary(X, y, s):
    """(labels present, all features finite?, largest |x|, smallest s) of one chunk."""
    values = X.data if sp.issparse(X) else X
    finite = bool(np.isfinite(values).all()) if values.dtype.kind == "f" else True
    top = float(max(values.max(), -values.min())) if values.size else 0.0
    labels = np.unique(np.asarray(y))
    s_min = 1.0 if s is None or len(s) == 0 else float(np.min(s))
    return labels, finite, top, s_min


def _chunk_rows(X, y, s, classes, class_weight, dtype) -> MemoryRows:
    """The chunk as in-memory rows: X in the network's dtype (sparse as CSR, whose row slices
    minibatch steps take), class indices, row weights s_i · class_weight[y_i], without the rows
    of weight 0."""
    y_enc = np.searchsorted(classes, np.asarray(y))
    if class_weight is not None:
        cw = class_weight[y_enc]
        s = cw if s is None else np.asarray(s, dtype=np.float64) * cw
    X = X.tocsr().astype(dtype, copy=False) if sp.issparse(X) else np.asarray(X, dtype=dtype)
    if s is not None:
        s = np.asarray(s, dtype=np.float64)
        keep = np.flatnonzero(s > 0)
        if len(keep) < len(s):
            X, y_enc, s = X[keep], y_enc[keep], s[keep]
    return MemoryRows(X, y_enc, s)


def _class_totals(y, s, classes):
    """(Σ_{i: y_i = k} s_i for each class k,) of one raw chunk."""
    y_enc = np.searchsorted(classes, np.asarray(y))
    return (np.bincount(y_enc, weights=s, minlength=len(classes)),)


def _shape_of(chunk: MemoryRows):
    return chunk.n, chunk.total_weight, chunk.sparse


@dataclass
class DaskData:
    """Raw row chunks persisted on the workers and checked, before the estimator decides on the
    network's dtype and the class weights: what :func:`scan` found."""

    watch: _Watch
    chunks: list  # [(X_c, y_c, s_c)] futures (s_c None without sample weights)
    classes: NDArray
    class_totals: NDArray[np.float64]  # Σ s per class (counts without sample weights)
    top: float  # max |x|
    dtype: np.dtype
    n_features: int
    columns: list | None  # a DataFrame's column names

    def prepare(self, class_weight: NDArray | None, dtype) -> DaskRows:
        """The chunks as :class:`MemoryRows` on the workers (the raw ones can then go)."""
        client = self.watch.client
        chunks = [client.submit(_chunk_rows, *parts, self.classes, class_weight, dtype,
                                pure=False) for parts in self.chunks]
        shapes = self.watch.gather([client.submit(_shape_of, c, pure=False) for c in chunks])
        offsets = np.concatenate([[0], np.cumsum([n for n, _, _ in shapes])]).astype(np.int64)
        rows = DaskRows(self.watch, chunks, offsets, float(sum(w for _, w, _ in shapes)),
                        self.top, shapes[0][2], np.dtype(dtype), self.n_features)
        self.chunks = []
        return rows


def scan(X, y, sample_weight=None, *, client=None,
         worker_timeout: float = WORKER_TIMEOUT_S) -> DaskData:
    """Persist (X, y, sample_weight) on the cluster as aligned row chunks and check them: numbers,
    finite, non-negative weights; the classes, their total weights and max |x|, in one pass.

    X (n, d) is a Dask array (dense or scipy.sparse chunks) or DataFrame; y (n,) and
    ``sample_weight`` (n,) are Dask arrays or Series, or NumPy arrays.
    """
    client = _current_client(client)
    columns = getattr(X, "columns", None)
    X = _as_dask_array(X, "X")
    watch = _Watch(client, worker_timeout)
    dtype = np.dtype(X.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"X has dtype {dtype}; expected numbers")
    Xb, yb, sb = _persist(client, X, y, sample_weight)
    chunks = list(zip(Xb, yb, sb if sb is not None else [None] * len(Xb)))
    summaries = watch.gather([client.submit(_chunk_summary, *parts) for parts in chunks])
    if not all(finite for _, finite, _, _ in summaries):
        raise ValueError("Input X contains NaN or infinity")
    if min(s_min for *_, s_min in summaries) < 0:
        raise ValueError("Negative values in data passed to `sample_weight`")
    classes = np.unique(np.concatenate([labels for labels, *_ in summaries]))
    totals = watch.result(_tree_sum(client, [
        client.submit(_class_totals, yc, sc, classes, pure=False) for _, yc, sc in chunks]))[0]
    return DaskData(watch, chunks, classes, totals, max(top for _, _, top, _ in summaries),
                    dtype, X.shape[1], None if columns is None else list(columns))


# -- the backend: partial sums from the chunks ----------------------------------------------------
def _chunk_sums(chunk: MemoryRows, spec: NetworkSpec, theta):
    return chunk.loss_grad_sums(spec.build(), theta)


def _chunk_gram(chunk: MemoryRows, spec: NetworkSpec, theta, floor, diagonal, dtype):
    return chunk.gram_sums(spec.build(), theta, floor, diagonal, dtype)


def _chunk_batch(chunk: MemoryRows, spec: NetworkSpec, theta, rows):
    """(Σ s CE, Σ s ∇CE, Σ s, correct predictions) over the chunk's ``rows`` of this step."""
    loss, grads, correct, m = chunk.batch(spec.build(theta), rows, 0.0)
    return m * loss, m * grads.astype(np.float64), m, correct


@dataclass
class DaskRows(Rows):
    """Row chunks persisted on the workers as :class:`MemoryRows` futures; chunk c holds the
    rows ``offsets[c]:offsets[c+1]`` of the whole, in order."""

    watch: _Watch
    chunks: list
    offsets: NDArray[np.int64]
    total_weight: float
    top: float
    sparse: bool
    dtype: np.dtype
    n_features: int

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    def _theta(self, theta):
        """θ as one small task, fetched once by each worker that needs it."""
        return self.watch.client.submit(np.array, np.asarray(theta, dtype=np.float64),
                                        key=f"softmaxreg-theta-{uuid.uuid4().hex}")

    def _sum(self, function, *args):
        """Σ over the chunks of ``function(chunk, *args)``, tree-summed on the workers."""
        client = self.watch.client
        return _tree_sum(client, [client.submit(function, chunk, *args, pure=False)
                                  for chunk in self.chunks])

    def submit(self, spec: NetworkSpec, theta):
        """The future of (Σ s CE, Σ s ∇CE, Σ s) at θ."""
        return self._sum(_chunk_sums, spec, self._theta(theta))

    def loss_grad_sums(self, net: Network, theta):
        return self.watch.result(self.submit(net.spec, theta))

    def gram_sums(self, net: Network, theta, floor: float, diagonal: bool, dtype):
        theta = None if theta is None else self._theta(theta)
        return self.watch.result(self._sum(_chunk_gram, net.spec, theta, floor, diagonal, dtype))

    def batch(self, net: Network, rows: NDArray[np.intp], l2: float):
        """The step's sums from the chunks that hold some of ``rows`` (global row numbers)."""
        client, spec, theta = self.watch.client, net.spec, self._theta(net.params)
        owner = np.searchsorted(self.offsets, rows, side="right") - 1
        parts = [client.submit(_chunk_batch, self.chunks[c], spec, theta,
                               rows[owner == c] - self.offsets[c], pure=False)
                 for c in np.unique(owner)]
        loss_sum, grad_sum, m, correct = self.watch.result(_tree_sum(client, parts))
        grads = grad_sum / m + l2 * net.params * net.penalty_mask
        return loss_sum / m, grads.astype(net.dtype), correct, m


# -- prediction, lazily ---------------------------------------------------------------------------
def _check_features(estimator, X):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    X = _as_dask_array(X, "X")
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[-1]} features, but {type(estimator).__name__} is "
                         f"expecting {estimator.n_features_in_} features as input")
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


def _block_call(X, estimator, method: str):
    return getattr(estimator, method)(X)


def map_rows(estimator, method: str, X):
    """``estimator.method`` (predict, predict_proba, decision_function, ...) on each row chunk
    of the Dask array or DataFrame ``X``, as a lazy Dask array: (n,) or (n, K) as the method
    gives for one row."""
    X = _check_features(estimator, X)
    one = np.asarray(getattr(estimator, method)(np.zeros((1, X.shape[1]), dtype=X.dtype)))
    empty = np.empty((0, *one.shape[1:]), dtype=one.dtype)
    if one.ndim == 1:
        return X.map_blocks(_block_call, estimator, method, dtype=one.dtype, drop_axis=1,
                            meta=empty)
    return X.map_blocks(_block_call, estimator, method, dtype=one.dtype,
                        chunks=(X.chunks[0], one.shape[1:]), meta=empty)
