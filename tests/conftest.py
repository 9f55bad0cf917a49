import os
import tracemalloc
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST folder named by SOFTMAXREG_DATA (CI: ../shared/data/mnist)."""
    value = os.environ.get("SOFTMAXREG_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("SOFTMAXREG_DATA does not name the MNIST folder")
    return Path(value)


@contextmanager
def _traced_peak():
    """The most bytes Python held at once inside the block (tracemalloc), as ``.bytes`` after it
    (also when the block ended in an exception that pytest.raises caught inside it)."""
    peak = SimpleNamespace(bytes=None)
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


@pytest.fixture
def peak_memory():
    """``with peak_memory() as peak: ...`` then ``peak.bytes``."""
    return _traced_peak
