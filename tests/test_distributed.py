"""Distributed fits on Dask agree with the in-memory fits of the same data.

Every cluster here listens on 127.0.0.1 only, has no dashboard, and is shut down by its fixture
or its ``with`` block; every test runs under a time limit (``time_limit``).
"""

from __future__ import annotations

import os
import signal
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from softmaxreg import SoftmaxNetwork, SoftmaxRegression
from softmaxreg import distributed as dist
from softmaxreg.cli import main

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")
pd = pytest.importorskip("pandas")

RTOL = 1e-6
TIME_LIMIT_S = 120  # per test: a hung cluster fails the test instead of the CI run


@pytest.fixture(autouse=True)
def time_limit():
    """Fail a test that runs past TIME_LIMIT_S (SIGALRM: Linux and macOS, main thread)."""
    def expire(signum, frame):
        raise TimeoutError(f"test ran past {TIME_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _cluster(n_workers: int, processes: bool):
    kwargs = dict(n_workers=n_workers, threads_per_worker=1, processes=processes,
                  host="127.0.0.1", dashboard_address="127.0.0.1:0")
    if not processes:
        kwargs["protocol"] = "tcp"  # in-process workers would otherwise use inproc://, not TCP
    return distributed.LocalCluster(**kwargs)


@pytest.fixture(scope="module")
def client():
    """Two single-threaded in-process workers on 127.0.0.1 (fast to start); the scheduler's
    HTTP server on a free port of 127.0.0.1."""
    with _cluster(2, processes=False) as cluster, distributed.Client(cluster, timeout=30) as c:
        yield c


def _problem(n=1200, d=12, K=4, seed=0):
    """A well-conditioned K-class problem with features of different scales and offsets."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d) + rng.normal(size=d)
    W = rng.normal(size=(K, d))
    y = (X @ W.T + rng.gumbel(size=(n, K))).argmax(axis=1)
    return X, y


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def _chunks(X, rows=300):
    return da.from_array(X, chunks=(rows, X.shape[1]))


# -- exact fits -----------------------------------------------------------------------------------
def test_lbfgs_fit_equals_in_memory_fit(client):
    X, y = _problem()
    kw = dict(C=0.5, tol=1e-8, max_iter=500)
    ref = SoftmaxRegression(**kw).fit(X, y)
    got = SoftmaxRegression(**kw).fit(_chunks(X), y)
    assert _rel(got.coef_, ref.coef_) < RTOL
    assert _rel(got.intercept_, ref.intercept_) < RTOL
    assert got.loss_ == pytest.approx(ref.loss_, rel=1e-10)
    assert got.n_features_in_ == X.shape[1] and list(got.classes_) == [0, 1, 2, 3]


def test_fit_with_chunked_labels_weights_and_class_weight(client):
    """Row weights (zeros included) and "balanced" class weights mean the same as in memory."""
    X, y = _problem(seed=1)
    sw = np.random.default_rng(2).uniform(0, 2, len(y))
    sw[:40] = 0
    kw = dict(tol=1e-8, max_iter=500, class_weight="balanced")
    ref = SoftmaxRegression(**kw).fit(X, y, sample_weight=sw)
    got = SoftmaxRegression(**kw).fit(_chunks(X, 250), da.from_array(y, chunks=400),
                                      sample_weight=da.from_array(sw, chunks=500))
    assert _rel(got.coef_, ref.coef_) < RTOL


def test_binary_problem_has_one_sigmoid_unit(client):
    X, y = _problem(K=2, seed=3)
    labels = np.array(["no", "yes"])[y]
    ref = SoftmaxRegression(tol=1e-8).fit(X, labels)
    got = SoftmaxRegression(tol=1e-8).fit(_chunks(X), labels)
    assert got.coef_.shape == (1, X.shape[1])
    assert _rel(got.coef_, ref.coef_) < RTOL
    assert got.decision_function(_chunks(X)).shape == (X.shape[0],)
    np.testing.assert_array_equal(got.predict(_chunks(X)).compute(), ref.predict(X))


def test_sparse_chunks_equal_in_memory_sparse_fit(client):
    rng = np.random.default_rng(4)
    X = sp.random(1000, 40, density=0.15, format="csr", random_state=5)
    y = (X @ rng.normal(size=(40, 3))).argmax(axis=1)
    Xd = da.from_array(X, chunks=(250, 40), asarray=False)
    ref = SoftmaxRegression(tol=1e-8, max_iter=1000).fit(X, y)
    got = SoftmaxRegression(tol=1e-8, max_iter=1000).fit(Xd, y)
    assert _rel(got.coef_, ref.coef_) < RTOL


def test_dataframe_input_keeps_feature_names(client):
    X, y = _problem(seed=6)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    ddf = dd.from_pandas(frame, npartitions=4)
    ref = SoftmaxRegression(tol=1e-8).fit(frame, y)
    got = SoftmaxRegression(tol=1e-8).fit(ddf, dd.from_pandas(pd.Series(y), npartitions=4))
    assert _rel(got.coef_, ref.coef_) < RTOL
    assert list(got.feature_names_in_) == list(frame.columns)


def test_predictions_are_lazy_dask_arrays(client):
    X, y = _problem(seed=7)
    model = SoftmaxRegression().fit(X, y)
    Xd = _chunks(X)
    for method in ("predict_proba", "decision_function", "predict"):
        lazy = getattr(model, method)(Xd)
        assert isinstance(lazy, da.Array), method
        assert lazy.chunks[0] == Xd.chunks[0]
        np.testing.assert_allclose(lazy.compute(), getattr(model, method)(X), rtol=1e-12)
    with pytest.raises(ValueError, match="features"):
        model.predict(Xd[:, :5])


def test_fista_elastic_net_equals_in_memory(client):
    """The proximal solver sees the same objective: the same exact zeros, the same weights."""
    X, y = _problem(n=600, d=8, seed=11)
    kw = dict(solver="fista", l1_ratio=0.7, C=0.05, tol=1e-6, max_iter=2000)
    ref = SoftmaxRegression(**kw).fit(X, y)
    got = SoftmaxRegression(**kw).fit(_chunks(X, 200), y)
    assert np.any(ref.coef_ == 0)
    np.testing.assert_array_equal(got.coef_ == 0, ref.coef_ == 0)
    assert _rel(got.coef_, ref.coef_) < RTOL


# -- networks -------------------------------------------------------------------------------------
def test_network_full_batch_equals_single_machine(client):
    X, y = _problem(n=900, seed=8)
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=40, random_state=0,
              dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is reached on purpose
        ref = SoftmaxNetwork(**kw).fit(X, y)
        got = SoftmaxNetwork(**kw).fit(_chunks(X), y)
    assert _rel(got.network_.params, ref.network_.params) < RTOL
    assert got.n_iter_ == ref.n_iter_


def test_network_minibatch_steps_are_the_single_machine_steps(client):
    """Synchronous data parallelism: each step's gradient is the exact sum over the shards."""
    X, y = _problem(n=900, seed=9)
    kw = dict(hidden_layer_sizes=(8,), solver="adam", batch_size=300, max_iter=2,
              random_state=0, dtype="float64", learning_rate="cosine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = SoftmaxNetwork(**kw).fit(X, y)
        got = SoftmaxNetwork(**kw).fit(_chunks(X, 200), y)
    assert _rel(got.network_.params, ref.network_.params) < 1e-10
    np.testing.assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=1e-10)
    assert got.history_.accuracy == ref.history_.accuracy


# -- errors ---------------------------------------------------------------------------------------
def test_bad_input_gets_the_in_memory_errors(client):
    X, y = _problem(n=400)
    X_nan = X.copy()
    X_nan[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxRegression().fit(_chunks(X_nan), y)
    with pytest.raises(ValueError, match="only one class"):
        SoftmaxRegression().fit(_chunks(X), np.zeros(len(y)))
    with pytest.raises(ValueError, match="rows"):
        SoftmaxRegression().fit(_chunks(X), y[:-1])
    with pytest.raises(ValueError, match="early_stopping"):
        SoftmaxNetwork(early_stopping=True).fit(_chunks(X), y)


def test_addresses_are_checked_before_connecting():
    for bad in ("local:0", "local:two", "scheduler.example:8786"):
        with pytest.raises(ValueError, match="local:N"), dist.connect(bad):
            pass


def test_unreachable_scheduler_is_a_clear_error_within_the_timeout():
    with socket_nobody_listens_on() as port:
        start = time.monotonic()
        with pytest.raises(dist.ClusterError, match="cannot reach the Dask scheduler"):
            with dist.connect(f"tcp://127.0.0.1:{port}", timeout=2):
                pass
        assert time.monotonic() - start < 15


class socket_nobody_listens_on:
    """A free port on 127.0.0.1, bound but not listening while the test runs."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()


def test_cli_joins_a_running_scheduler(client, capsys):
    code = main(["train", "--dask", client.scheduler.address, "--quiet"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "test       accuracy" in out.out


@pytest.mark.slow
def test_cli_starts_and_stops_a_local_cluster(capsys, tmp_path):
    """--dask local:1: one worker process on 127.0.0.1 for the fit, the same model as without."""
    code = main(["train", "--dask", "local:1", "--quiet", "--out", str(tmp_path / "d.npz")])
    assert code == 0, capsys.readouterr().err
    assert main(["train", "--quiet", "--out", str(tmp_path / "m.npz")]) == 0
    from softmaxreg.persistence import load

    got, ref = load(tmp_path / "d.npz")[-1], load(tmp_path / "m.npz")[-1]  # the estimators
    assert _rel(got.coef_, ref.coef_) < 1e-3  # float32 sums in another order, stopped at tol 1e-4


def test_cli_unreachable_scheduler_exits_with_an_error(capsys, monkeypatch):
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT_S", 2.0)
    with socket_nobody_listens_on() as port:
        code = main(["train", "--dask", f"tcp://127.0.0.1:{port}", "--quiet"])
    assert code == 1
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


# -- faults ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_worker_killed_mid_fit_the_fit_completes_with_the_same_coefficients(monkeypatch):
    """SIGKILL one worker process while an evaluation is in flight: Dask recomputes its chunks
    from the graph on the other worker, the fit ends with the in-memory coefficients, and the
    user is told by a WorkerLostWarning."""
    X, y = _problem(seed=10)
    kw = dict(tol=1e-8, max_iter=500)
    ref = SoftmaxRegression(**kw).fit(X, y)
    submit, calls = dist.DaskRows.submit, []

    with _cluster(2, processes=True) as cluster, distributed.Client(cluster, timeout=60) as c:
        pids = c.run(os.getpid)
        victim = sorted(pids)[0]

        def submit_then_kill(self, spec, theta):
            future = submit(self, spec, theta)
            calls.append(1)
            if len(calls) == 5:
                os.kill(pids[victim], signal.SIGKILL)
            return future

        monkeypatch.setattr(dist.DaskRows, "submit", submit_then_kill)
        with pytest.warns(dist.WorkerLostWarning, match=victim):
            got = SoftmaxRegression(**kw).fit(_chunks(X, 200), y)
    assert len(calls) > 5
    assert _rel(got.coef_, ref.coef_) < RTOL


def test_no_worker_left_is_an_error_not_a_hang(client, monkeypatch):
    """When the cluster has no worker at all, the wait gives up after worker_timeout."""
    watch = dist._Watch(client, worker_timeout=0.5)
    monkeypatch.setattr(client, "nthreads", lambda: {})
    never = client.submit(time.sleep, 3, pure=False)  # longer than the watch waits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dist.WorkerLostWarning)
        with pytest.raises(dist.ClusterError, match="no Dask worker"):
            watch.result(never)
    never.cancel()

