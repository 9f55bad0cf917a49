import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST folder named by SOFTMAXREG_DATA (CI: ../shared/data/mnist)."""
    value = os.environ.get("SOFTMAXREG_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("SOFTMAXREG_DATA does not name the MNIST folder")
    return Path(value)
