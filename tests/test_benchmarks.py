"""Smoke test of the fair benchmark (benchmarks/fair.py, worker.py, report.py, problems.py).

The harness runs in --quick mode on scikit-learn's digits, one thread, ours and scikit-learn
only; the test checks what the results file holds and that the report renders it.  The exact
fit's other problems run on a tiny synthetic corpus and a Fashion-MNIST look-alike.  It never
asserts a speed.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import fair  # noqa: E402
import libraries  # noqa: E402
import problems  # noqa: E402
import report  # noqa: E402

TASKS = ("exact", "predict")


@pytest.fixture(scope="module")
def results_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "fair.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "fair.py"), "--quick", "--data", "digits", "--threads", "1",
         "--tasks", *TASKS, "--problems", "mnist", "--libraries", "ours", "sklearn",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_results_record_the_environment_and_data(results_file):
    r = json.loads(results_file.read_text())
    assert r["schema"] == fair.SCHEMA and r["failures"] == []
    env = r["environment"]
    assert env["cores"] >= 1 and env["cpu"] and env["versions"]["numpy"]
    assert any(p["internal_api"] == "openblas" for p in env["thread_pools"])
    assert r["data"]["source"] == "digits" and r["data"]["n_features"] == 64
    assert math.isfinite(r["f_star"]["value"])


def test_every_library_has_repetitions_and_a_summary(results_file):
    r = json.loads(results_file.read_text())
    assert set(r["tasks"]) == set(TASKS)
    assert list(r["tasks"]["exact"]["problems"]) == ["mnist"]
    for name in TASKS:
        [(problem, task)] = report.problem_groups(r, name)
        assert problem == "mnist" and set(task["libraries"]) == {"ours", "sklearn"}
        for lib in task["libraries"].values():
            entry = lib["settings"]["1"]
            assert entry["status"] == "ok" and len(entry["runs"]) == 2
            assert entry["setup"]["threadpools"]
            for metric in fair.METRICS[name]:
                assert entry["summary"][metric]["n"] == 2
                assert lib["best"][metric]["threads"] == 1
        for metric in fair.METRICS[name]:
            speedup = task["speedup_of_ours"]["sklearn"][metric]
            assert set(speedup) == {"at_threads", "at_best"}
            assert speedup["at_best"]["low"] <= speedup["at_best"]["median"]


def test_exact_fits_reach_the_gap(results_file):
    r = json.loads(results_file.read_text())
    for lib in r["tasks"]["exact"]["problems"]["mnist"]["libraries"].values():
        for run in lib["settings"]["1"]["runs"]:
            assert run["reached"] and run["gap"] <= r["config"]["gap"]


def test_report_renders_and_replaces_only_the_readme_block(results_file, tmp_path):
    table = results_file.with_suffix(".md").read_text()
    assert "**Exact fit — " in table and "**Prediction**" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold table\n{report.END}\nrest\n")
    out = tmp_path / "table.md"
    code = report.main([str(results_file), "--out", str(out), "--readme", str(readme)])
    assert code == 0
    text = readme.read_text()
    assert text.startswith(f"intro\n{report.START}\n") and text.endswith(f"{report.END}\nrest\n")
    assert "old table" not in text and out.read_text().strip() in text


def test_readme_without_markers_is_refused():
    with pytest.raises(ValueError, match="perf-table:start"):
        report.replace_block("no markers here\n", "table")


def test_a_failing_worker_is_reported_not_fatal(tmp_path):
    run = fair.Run(fair.Config.quick_run(), data_dir=tmp_path, log_dir=tmp_path)  # no data
    entries = fair.run_group(run, "predict", ["ours"], 1)
    assert entries["ours"]["status"] == "failed" and entries["ours"]["runs"] == []
    assert entries["ours"]["error"].startswith("setup")


# -- the exact fit on several problems -----------------------------------------------------------
TINY = problems.CorpusShape(n_train=300, n_test=100, n_features=2000, n_classes=5, nnz=300 * 40)


@pytest.fixture(scope="module")
def tiny_corpus():
    return problems.synthetic_corpus(TINY, seed=3)


def test_synthetic_corpus_has_the_asked_shape_and_weighting(tiny_corpus):
    X, y, X_test, y_test = tiny_corpus
    assert sp.isspmatrix_csr(X) and X.dtype == np.float64 and X.has_sorted_indices
    assert X.shape == (TINY.n_train, TINY.n_features)
    assert X_test.shape == (TINY.n_test, TINY.n_features)
    assert abs(X.nnz - TINY.nnz) <= 0.03 * TINY.nnz  # density as asked
    assert X_test.nnz / TINY.n_test == pytest.approx(X.nnz / TINY.n_train, rel=0.15)
    for rows in (X, X_test):
        assert (rows.data > 0).all()
        np.testing.assert_allclose(sp.linalg.norm(rows, axis=1), 1.0, rtol=1e-12)
    assert set(y) == set(y_test) == set(range(TINY.n_classes))
    again = problems.synthetic_corpus(TINY, seed=3)
    assert (again[0] != X).nnz == 0 and (again[1] == y).all()
    assert (problems.synthetic_corpus(TINY, seed=4)[0] != X).nnz > 0


def test_synthetic_corpus_weighs_words_as_scikit_learn_does(tiny_corpus):
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(0)
    P = problems.class_word_probabilities(TINY, rng)
    y = np.arange(40) % TINY.n_classes
    counts = problems.count_words(y, problems.distinct_words(40, 30, TINY.n_features, rng),
                                  P, rng)
    ours = problems.tfidf(counts, df_rows=30)
    theirs = TfidfTransformer().fit(counts[:30]).transform(counts)
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-12, atol=1e-15)


def test_synthetic_corpus_is_learnable_but_not_separable(tiny_corpus):
    from sklearn.linear_model import LogisticRegression

    X, y, X_test, y_test = tiny_corpus
    accuracy = LogisticRegression(C=1.0, max_iter=500).fit(X, y).score(X_test, y_test)
    assert 3 / TINY.n_classes < accuracy < 1.0


def test_the_corpus_is_cached_and_read_back(tmp_path):
    first = problems.cached_corpus(TINY, tmp_path, seed=1)
    [path] = tmp_path.glob("*.npz")
    assert TINY.tag in path.name
    second = problems.cached_corpus(TINY, tmp_path, seed=1)
    for a, b in zip(first, second):
        assert (a != b).nnz == 0 if sp.issparse(a) else (a == b).all()


def test_sparse_f_star_agrees_with_scikit_learns_optimum(tiny_corpus, tmp_path):
    from sklearn.linear_model import LogisticRegression

    saved = problems.save_arrays(tiny_corpus, tmp_path, float64=False)
    data = libraries.load_data(tmp_path)  # the workers' route: CSR float32 from .npz
    assert sp.isspmatrix_csr(data.X) and data.X.dtype == np.float32
    assert (data.X != saved["X"]).nnz == 0
    f_star = libraries.FStar(data, {}).run()["f_star"]
    X64 = data.X.astype(np.float64)
    ref = LogisticRegression(C=libraries.C, tol=1e-12, max_iter=10_000).fit(X64, data.y)
    J = libraries.objective(ref.coef_, ref.intercept_, data.X, data.y)
    assert f_star == pytest.approx(J, rel=1e-6)


def write_idx(path: Path, a: np.ndarray) -> None:
    """``a`` (uint8) as a gzipped IDX file: magic 0 0 8 ndim, big-endian dimensions, bytes."""
    header = bytes([0, 0, 8, a.ndim]) + np.array(a.shape, dtype=">i4").tobytes()
    path.write_bytes(gzip.compress(header + a.astype(np.uint8).tobytes()))


@pytest.fixture
def fashion_folder(tmp_path) -> Path:
    return fashion_look_alike(tmp_path)


def fashion_look_alike(tmp_path: Path) -> Path:
    """A Fashion-MNIST look-alike: 28×28 images whose mean brightness tells their class."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "fashion"
    folder.mkdir()
    for prefix, n in (("train", 200), ("t10k", 50)):
        labels = np.arange(n) % 4
        images = rng.integers(0, 64, (n, 28, 28)) + 40 * labels[:, None, None]
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def test_problems_are_prepared_for_the_workers(tmp_path, fashion_folder, monkeypatch):
    monkeypatch.setattr(problems, "QUICK_CORPUS", TINY)
    cfg = fair.Config.quick_run(tasks=("exact",), problems=("fashion", "sparse"))
    prepared = fair.prepare_data(None, str(fashion_folder), cfg, tmp_path / "work",
                                 tmp_path / "cache")
    assert list(prepared) == ["fashion", "sparse"]  # no MNIST: no task needs it
    fashion, sparse = prepared["fashion"]["data"], prepared["sparse"]["data"]
    assert fashion["source"] == "fashion" and not fashion["sparse"]
    assert (fashion["n_train"], fashion["n_features"], fashion["n_classes"]) == (200, 784, 4)
    assert sparse["source"] == "synthetic" and sparse["sparse"] and not sparse["full"]
    assert (sparse["n_train"], sparse["n_features"]) == (TINY.n_train, TINY.n_features)
    data = libraries.load_data(tmp_path / "work" / "fashion")
    assert data.X.dtype == np.float32 and 0 <= data.X.min() and data.X.max() <= 1
    monkeypatch.delenv("SOFTMAXREG_FASHION_DATA", raising=False)
    without = fair.prepare_data(None, None, cfg, tmp_path / "work2", tmp_path / "cache")
    assert without["fashion"] == {"not_measured": problems.NO_FASHION}


@pytest.fixture(scope="module")
def problems_results(tmp_path_factory) -> dict:
    """The exact fit in --quick mode on the tiny corpus and a Fashion-MNIST look-alike (with
    PyTorch's sparse CSR path where PyTorch is installed)."""
    tmp = tmp_path_factory.mktemp("problems")
    folder = fashion_look_alike(tmp)
    out = tmp / "fair.json"
    libs = ["ours", "sklearn"] + (["torch"] if importlib.util.find_spec("torch") else [])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(problems, "QUICK_CORPUS", TINY)
        code = fair.main(["--quick", "--tasks", "exact", "--problems", "fashion,sparse",
                          "--fashion-data", str(folder), "--threads", "1",
                          "--libraries", *libs, "--out", str(out)])
    assert code == 0
    return json.loads(out.read_text())


def test_the_exact_fit_runs_on_every_problem(problems_results):
    r = problems_results
    assert r["failures"] == []
    groups = r["tasks"]["exact"]["problems"]
    assert list(groups) == ["fashion", "sparse"]
    for name, group in groups.items():
        f_star = r["problems"][name]["f_star"]["value"]
        assert math.isfinite(f_star)
        for lib in group["libraries"].values():
            for run in lib["settings"]["1"]["runs"]:
                assert run["reached"] and run["gap"] <= r["config"]["gap"]
    assert len({r["problems"][n]["f_star"]["value"] for n in groups}) == 2  # each its own f*
    assert "mnist" not in r["problems"] and "data" not in r  # no task needed MNIST


def test_the_report_names_each_problem(problems_results):
    text = report.render(problems_results)
    assert "**Exact fit — Fashion-MNIST, 200 × 784" in text
    assert "**Exact fit — synthetic corpus shaped like 20 newsgroups, 300 × 2000" in text
    assert "not measured" not in text
    without = json.loads(json.dumps(problems_results))
    without["problems"]["fashion"] = {"not_measured": problems.NO_FASHION}
    del without["tasks"]["exact"]["problems"]["fashion"]
    text = report.render(without)
    assert ("**Exact fit — Fashion-MNIST**: not measured: no Fashion-MNIST files (give "
            "--fashion-data).") in text
    assert text.count("| softmaxreg `SoftmaxRegression(C=1)` |") == 1


def test_a_results_file_without_problems_is_mnist(results_file):
    old = json.loads(results_file.read_text())
    old["tasks"]["exact"] = old["tasks"]["exact"]["problems"]["mnist"]
    old.pop("problems")
    old["data"]["source"] = "mnist"
    text = report.render(old)
    assert "**Exact fit — MNIST, 1500 × 64, float32 in [0, 1]** —" in text
    assert f"f* = {old['f_star']['value']:.6f}" in text


def performance_page_blocks() -> list[str]:
    """The Python of docs/performance.rst's ``softmaxreg-python`` blocks, in page order."""
    blocks, current = [], None
    lines = (BENCH.parent / "docs" / "performance.rst").read_text().splitlines()
    for line in lines + [""]:
        if line.startswith(".. softmaxreg-python::"):
            current = []
            blocks.append(current)
        elif current is not None and (line.startswith("   ") or not line.strip()):
            if not line.startswith("   :"):
                current.append(line[3:])
        else:
            current = None
    return ["\n".join(block) for block in blocks]


@pytest.mark.parametrize("layout", ["problems", "before problems"])
def test_the_performance_page_reads_either_layout(layout, results_file, tmp_path, monkeypatch,
                                                  capsys):
    results = json.loads(results_file.read_text())
    if layout == "before problems":
        results["tasks"]["exact"] = results["tasks"]["exact"]["problems"]["mnist"]
        results.pop("problems")
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "fair.json").write_text(json.dumps(results))
    (folder / "fair.md").write_text(report.render(results))
    monkeypatch.setenv("SOFTMAXREG_DOCS_RESULTS", str(folder))
    namespace = {"__name__": "docs.performance", "DOCS_SOURCE": tmp_path}
    for block in performance_page_blocks():
        exec(compile(block, "performance.rst", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Exact fit — scikit-learn's digits (smoke test)" in printed
    assert {row[0] for row in namespace["exact_rows"]} == set(
        results["tasks"]["exact"].get("problems", {"mnist": results["tasks"]["exact"]})
        ["mnist"]["libraries"])
    assert (tmp_path / "_generated" / "perf_gap.png").is_file()
