"""The documentation site builds, as CI builds it: on the digits, warnings as errors, every
tutorial and every command on the pages run, and each expected page written.

Marked slow (about half a minute on 2 cores); skipped only when the packages of the ``docs``
extra are missing (the ``test`` extra installs them).
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS_PACKAGES = ("sphinx", "sphinx_gallery", "pydata_sphinx_theme", "numpydoc")

# page -> text that only an executed page holds (a printed number, a command's output)
PAGES = {
    "index.html": "softmaxreg",
    "auto_tutorials/plot_1_notes_by_hand.html": "0.592",
    "auto_tutorials/plot_2_mnist.html": "8x8 digits; 1347 training and 450 test images",
    "guide/install.html": "test accuracy",
    "guide/notes_to_code.html": "cross_entropy",
    "guide/cli.html": "softmax on digits",
    "guide/model_files.html": "softmaxreg-model",
    "guide/checkpoints.html": "bit-identical: True",
    "guide/streaming.html": "model written to streamed.npz",
    "guide/dask.html": "same labels: True",
    "guide/sklearn.html": "mean cross-validated accuracy",
    "guide/reliability.html": "DataError",
    "api/index.html": "SoftmaxRegression",
    "api/generated/softmaxreg.SoftmaxRegression.html": "predict_proba",
    "api/generated/softmaxreg.softmax.html": "0.842",
    "performance.html": "benchmarks/results/",
    "building.html": "SOFTMAXREG_DATA",
}


@pytest.mark.slow
def test_docs_build(tmp_path):
    missing = [name for name in DOCS_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the docs extra is not installed ({', '.join(missing)} missing): "
                    "pip install -e '.[docs]'")
    env = {key: value for key, value in os.environ.items() if key != "SOFTMAXREG_DATA"}
    env["MPLBACKEND"] = "Agg"
    html = tmp_path / "html"
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         "-d", str(tmp_path / "doctrees"),
         "-D", "sphinx_gallery_conf.run_stale_examples=1",  # run the tutorials even if cached
         str(ROOT / "docs"), str(html)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, f"{build.stdout[-3000:]}\n{build.stderr[-6000:]}"
    for page, text in PAGES.items():
        path = html / page
        assert path.is_file(), f"{page} was not written"
        assert text in path.read_text(encoding="utf-8"), f"{page} does not show {text!r}"
    figures = {p.name for p in (html / "_images").glob("*.png")}
    for name in ("sphx_glr_plot_1_notes_by_hand_001.png", "sphx_glr_plot_2_mnist_006.png",
                 "perf_gap.png", "perf_epoch.png", "cli_weights.png"):
        assert name in figures, f"figure {name} missing"
