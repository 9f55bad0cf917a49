"""BLAS thread limits held by overlapping Python threads restore the original setting, and the
rows of one evaluation split across threads give the sums of one thread.

An exception raised in a ``threading.Thread`` does not fail a test by itself (pytest turns it
into a warning), so every thread here runs through :func:`run_in_threads`, which collects what
the threads raise and raises it again in the test's thread.
"""

import threading

import numpy as np
import pytest
from scipy.special import logsumexp
from threadpoolctl import ThreadpoolController, threadpool_limits

from softmaxreg import SoftmaxRegression
from softmaxreg._threads import in_threads, one_blas_thread
from softmaxreg.network import Network
from softmaxreg.objective import MemoryRows

WAIT_S = 10


def _blas_threads():
    return {c.filepath: c.num_threads for c in ThreadpoolController().lib_controllers
            if c.user_api == "blas"}


def run_in_threads(*targets):
    """Run each target in its own thread; re-raise the first exception any of them raised
    (assertions included), and fail if one is still running after WAIT_S seconds."""
    errors = []

    def guarded(target):
        try:
            target()
        except BaseException as exc:  # every failure goes to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]


def _wait(event: threading.Event) -> None:
    assert event.wait(WAIT_S), "the other thread never got there: the overlap did not happen"


def test_overlapping_limits_restore_the_original_threads():
    before = _blas_threads()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():  # enters first, leaves while the second still holds the limit
        with one_blas_thread():
            a_in.set()
            _wait(b_in)
        a_out.set()

    def second():
        _wait(a_in)
        with one_blas_thread():
            b_in.set()
            _wait(a_out)
            assert set(_blas_threads().values()) == {1}  # still limited for the later holder

    run_in_threads(first, second)
    assert _blas_threads() == before


def test_a_failed_assertion_in_a_thread_fails_the_test():
    def wrong():
        assert 1 + 1 == 3, "seen in the thread"

    with pytest.raises(AssertionError, match="seen in the thread"):
        run_in_threads(lambda: None, wrong)



def test_a_worker_thread_can_limit_after_the_main_thread_did():
    """threadpoolctl 3.8 gives control of OpenBLAS to the first thread that sets its threads
    and silently ignores every other thread: a limit the main thread once took (any L-BFGS fit
    takes one) must not make the limits of later worker threads no-ops."""
    before = _blas_threads()
    with one_blas_thread():
        pass
    seen = {}

    def worker():
        with one_blas_thread():
            seen["inside"] = set(_blas_threads().values())

    run_in_threads(worker)
    assert seen["inside"] == {1}
    assert _blas_threads() == before


# -- one evaluation split across threads (objective.MemoryRows) ----------------------------------
def test_in_threads_returns_in_order_and_raises_what_a_thread_raised():
    assert in_threads([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]

    def fails():
        raise ValueError("from a pool thread")

    with pytest.raises(ValueError, match="from a pool thread"):
        in_threads([lambda: 1, fails])


def test_a_replica_shares_the_parameters_and_not_the_gradients():
    net = Network((5, 4, 3)).initialize(0)
    twin = net.replica()
    assert twin.params is net.params
    assert all(np.shares_memory(a.W, b.W) for a, b in zip(net.layers, twin.layers))
    assert not np.shares_memory(twin.grads, net.grads)
    assert all(not np.shares_memory(a.dW, b.dW) for a, b in zip(net.layers, twin.layers))


def _softmax_regression_reference(theta, X, y, s, K):
    """Σ s_i CE_i and its gradient from scipy's logsumexp: independent of the library."""
    d = X.shape[1]
    W, b = theta[: K * d].reshape(K, d), theta[K * d:]
    Z = X @ W.T + b
    P = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
    loss = s @ (logsumexp(Z, axis=1) - Z[np.arange(len(y)), y])
    dZ = (P - np.eye(K)[y]) * s[:, None]
    return loss, np.concatenate([(dZ.T @ X).ravel(), dZ.sum(0)])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_an_evaluation_split_across_threads_equals_the_reference(threads):
    rng = np.random.default_rng(0)
    n, d, K = 5000, 12, 4
    X, y, s = rng.standard_normal((n, d)), rng.integers(0, K, n), rng.uniform(0.5, 2, n)
    net = Network((d, K))
    theta = rng.standard_normal(net.params.shape[0])
    rows = MemoryRows(X, y, s, block_rows=256, threads=threads)
    loss, grad, total = rows.loss_grad_sums(net, theta)
    ref_loss, ref_grad = _softmax_regression_reference(theta, X, y, s, K)
    assert total == pytest.approx(s.sum(), rel=1e-12)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-10)
    # the preconditioner's sums, against NumPy on the whole X at once
    G, g, g0 = rows.gram_sums(net, None, 0.0, False, None)
    np.testing.assert_allclose(G, X.T @ (X * s[:, None]), rtol=1e-10)
    np.testing.assert_allclose(g, s @ X, rtol=1e-10)
    assert g0 == pytest.approx(s.sum(), rel=1e-12)


def test_a_network_evaluation_split_across_threads_equals_one_thread():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((3000, 10)), rng.integers(0, 3, 3000)
    net = Network((10, 7, 3), activation="tanh").initialize(0)
    theta = np.array(net.params)
    one = MemoryRows(X, y, block_rows=128, threads=1).loss_grad_sums(net, theta)
    three = MemoryRows(X, y, block_rows=128, threads=3).loss_grad_sums(net, theta)
    assert three[0] == pytest.approx(one[0], rel=1e-12)
    np.testing.assert_allclose(three[1], one[1], rtol=1e-10, atol=1e-12)


def test_a_fit_on_two_threads_equals_one_thread_and_restores_blas(monkeypatch):
    """The rows of each evaluation split in two (BLAS allowed two threads) give the same model
    as one thread, and BLAS has its setting back afterwards."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((6000, 20))
    y = (X[:, :3] @ rng.standard_normal((3, 4))).argmax(1)
    before = _blas_threads()
    seen, block_sums = set(), MemoryRows._block_sums

    def recorded(self, net, blocks):
        seen.add(threading.current_thread().name.startswith("softmaxreg"))
        return block_sums(self, net, blocks)

    monkeypatch.setattr(MemoryRows, "_block_sums", recorded)
    fits, used = {}, {}
    for threads in (1, 2):
        seen.clear()
        with threadpool_limits(threads):
            fits[threads] = SoftmaxRegression(C=1.0, tol=1e-10, max_iter=300).fit(X, y)
        used[threads] = set(seen)
    # one thread: every evaluation in the caller's thread; two: a share in the pool's thread too
    assert used == {1: {False}, 2: {False, True}}
    assert _blas_threads() == before
    np.testing.assert_allclose(fits[2].coef_, fits[1].coef_, rtol=1e-6, atol=1e-8)


@pytest.mark.filterwarnings("error")  # the caller's np.errstate holds in the pool's threads
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predictions_split_across_threads_equal_one_pass(dtype, monkeypatch):
    """Network.logits splits large X across threads (each part on one BLAS thread): the same
    logits as one forward pass over all rows, a non-finite row staying in its place."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5000, 30)).astype(dtype)
    X[4321, 7] = np.inf
    net = Network((30, 16, 5), dtype=dtype).initialize(0)
    with threadpool_limits(1), np.errstate(invalid="ignore"):  # inf · 0 in the inf row
        one = net.forward(X, keep=False)
    parts, forward = [], Network.forward
    monkeypatch.setattr(Network, "forward", lambda self, A, keep=True: parts.append(
        (len(A), threading.current_thread().name.startswith("softmaxreg")))
        or forward(self, A, keep))
    with threadpool_limits(3), np.errstate(invalid="ignore"):
        split = net.logits(X)
    k = min(3, len(__import__("os").sched_getaffinity(0)))  # BLAS threads, at most the cores
    assert len(parts) == k and sum(n for n, _ in parts) == len(X)
    assert {in_pool for _, in_pool in parts} == ({False, True} if k > 1 else {False})
    np.testing.assert_allclose(split, one, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert split.dtype == one.dtype


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_splits_its_evaluations_too():
    """The thread pool made before a fork has no threads in the child: the child must get a pool
    of its own rather than wait for threads that do not exist."""
    import multiprocessing

    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((5000, 8)), rng.integers(0, 3, 5000)
    rows = MemoryRows(X, y, block_rows=256, threads=2)
    net = Network((8, 3))
    theta = rng.standard_normal(net.params.shape[0])
    expected = rows.loss_grad_sums(net, theta)[0]  # the parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        seen = pool.apply_async(_loss_in_child, (X, y, theta)).get(timeout=60)
    assert seen == pytest.approx(expected, rel=1e-12)


def _loss_in_child(X, y, theta):
    return MemoryRows(X, y, block_rows=256, threads=2).loss_grad_sums(Network((8, 3)), theta)[0]


def test_a_part_that_splits_again_runs_its_calls_in_turn():
    """in_threads inside a part must not wait for the pool's threads (they may be the ones
    waiting): the inner calls run in the part's own thread."""
    seen = {}

    def outer():
        inner = in_threads([threading.current_thread, threading.current_thread])
        seen["inner"] = {t.name for t in inner}
        seen["outer"] = threading.current_thread().name

    run_in_threads(lambda: in_threads([lambda: None, outer]))
    assert seen["inner"] == {seen["outer"]}


def test_a_limit_another_thread_took_and_gave_back_is_not_restored_by_us():
    """Another thread's threadpool_limits(1) held when we enter and released before we leave:
    afterwards BLAS has its original setting, not that thread's temporary 1."""
    before = _blas_threads()
    theirs_in, ours_in = threading.Event(), threading.Event()

    def theirs():
        with threadpool_limits(1):
            theirs_in.set()
            _wait(ours_in)

    def ours():
        _wait(theirs_in)
        with one_blas_thread():
            ours_in.set()
            # (theirs releases now; our block outlasts it)
            for _ in range(100):
                if _blas_threads() == before:
                    break
                threading.Event().wait(0.01)

    run_in_threads(theirs, ours)
    assert _blas_threads() == before


def test_predictions_after_the_interpreter_began_to_exit():
    """Non-daemon threads still running and atexit handlers run after the thread pools are shut
    down: a split prediction or fit there computes in turn instead of raising RuntimeError."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import atexit, threading, numpy as np
        from threadpoolctl import threadpool_limits
        from softmaxreg import SoftmaxRegression
        threadpool_limits(2)
        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((6000, 5)), rng.integers(0, 3, 6000)
        model = SoftmaxRegression().fit(X, y)
        expected = model.predict_proba(X)
        def late():
            threading.Event().wait(0.5)  # the main thread has returned by now
            assert np.allclose(model.predict_proba(X), expected)
            SoftmaxRegression().fit(X, y)
            print("late ok", flush=True)
        threading.Thread(target=late).start()
        atexit.register(lambda: print("atexit ok", np.allclose(model.predict_proba(X), expected)))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "late ok" in out.stdout and "atexit ok True" in out.stdout, out.stdout + out.stderr


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_child_forked_while_another_thread_holds_the_lock_does_not_hang():
    import multiprocessing

    from softmaxreg import _threads

    held, release = threading.Event(), threading.Event()

    def holder():
        with _threads._lock:
            held.set()
            _wait(release)

    t = threading.Thread(target=holder)
    t.start()
    try:
        _wait(held)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply_async(_threads.blas_threads).get(timeout=30) >= 1
    finally:
        release.set()
        t.join(WAIT_S)
