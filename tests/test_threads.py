"""BLAS thread limits held by overlapping Python threads restore the original setting.

An exception raised in a ``threading.Thread`` does not fail a test by itself (pytest turns it
into a warning), so every thread here runs through :func:`run_in_threads`, which collects what
the threads raise and raises it again in the test's thread.
"""

import threading

import pytest
from threadpoolctl import ThreadpoolController

from softmaxreg._threads import one_blas_thread

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
