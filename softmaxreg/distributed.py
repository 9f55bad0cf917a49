"""Training on Dask: the data stay on the workers, only θ and ∇J travel.

The objective is the mean form of :mod:`softmaxreg.network`, split over row chunks c:

    J(θ) = (1 / Σ_i s_i) Σ_c Σ_{i∈c} s_i CE_i(θ) + (l2 / 2) Σ_l ‖W[l]‖²

Each chunk returns its partial sums (Σ_{i∈c} s_i CE_i, Σ_{i∈c} s_i ∇CE_i, Σ_{i∈c} s_i); a tree
reduction on the workers adds them, and the client divides by Σ s and adds the penalty.  The
sums are the in-memory sums in another order, so a fit here equals the in-memory fit of the same
data up to rounding (float64: far below the solver's tolerance).

Full batch (``lbfgs``, ``fista``): one evaluation of J and ∇J per solver step.  The
preconditioners of :class:`~softmaxreg.solvers.BlockPreconditioner` need B = X̃ᵀ diag(w) X̃,
(d + 1) × (d + 1): each chunk returns its part once per stage of the staged L-BFGS that
SoftmaxRegression uses (its diagonal, then the curvature-weighted matrix).

Minibatch (``sgd``, ``adam``, ``adamw``): synchronous data parallelism.  Each step's minibatch
is drawn from the same permutation of all rows as in memory (:func:`training.epoch_permutation`);
every chunk holding some of its rows returns their gradient sum, and the step uses the exact
weighted sum.  With the same seed, a run equals the in-memory run up to rounding.

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
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from . import optim, proximal, solvers
from .exceptions import SoftmaxRegError, TrainingDivergedError
from .network import Network
from .training import History, TrainConfig, _no_improvement, epoch_permutation

__all__ = ["ClusterError", "WorkerLostWarning", "connect", "as_dask_array", "is_dask_collection",
           "fit", "predict", "predict_proba", "decision_function"]

CONNECT_TIMEOUT_S = 10.0
WORKER_TIMEOUT_S = 60.0  # how long an evaluation waits with no worker at all before failing
_POLL_S = 0.5
_FAN_IN = 8  # partial sums added per task of the tree reduction
_GRAM_ROWS = 2048  # rows per block of X̃ᵀ diag(w) X̃, as BlockPreconditioner.from_gram
_MINIBATCH_SOLVERS = ("sgd", "adam", "adamw")


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

    ``local:N`` starts a LocalCluster of N single-threaded worker processes on 127.0.0.1;
    ``tcp://HOST:PORT`` (or ``tls://…``) joins a running scheduler, which must answer within
    ``timeout`` seconds (default ``CONNECT_TIMEOUT_S``), else :class:`ClusterError`.
    """
    from dask.distributed import Client, LocalCluster

    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    address = address.strip()
    if address.startswith("local:"):
        n = address.removeprefix("local:")
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--dask local:N needs a positive number of workers, got {address!r}")
        cluster = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0")
        with cluster, Client(cluster) as client:
            yield client
        return
    if "://" not in address:
        raise ValueError(f"unknown Dask address {address!r}: expected local:N or "
                         "tcp://HOST:PORT")
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                           f"({exc}); is `dask scheduler` running there?") from exc
    with client:
        yield client


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
@dataclass
class _Spec:
    """What a worker needs to rebuild the network (no parameters: θ comes with each step)."""

    layer_sizes: tuple[int, ...]
    activation: str
    output: str
    dtype: str
    fit_intercept: bool

    @classmethod
    def of(cls, net: Network) -> _Spec:
        return cls(net.layer_sizes, net.activation, net.output, net.dtype.str, net.fit_intercept)

    def network(self, theta: NDArray) -> Network:
        net = Network(self.layer_sizes, self.activation, self.output, np.dtype(self.dtype),
                      self.fit_intercept)
        net.params[...] = theta
        return net


@dataclass
class ShardedData:
    """Row chunks (X_c, y_c, s_c) persisted on the workers, as futures, with their row offsets.

    ``y`` holds class indices 0..K−1, ``s`` the row weights (None when all are 1); rows of
    weight 0 are dropped, as in memory.
    """

    client: object
    X: list
    y: list
    s: list | None
    offsets: NDArray[np.int64]  # (n_chunks + 1,): chunk c holds rows offsets[c]:offsets[c+1]
    total_weight: float
    sparse: bool
    top: float = 0.0  # max |x|: whether squares overflow (the preconditioner's Gram)

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    def parts(self, c: int):
        return self.X[c], self.y[c], None if self.s is None else self.s[c]


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


def _chunk_prepare(X, y, s, classes, class_weight, dtype):
    """(X in the network's dtype, class indices, row weights) without the rows of weight 0."""
    y_enc = np.searchsorted(classes, np.asarray(y))
    if class_weight is not None:
        cw = class_weight[y_enc]
        s = cw if s is None else np.asarray(s, dtype=np.float64) * cw
    # CSR: minibatch steps slice rows, which CSC cannot do without a copy
    X = X.tocsr().astype(dtype, copy=False) if sp.issparse(X) else np.asarray(X, dtype=dtype)
    if s is None:
        return X, y_enc, None
    s = np.asarray(s, dtype=np.float64)
    keep = s > 0
    if keep.all():
        return X, y_enc, s
    rows = np.flatnonzero(keep)
    return X[rows], y_enc[rows], s[rows]


def _class_totals(y_enc, s, K):
    return (np.bincount(y_enc, weights=s, minlength=K),)


def _n_rows(X):
    return X.shape[0]


def shard(watch: _Watch, X, y, sample_weight=None):
    """Persist the data and check it: ((X, y, s) chunk futures, classes present, max |x|)."""
    client = watch.client
    Xb, yb, sb = _persist(client, X, y, sample_weight)
    dtype = np.dtype(X.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"X has dtype {dtype}; expected numbers")
    sb_or_none = sb if sb is not None else [None] * len(Xb)
    summaries = watch.gather([client.submit(_chunk_summary, Xc, yc, sc)
                              for Xc, yc, sc in zip(Xb, yb, sb_or_none)])
    if not all(finite for _, finite, _, _ in summaries):
        raise ValueError("Input X contains NaN or infinity")
    if min(s_min for *_, s_min in summaries) < 0:
        raise ValueError("Negative values in data passed to `sample_weight`")
    classes = np.unique(np.concatenate([labels for labels, *_ in summaries]))
    return (Xb, yb, sb), classes, max(top for _, _, top, _ in summaries)


def prepare(watch: _Watch, raw, classes, class_weight, net_dtype) -> ShardedData:
    """The chunks in the network's dtype, with class indices and row weights (on the workers)."""
    client = watch.client
    Xb, yb, sb = raw
    K = len(classes)
    cw = _class_weight_vector(watch, raw, classes, class_weight)
    parts = [client.submit(_chunk_prepare, Xc, yc, None if sb is None else sb[c], classes, cw,
                           net_dtype, pure=False)
             for c, (Xc, yc) in enumerate(zip(Xb, yb))]
    X = [client.submit(_item, p, 0, pure=False) for p in parts]
    y = [client.submit(_item, p, 1, pure=False) for p in parts]
    weighted = sb is not None or cw is not None
    s = [client.submit(_item, p, 2, pure=False) for p in parts] if weighted else None
    sizes = watch.gather([client.submit(_n_rows, Xc, pure=False) for Xc in X])
    totals = watch.result(_tree_sum(client, [
        client.submit(_class_totals, yc, None if s is None else s[c], K, pure=False)
        for c, yc in enumerate(y)]))[0]
    if np.count_nonzero(totals) < 2:
        raise ValueError("The data must hold rows of at least 2 classes with a positive "
                         f"sample_weight; only class {classes[totals > 0].tolist()} has any weight")
    sparse = bool(watch.result(client.submit(sp.issparse, X[0], pure=False)))
    return ShardedData(client, X, y, s, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                       float(totals.sum()), sparse)


def _item(t, i):
    return t[i]


def _class_weight_vector(watch: _Watch, raw, classes, class_weight):
    """class_weight[k] for k = 0..K−1, with scikit-learn's meaning of "balanced" (the sample
    weights counted in) and 0 for a class without rows; None when there is none."""
    if class_weight is None:
        return None
    from sklearn.utils.class_weight import compute_class_weight

    if class_weight != "balanced":
        return compute_class_weight(class_weight, classes=classes, y=classes)
    client, (_, yb, sb), K = watch.client, raw, len(classes)
    totals = watch.result(_tree_sum(client, [
        client.submit(_encoded_totals, yc, None if sb is None else sb[c], classes, K)
        for c, yc in enumerate(yb)]))[0]
    with np.errstate(divide="ignore"):
        cw = totals.sum() / (K * totals)
    return np.where(totals > 0, cw, 0.0)


def _encoded_totals(y, s, classes, K):
    return _class_totals(np.searchsorted(classes, np.asarray(y)), s, K)


# -- the objective --------------------------------------------------------------------------------
def _chunk_loss_grad(spec: _Spec, theta, X, y, s):
    """(Σ_{i∈c} s_i CE_i, Σ_{i∈c} s_i ∇CE_i, Σ_{i∈c} s_i) of one chunk, unpenalised, float64."""
    m = float(X.shape[0] if s is None else np.sum(s))
    if m == 0:
        return 0.0, np.zeros(theta.size), 0.0
    net = spec.network(theta)
    J, g = net.objective(X, y, s, l2=0.0)(theta)  # the chunk's mean form, in row blocks
    return m * J, m * g, m


def _chunk_gram(spec: _Spec, theta, X, s, floor: float, diagonal: bool, wide: bool):
    """(Σ_i v_i x_i x_iᵀ or its diagonal, Σ_i v_i x_i, Σ_i v_i) of one chunk, float64 sums of
    row blocks in X's precision (``wide``: float64), as ``BlockPreconditioner.from_gram``, with
    v_i = s_i, or v_i = s_i max(κ_i, floor) with κ_i the logits' curvature at θ when θ is
    given."""
    v = np.ones(X.shape[0]) if s is None else np.asarray(s, dtype=np.float64)
    if theta is not None:
        v = v * np.maximum(spec.network(theta).logit_curvature(X), floor)
    return solvers.gram_sums(X, v, diagonal, np.float64 if wide else None, _GRAM_ROWS)


def _fits(dtype, n: int) -> float:
    """The largest |x| whose squares summed over n rows stay finite in ``dtype``."""
    return float(np.sqrt(np.finfo(dtype).max / n))


def _preconditioner(G, g, g0, l2: float, n_classes: int, fit_intercept: bool, diagonal: bool):
    """The preconditioner from the sums gathered over the chunks (``gram_sums`` per chunk)."""
    return solvers.BlockPreconditioner.from_sums(G, g, g0, l2, n_classes, fit_intercept, diagonal)


class DaskObjective:
    """``f(θ) -> (J, ∇J)`` over the chunks of :class:`ShardedData`, for full-batch solvers.

    Each call sends θ (one small task, fetched once by each worker), runs one task per chunk on
    the worker that holds it, and adds the partial sums in a tree on the workers.
    """

    def __init__(self, data: ShardedData, net: Network, l2: float, watch: _Watch):
        self.data, self.net, self.l2, self.watch = data, net, l2, watch
        self.spec = _Spec.of(net)
        self.n_evaluations = 0

    def submit(self, theta: NDArray[np.float64]):
        """The future of (Σ s CE, Σ s ∇CE, Σ s) at θ."""
        client = self.data.client
        theta_f = client.submit(np.array, theta, key=f"softmaxreg-theta-{uuid.uuid4().hex}")
        parts = [client.submit(_chunk_loss_grad, self.spec, theta_f, *self.data.parts(c),
                               pure=False)
                 for c in range(len(self.data.X))]
        return _tree_sum(client, parts)

    def __call__(self, theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        loss_sum, grad_sum, _ = self.watch.result(self.submit(theta))
        self.n_evaluations += 1
        net, S = self.net, self.data.total_weight
        net.params[...] = theta
        J = loss_sum / S + net.penalty(self.l2)
        return J, grad_sum / S + self.l2 * theta * net.penalty_mask

    def preconditioner(self, theta, weight: float, floor: float, diagonal: bool):
        """:class:`BlockPreconditioner` of B = X̃ᵀ diag(w) X̃ + l2 D with w_i = weight · s_i / Σ s
        (θ None: the Hessian bound) or w_i = s_i max(κ_i(θ), floor) / Σ s (the curvature at θ),
        from one pass over the chunks."""
        data, client = self.data, self.data.client
        wide = data.top > _fits(self.net.dtype, data.n)
        parts = [client.submit(_chunk_gram, self.spec, theta, data.X[c],
                               None if data.s is None else data.s[c], floor, diagonal, wide,
                               pure=False) for c in range(len(data.X))]
        G, g, g0 = self.watch.result(_tree_sum(client, parts))
        scale = weight / data.total_weight
        K = self.net.layer_sizes[-1]
        return _preconditioner(G * scale, g * scale, g0 * scale, self.l2, K,
                               self.net.fit_intercept, diagonal)


# -- fitting an estimator -------------------------------------------------------------------------
def fit(estimator, X, y, sample_weight=None, *, client=None,
        worker_timeout: float = WORKER_TIMEOUT_S):
    """``estimator.fit(X, y, sample_weight)`` for Dask collections: returns the estimator.

    X (n, d) is a Dask array (dense or scipy.sparse chunks) or DataFrame; y (n,) and
    ``sample_weight`` (n,) are Dask arrays or Series, or NumPy arrays.  The solver is the
    estimator's; early stopping is not available here (it needs a held-out part of the data).
    """
    estimator._validate_params()
    estimator._check_solver()
    if estimator.early_stopping:
        raise ValueError("early_stopping is not available on Dask data: hold out a validation "
                         "set yourself and compare scores between fits")
    client = _current_client(client)
    columns = getattr(X, "columns", None)
    X = _as_dask_array(X, "X")
    watch = _Watch(client, worker_timeout)
    raw, classes, top = shard(watch, X, y, sample_weight)
    _set_classes(estimator, classes, X.shape[1], columns)
    estimator._seed = int(_random_state(estimator).randint(2**31 - 1))
    dtype = estimator._dtype(np.dtype(X.dtype), np.array([top]))  # the range decides, as in memory
    net = estimator._start_network(X.shape[1], dtype)
    data = prepare(watch, raw, classes, estimator.class_weight, net.dtype)
    data.top = top
    del raw  # the prepared chunks stay; the raw ones can go (and be recomputed if need be)
    if estimator.solver in _MINIBATCH_SOLVERS:
        _fit_minibatch(estimator, net, data, watch)
    else:
        _fit_full_batch(estimator, net, data, watch)
    return estimator


def _random_state(estimator):
    from sklearn.utils import check_random_state

    return check_random_state(estimator.random_state)


def _set_classes(estimator, classes, d: int, columns) -> None:
    """``classes_``, ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame)."""
    if len(classes) < 2:
        raise ValueError("This solver needs samples of at least 2 classes in the data, but the "
                         f"data contains only one class: {classes[0]!r}")
    warm = bool(estimator.warm_start) and hasattr(estimator, "_net")
    if warm and not np.array_equal(classes, estimator.classes_):
        raise ValueError("warm_start=True needs the same classes as the previous fit: got "
                         f"{classes.tolist()}, expected {estimator.classes_.tolist()}")
    if warm and d != estimator.n_features_in_:
        raise ValueError(f"X has {d} features, but {type(estimator).__name__} is expecting "
                         f"{estimator.n_features_in_} features as input")
    estimator.classes_ = classes
    estimator.n_features_in_ = d
    if columns is not None and all(isinstance(c, str) for c in columns):
        estimator.feature_names_in_ = np.asarray(list(columns), dtype=object)
    else:
        estimator.__dict__.pop("feature_names_in_", None)


def _fit_full_batch(estimator, net: Network, data: ShardedData, watch: _Watch) -> None:
    l1, l2 = estimator._penalties(data.n, data.total_weight, data.n)
    fun = DaskObjective(data, net, l2, watch)
    if estimator.solver == "fista":
        res = proximal.fista(fun, net.params, l1, net.penalty_mask, estimator.max_iter,
                             estimator.tol)
    else:
        res = solvers.staged_lbfgs(fun, net.params, _lbfgs_stages(estimator, fun),
                                   estimator.max_iter, estimator.tol)
    net.params[...] = res.x
    estimator._finish_full_batch(net, res)


def _lbfgs_stages(estimator, fun: DaskObjective) -> list:
    """The stages of ``SoftmaxRegression._lbfgs_stages`` (dense X, d ≤ 4096): the diagonal of
    the Hessian bound, then the curvature-weighted Gram at the point reached; plain L-BFGS for
    networks and sparse X."""
    from .estimators import (
        _DIAGONAL_STAGE_ITERATIONS,
        _MAX_PRECONDITIONED_FEATURES,
        SoftmaxRegression,
    )

    net = fun.net
    if (not isinstance(estimator, SoftmaxRegression) or fun.data.sparse
            or net.layer_sizes[0] > _MAX_PRECONDITIONED_FEATURES
            or fun.data.top > _fits(np.float64, fun.data.n)):  # squares overflow even float64
        return [(None, lambda theta: None)]
    bound = 0.5 if net.output == "softmax" else 0.25
    return [(_DIAGONAL_STAGE_ITERATIONS,
             lambda theta: fun.preconditioner(None, bound, 0.0, diagonal=True)),
            (None, lambda theta: fun.preconditioner(theta, 1.0, 1e-4 * bound, diagonal=False))]


# -- minibatch: synchronous data parallelism ------------------------------------------------------
def _chunk_batch(spec: _Spec, theta, X, y, s, rows):
    """(Σ s CE, Σ s ∇CE, Σ s, correct predictions) over the chunk's ``rows`` of this step."""
    Xr, yr = X[rows], y[rows]
    sr = None if s is None else s[rows]
    m = float(len(rows) if sr is None else sr.sum())
    net = spec.network(theta)
    loss, grads, Z = net.loss_grad(Xr, yr, sr)
    pred = (Z[:, 0] > 0).astype(np.intp) if Z.shape[1] == 1 else Z.argmax(axis=1)
    return m * loss, m * grads.astype(np.float64), m, int(np.sum(pred == yr))


def _step(data: ShardedData, spec: _Spec, theta, idx: NDArray[np.intp], watch: _Watch):
    """Sums over the rows ``idx`` (global row numbers), from the chunks that hold them."""
    client = data.client
    owner = np.searchsorted(data.offsets, idx, side="right") - 1
    theta_f = client.submit(np.array, theta, key=f"softmaxreg-theta-{uuid.uuid4().hex}")
    parts = []
    for c in np.unique(owner):
        rows = idx[owner == c] - data.offsets[c]
        parts.append(client.submit(_chunk_batch, spec, theta_f, *data.parts(c), rows,
                                   pure=False))
    return watch.result(_tree_sum(client, parts))


def _fit_minibatch(estimator, net: Network, data: ShardedData, watch: _Watch) -> None:
    """The epochs of the in-memory minibatch loop, each step's gradient summed over the chunks."""
    n = data.n
    bs = max(1, min(estimator.batch_size, n))
    _, l2 = estimator._penalties(n, data.total_weight, bs)
    lr0 = estimator.learning_rate_init or estimator._default_lr[estimator.solver]
    schedule = optim.make_schedule(estimator.learning_rate, lr0, estimator.max_iter)
    config = TrainConfig(epochs=estimator.max_iter, batch_size=bs, l2=l2, seed=estimator._seed,
                         n_iter_no_change=estimator.n_iter_no_change, tol=estimator.tol)
    if not (bool(estimator.warm_start) and hasattr(estimator, "history_")):
        estimator.history_ = History()
    estimator._new_optimizer(net)
    spec, best = _Spec.of(net), {"loss": np.inf, "params": None, "stale": 0}
    epoch = 0
    for epoch in range(config.epochs):
        logs = _epoch(estimator, net, data, spec, config, schedule, epoch, watch)
        estimator.history_.append(logs)
        if _no_improvement(best, net, logs, config):
            break
    estimator._set_n_iter(epoch + 1)
    estimator.loss_curve_ = list(estimator.history_.loss)
    estimator.loss_ = estimator.history_.loss[-1]
    if epoch + 1 >= estimator.max_iter:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"Stochastic optimizer: maximum iterations ({estimator.max_iter}) reached and the "
            "optimization hasn't converged yet. Increase max_iter, or the learning rate.",
            ConvergenceWarning, stacklevel=4)


def _epoch(estimator, net, data, spec, config, schedule, epoch, watch) -> dict:
    """One epoch of :func:`training.train`'s loop (same permutation, batches and per-step
    learning rate ``schedule(epoch + start / n)``), each gradient summed over the chunks."""
    n, bs = data.n, config.batch_size
    perm = epoch_permutation(n, config.seed, epoch)
    last_good = net.params.copy()
    total = correct = 0.0
    lr = schedule(epoch)
    for start in range(0, n, bs):
        lr = schedule(epoch + start / n)
        loss_sum, grad_sum, m, right = _step(data, spec, net.params.astype(np.float64),
                                             perm[start: start + bs], watch)
        if not np.isfinite(loss_sum):
            _diverged(net, last_good, f"the training loss became {loss_sum / m}", epoch, lr)
        grads = grad_sum / m + config.l2 * net.params * net.penalty_mask
        total += loss_sum
        correct += right
        estimator._opt.step(net.params, grads.astype(net.dtype), lr)
    if not np.all(np.isfinite(net.params)):
        _diverged(net, last_good, "the parameters became non-finite", epoch, lr)
    return {"epoch": epoch + 1, "loss": total / data.total_weight, "accuracy": correct / n,
            "lr": lr}


def _diverged(net: Network, last_good, what: str, epoch: int, lr: float):
    net.params[...] = last_good
    raise TrainingDivergedError(
        f"{what} in epoch {epoch + 1} (learning rate {lr:g}); training stopped and the model "
        "keeps the weights of the last finite epoch. Try a smaller learning rate.")


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


def predict_proba(estimator, X):
    """Ŷ (n, K) as a lazy Dask array: ``estimator.predict_proba`` on each row chunk."""
    X = _check_features(estimator, X)
    K = len(estimator.classes_)
    return X.map_blocks(_block_call, estimator, "predict_proba", dtype=estimator._net.dtype,
                        chunks=(X.chunks[0], (K,)), meta=np.empty((0, K), estimator._net.dtype))


def decision_function(estimator, X):
    """Z[L] as a lazy Dask array: (n, K), or (n,) with two classes."""
    X = _check_features(estimator, X)
    dtype = estimator._net.dtype
    if len(estimator.classes_) == 2:
        return X.map_blocks(_block_call, estimator, "decision_function", dtype=dtype,
                            drop_axis=1, meta=np.empty((0,), dtype))
    K = len(estimator.classes_)
    return X.map_blocks(_block_call, estimator, "decision_function", dtype=dtype,
                        chunks=(X.chunks[0], (K,)), meta=np.empty((0, K), dtype))


def predict(estimator, X):
    """Labels of ``classes_`` as a lazy Dask array (n,)."""
    X = _check_features(estimator, X)
    dtype = estimator.classes_.dtype
    return X.map_blocks(_block_call, estimator, "predict", dtype=dtype, drop_axis=1,
                        meta=np.empty((0,), dtype))
