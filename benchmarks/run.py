"""Side-by-side benchmarks against scikit-learn and PyTorch on MNIST (60k/10k, pixels in [0, 1]).

    python benchmarks/run.py --data ../shared/data/mnist            # everything (~15 min)
    python benchmarks/run.py --only kernel network --reps 5

Our code and the references run in the same process, alternating, ``--reps`` times; the tables
give medians and our/their ratios (below 1 means we are faster).  Every library gets the same
number of threads (``--threads``, default 2), recorded with the BLAS in use.  Results go to
``benchmarks/results/latest.json`` and ``latest.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import references as ref  # noqa: E402

from softmaxreg import SoftmaxNetwork, SoftmaxRegression  # noqa: E402
from softmaxreg.io import load_mnist  # noqa: E402
from softmaxreg.network import Network  # noqa: E402
from softmaxreg.objective import objective  # noqa: E402

GAP = 1e-4


def median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternate(fns: dict, reps: int) -> dict[str, float]:
    """Median seconds of each function, running them in turn (A B C A B C …)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def load(data_dir):
    ds = load_mnist(data_dir, progress=False)
    X = (ds.X / np.float32(255)).astype(np.float32)
    Xt = (ds.X_test / np.float32(255)).astype(np.float32)
    return X, ds.y.astype(np.int64), Xt, ds.y_test.astype(np.int64)


# -- 1. the loss-and-gradient kernel ----------------------------------------------------------
def bench_kernel(data, reps):
    X, y, _, _ = data
    net = Network((784, 10), output="softmax", dtype=np.float32)
    net.params[...] = np.random.default_rng(0).normal(0, 0.01, net.params.size)
    W = net.W[0]
    E = np.random.default_rng(1).random((X.shape[0], 10), dtype=np.float32)

    def bare():
        X @ W.T
        E.T @ X

    f = objective(net, X, y, None, 1e-5)  # what each L-BFGS iteration evaluates
    theta = net.params.astype(np.float64)
    t = alternate({"ours": lambda: f(theta), "bare_blas": bare}, reps)
    return {"seconds": t, "ratio": t["ours"] / t["bare_blas"], "target": 1.3}


# -- 2. exact convex fit ------------------------------------------------------------------------
def f_star(data, cache: Path) -> float:
    """The optimum of C=1 softmax regression on MNIST, computed once in float64 and cached."""
    if cache.is_file():
        return json.loads(cache.read_text())["f_star"]
    X, y, _, _ = data
    model = SoftmaxRegression(C=1.0, tol=1e-10, max_iter=5000, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X.astype(np.float64), y)
    value = float(model.loss_)
    cache.write_text(json.dumps({"f_star": value, "n_iter": int(model.n_iter_[0]),
                                 "computed": datetime.now(timezone.utc).isoformat()}))
    return value


def ours_until(X, y, trace):
    """Our default solver for the convex problem, timed to the same gap."""
    from softmaxreg import solvers

    original = solvers.lbfgs

    def traced(fun, *args, **kwargs):
        def f(theta):
            J, g = fun(theta)
            trace(J)
            return J, g
        return original(f, *args, **kwargs)

    solvers.lbfgs = traced
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            SoftmaxRegression(C=1.0, tol=0, max_iter=2000).fit(X, y)
    except ref.GapReached:
        pass
    finally:
        solvers.lbfgs = original
    return trace


def bench_convex(data, reps, results_dir: Path):
    X, y, _, _ = data
    fs = f_star(data, results_dir / "f_star.json")
    X64 = X.astype(np.float64)
    runs = {"ours": lambda: ours_until(X, y, ref.ObjectiveTrace(fs, GAP)),
            "sklearn_lbfgs": lambda: ref.sklearn_lbfgs_until(X64, y, 1.0,
                                                             ref.ObjectiveTrace(fs, GAP))}
    if ref.torch is not None:
        runs["torch_lbfgs_f64"] = lambda: ref.torch_lbfgs_until(X64, y, 1.0,
                                                                ref.ObjectiveTrace(fs, GAP))
    out: dict[str, list] = {k: [] for k in runs}
    for _ in range(reps):
        for name, run in runs.items():
            trace = run()
            out[name].append((trace.seconds, trace.final_gap, len(trace.points)))
    summary = {k: {"seconds": statistics.median(t for t, _, _ in v),
                   "gap": statistics.median(g for _, g, _ in v),
                   "evaluations": statistics.median(e for _, _, e in v)} for k, v in out.items()}
    ours = summary["ours"]["seconds"]
    return {"f_star": fs, "gap_target": GAP, "runs": summary,
            "speedup_vs": {k: v["seconds"] / ours for k, v in summary.items() if k != "ours"},
            "targets": {"sklearn_lbfgs": 10, "torch_lbfgs_f64": 3}}


# -- 3. quick fit ---------------------------------------------------------------------------------
QUICK = dict(solver="sgd", max_iter=5, batch_size=256, learning_rate_init=0.5,
             learning_rate="cosine")


def bench_quick(data, reps):
    X, y, Xt, yt = data
    scores = []

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = SoftmaxRegression(random_state=0, **QUICK).fit(X, y)
        scores.append(model.score(Xt, yt))

    seconds = median_time(fit, reps)
    return {"settings": QUICK, "seconds": seconds, "test_accuracy": statistics.median(scores),
            "targets": {"seconds": 1.0, "test_accuracy": 0.925}}


# -- 4. the 784-128-64-10 network -------------------------------------------------------------
def bench_network(data, reps, epochs_for_accuracy: int):
    X, y, Xt, yt = data
    ours = SoftmaxNetwork((128, 64), solver="adam", batch_size=128, max_iter=1,
                          learning_rate_init=1e-3, random_state=0, warm_start=True)
    runs = {"ours": lambda: _quiet(ours.fit, X, y)}
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier((128, 64), solver="adam", batch_size=128, max_iter=1, random_state=0,
                        warm_start=True)
    runs["sklearn_mlp"] = lambda: _quiet(mlp.fit, X, y)
    if ref.torch is not None:
        model = ref.torch_mlp((784, 128, 64, 10))
        opt = ref.torch.optim.Adam(model.parameters(), lr=1e-3)
        Xtt, ytt = ref.torch.from_numpy(X), ref.torch.from_numpy(y)
        runs["torch"] = lambda: ref.torch_epoch(model, opt, Xtt, ytt, 128, seed=0)
    t = alternate(runs, reps)
    full = SoftmaxNetwork((128, 64), solver="adam", batch_size=128, max_iter=epochs_for_accuracy,
                          learning_rate="cosine", random_state=0)
    start = time.perf_counter()
    _quiet(full.fit, X, y)
    return {"epoch_seconds": t,
            "ratio_vs": {k: t["ours"] / v for k, v in t.items() if k != "ours"},
            "target_ratio_vs_torch": 0.6,
            "accuracy_run": {"epochs": epochs_for_accuracy, "test_accuracy": full.score(Xt, yt),
                             "seconds": time.perf_counter() - start}}


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


# -- 5. prediction throughput ---------------------------------------------------------------------
def bench_predict(data, reps):
    X, y, Xt, yt = data
    sr = _quiet(SoftmaxRegression(solver="adam", max_iter=1, random_state=0).fit, X, y)
    net = _quiet(SoftmaxNetwork((128, 64), max_iter=1, random_state=0).fit, X, y)
    runs = {"softmax_ours": lambda: sr.predict_proba(Xt),
            "network_ours": lambda: net.predict_proba(Xt)}
    if ref.torch is not None:
        lin = ref.torch_linear_from(sr.coef_, sr.intercept_)
        mlp = ref.torch_mlp((784, 128, 64, 10))
        Xtt = ref.torch.from_numpy(Xt)
        runs["softmax_torch"] = lambda: ref.torch_predict_proba(lin, Xtt)
        runs["network_torch"] = lambda: ref.torch_predict_proba(mlp, Xtt)
    t = alternate(runs, reps)
    rows_per_s = {k: Xt.shape[0] / v for k, v in t.items()}
    return {"rows_per_second": rows_per_s,
            "ratio_vs_torch": {m: rows_per_s[f"{m}_ours"] / rows_per_s[f"{m}_torch"]
                               for m in ("softmax", "network") if f"{m}_torch" in rows_per_s}}


# -- 6. memory ----------------------------------------------------------------------------------
MEMORY_PROBE = r"""
import json, sys, threading, time, warnings
import numpy as np
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
from softmaxreg import SoftmaxRegression
from softmaxreg.io import load_mnist
import sklearn.linear_model, scipy.optimize
base = rss()
ds = load_mnist(sys.argv[1], progress=False)
X = np.empty(ds.X.shape, dtype=np.float32)
np.divide(ds.X, np.float32(255), out=X)
y = ds.y.astype(np.int64)
del ds
peak = [rss()]
stop = False
def sample():
    while not stop:
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
t = threading.Thread(target=sample); t.start()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    SoftmaxRegression(max_iter=30).fit(X, y)
stop = True; t.join()
print(json.dumps({"base": base, "X_bytes": X.nbytes, "peak": peak[0]}))
"""


def bench_memory(data_dir):
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(data_dir)], check=True,
                         capture_output=True, text=True).stdout
    m = json.loads(out.strip().splitlines()[-1])
    extra = (m["peak"] - m["base"]) / m["X_bytes"]
    return {"baseline_mb": m["base"] / 2**20, "X_float32_mb": m["X_bytes"] / 2**20,
            "peak_mb": m["peak"] / 2**20, "peak_above_baseline_in_X": extra, "target": 1.3}


# -- 7. growth in n ------------------------------------------------------------------------------
def bench_growth(data, reps, sizes=(60_000, 120_000, 240_000, 480_000)):
    X, y, _, _ = data
    rows = []
    for n in sizes:
        iteration, epoch = _growth_point(X, y, n, reps)
        rows.append({"n": n, "lbfgs_iteration_s": iteration, "epoch_s": epoch})
    base = rows[0]
    for r in rows:
        scale = r["n"] / base["n"]
        r["iteration_per_row_vs_60k"] = r["lbfgs_iteration_s"] / base["lbfgs_iteration_s"] / scale
        r["epoch_per_row_vs_60k"] = r["epoch_s"] / base["epoch_s"] / scale
    return {"rows": rows, "target": "per-row time within ±15% of the 60k run"}


def _growth_point(X, y, n, reps):
    """(seconds per full-batch objective evaluation, seconds per Adam epoch) at n rows."""
    k = n // X.shape[0]
    Xn, yn = np.tile(X, (k, 1)), np.tile(y, k)
    net = Network((784, 10), output="softmax", dtype=np.float32)
    f = objective(net, Xn, yn, None, 1.0 / n)
    theta = np.zeros(net.params.size)
    iteration = median_time(lambda: f(theta), reps)
    model = SoftmaxRegression(solver="adam", max_iter=1, random_state=0)
    epoch = median_time(lambda: _quiet(model.fit, Xn, yn), max(1, reps // 2))
    return iteration, epoch


# -- report ---------------------------------------------------------------------------------------
def environment(threads: int) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    import scipy
    import sklearn

    env = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu,
           "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
           "blas": [{k: i.get(k) for k in ("internal_api", "version", "num_threads",
                                           "architecture")} for i in threadpool_info()]}
    if ref.torch is not None:
        env["torch"] = ref.torch.__version__
        env["torch_threads"] = ref.torch.get_num_threads()
    return env


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [f"Run {env['date']} on {env['cpu']} ({env['cores']} cores, {env['threads']} threads "
             f"for every library); numpy {env['numpy']}, scikit-learn {env['scikit-learn']}, "
             f"torch {env.get('torch', 'absent')}.", "",
             "| measurement | ours | reference | ratio (ours/ref) | target |",
             "| --- | --- | --- | --- | --- |"]
    r = results
    if "kernel" in r:
        k = r["kernel"]
        lines.append(f"| loss+gradient, 60k rows, float32 | {k['seconds']['ours']*1e3:.1f} ms | "
                     f"bare X·Wᵀ + Eᵀ·X {k['seconds']['bare_blas']*1e3:.1f} ms | "
                     f"{k['ratio']:.2f} | ≤ 1.3 |")
    if "convex" in r:
        c = r["convex"]["runs"]
        for name, target in (("sklearn_lbfgs", "≥ 10× faster"), ("torch_lbfgs_f64", "≥ 3× faster")):
            if name in c:
                lines.append(
                    f"| exact fit C=1 to gap {GAP:g} | {c['ours']['seconds']:.2f} s "
                    f"({c['ours']['evaluations']:.0f} evals) | {name} {c[name]['seconds']:.2f} s "
                    f"({c[name]['evaluations']:.0f} evals, gap {c[name]['gap']:.1e}) | "
                    f"{c['ours']['seconds'] / c[name]['seconds']:.3f} "
                    f"({c[name]['seconds'] / c['ours']['seconds']:.1f}× faster) | {target} |")
    if "quick" in r:
        q = r["quick"]
        lines.append(f"| quick fit (SGD, 5 epochs, cosine) | {q['seconds']:.2f} s, "
                     f"{q['test_accuracy']:.4f} test acc | — | — | ≤ 1 s, ≥ 0.925 |")
    if "network" in r:
        nw = r["network"]
        for name, ratio in nw["ratio_vs"].items():
            lines.append(f"| 784-128-64-10 epoch, Adam, batch 128 | "
                         f"{nw['epoch_seconds']['ours']:.3f} s | {name} "
                         f"{nw['epoch_seconds'][name]:.3f} s | {ratio:.2f} | "
                         f"{'≤ 0.6' if name == 'torch' else '—'} |")
        a = nw["accuracy_run"]
        lines.append(f"| network test accuracy after {a['epochs']} epochs (cosine) | "
                     f"{a['test_accuracy']:.4f} ({a['seconds']:.1f} s) | — | — | ≥ 0.978 |")
    if "predict" in r:
        p = r["predict"]["rows_per_second"]
        for m, ratio in r["predict"]["ratio_vs_torch"].items():
            lines.append(f"| predict_proba 10k, {m} | {p[m + '_ours']:,.0f} rows/s | torch "
                         f"{p[m + '_torch']:,.0f} rows/s | {1 / ratio:.2f} (time) | ≤ 1 |")
    if "memory" in r:
        m = r["memory"]
        lines.append(f"| peak memory fitting on MNIST | +{m['peak_mb'] - m['baseline_mb']:.0f} MB "
                     f"over libraries | X float32 = {m['X_float32_mb']:.0f} MB | "
                     f"{m['peak_above_baseline_in_X']:.2f} × X | ≤ 1.3 × X |")
    if "growth" in r:
        for row in r["growth"]["rows"]:
            lines.append(f"| growth n = {row['n']:,} | iteration {row['lbfgs_iteration_s']:.3f} s, "
                         f"epoch {row['epoch_s']:.2f} s | per row vs 60k | "
                         f"{row['iteration_per_row_vs_60k']:.2f}, {row['epoch_per_row_vs_60k']:.2f}"
                         f" | 0.85–1.15 |")
    return "\n".join(lines) + "\n"


SECTIONS = ("kernel", "convex", "quick", "network", "predict", "memory", "growth")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("SOFTMAXREG_DATA"),
                        help="MNIST folder (default: $SOFTMAXREG_DATA)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--epochs", type=int, default=15, help="epochs of the accuracy run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if ref.torch is not None:
        ref.torch.set_num_threads(args.threads)
    results = {"environment": environment(args.threads)}
    with threadpool_limits(args.threads):
        data = load(args.data)
        for section in args.only:
            print(f"running {section} …", file=sys.stderr, flush=True)
            if section == "kernel":
                results[section] = bench_kernel(data, args.reps)
            elif section == "convex":
                results[section] = bench_convex(data, max(1, args.reps // 2), args.out)
            elif section == "quick":
                results[section] = bench_quick(data, args.reps)
            elif section == "network":
                results[section] = bench_network(data, args.reps, args.epochs)
            elif section == "predict":
                results[section] = bench_predict(data, args.reps * 4)
            elif section == "memory":
                results[section] = bench_memory(args.data)
            elif section == "growth":
                results[section] = bench_growth(data, args.reps)
            print(json.dumps(results[section], indent=1, default=str), file=sys.stderr)
    save_results(args.out, "latest", results, markdown(results))
    return 0


def save_results(folder: Path, stem: str, results: dict, table: str) -> None:
    """``stem``.json (the results) and ``stem``.md (their table) in ``folder``; prints the table."""
    (folder / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str))
    (folder / f"{stem}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    sys.exit(main())
