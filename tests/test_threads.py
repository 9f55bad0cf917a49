"""BLAS thread limits held by overlapping Python threads restore the original setting."""

import threading

from threadpoolctl import ThreadpoolController

from softmaxreg._threads import one_blas_thread


def _blas_threads():
    return {c.filepath: c.num_threads for c in ThreadpoolController().lib_controllers
            if c.user_api == "blas"}


def test_overlapping_limits_restore_the_original_threads():
    before = _blas_threads()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():  # enters first, leaves while the second still holds the limit
        with one_blas_thread():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second():
        a_in.wait(5)
        with one_blas_thread():
            b_in.set()
            a_out.wait(5)
            assert set(_blas_threads().values()) == {1}  # still limited for the later holder

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert _blas_threads() == before
