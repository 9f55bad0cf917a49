"""Our estimators on PyTorch tensors (array-API dispatch) against the tools of the same device.

    python benchmarks/array_api.py --data ../shared/data/mnist        # cpu, and cuda if any
    python benchmarks/array_api.py --device cuda --reps 5 --only epoch

Per device (``--device``; by default the CPU, and CUDA wherever ``torch.cuda.is_available()``):

* **exact fit**: softmax regression with C = 1 on MNIST until the objective is within a relative
  gap of 1e-4 of its optimum f* (cached by ``run.py``): ours on float32 tensors of the device
  under ``sklearn.config_context(array_api_dispatch=True)``, against scikit-learn's
  ``LogisticRegression(solver="lbfgs")`` on float64 tensors of the same device under the same
  switch (its own array-API path; float64 as in ``run.py``); ours on NumPy for reference.
* **network epoch**: one epoch of the 784-128-64-10 network, Adam, batch 128: ours on the
  device's tensors against PyTorch's own training loop on the same tensors (the permutation moved
  to the device once per epoch, as ours); ours on NumPy for reference.  Per-step times are given:
  on a GPU the per-step launch overhead, not the arithmetic, bounds an epoch of this size.

The runs of each measurement alternate (ours, theirs, ours, …); medians of ``--reps``.  Results go
to ``benchmarks/results/array_api.{json,md}``.
"""

from __future__ import annotations

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scikit-learn's array-API switch needs it first

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import references as ref  # noqa: E402
from run import GAP, environment, f_star, load, ours_until, save_results  # noqa: E402

from softmaxreg import SoftmaxNetwork  # noqa: E402

torch = ref.torch
BATCH, SIZES = 128, (784, 128, 64, 10)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


# -- exact fit -------------------------------------------------------------------------------------
def bench_exact(data, device: str, reps: int, fs: float) -> dict:
    X, y = data[0], data[1]
    Xd, yd = torch.asarray(X, device=device), torch.asarray(y, device=device)
    X64d = torch.asarray(X.astype(np.float64), device=device)

    def ours_device():
        with sklearn.config_context(array_api_dispatch=True):
            return ours_until(Xd, yd, ref.ObjectiveTrace(fs, GAP))

    def sklearn_device():
        with sklearn.config_context(array_api_dispatch=True):
            return ref.sklearn_lbfgs_until(X64d, yd, 1.0, ref.ObjectiveTrace(fs, GAP))

    runs = {"ours_device": ours_device, "sklearn_device": sklearn_device,
            "ours_numpy": lambda: ours_until(X, y, ref.ObjectiveTrace(fs, GAP))}
    out: dict[str, list] = {k: [] for k in runs}
    for _ in range(reps):
        for name, run in runs.items():
            _sync(device)
            trace = run()
            _sync(device)
            out[name].append((trace.seconds, trace.final_gap, len(trace.points)))
    summary = {k: {"seconds": statistics.median(t for t, _, _ in v),
                   "seconds_all": [t for t, _, _ in v],
                   "gap": statistics.median(g for _, g, _ in v),
                   "evaluations": statistics.median(e for _, _, e in v)} for k, v in out.items()}
    ours = summary["ours_device"]["seconds"]
    return {"f_star": fs, "gap_target": GAP, "runs": summary,
            "speedup_vs_sklearn_same_device": summary["sklearn_device"]["seconds"] / ours,
            "target_speedup": 10}


# -- network epoch ---------------------------------------------------------------------------------
def bench_epoch(data, device: str, reps: int) -> dict:
    X, y = data[0], data[1]
    Xd, yd = torch.asarray(X, device=device), torch.asarray(y, device=device)

    def network():
        return SoftmaxNetwork(SIZES[1:-1], solver="adam", batch_size=BATCH, max_iter=1,
                              learning_rate_init=1e-3, random_state=0, warm_start=True)

    ours_d, ours_np = network(), network()
    model = ref.torch_mlp(SIZES).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def ours_device():
        with sklearn.config_context(array_api_dispatch=True):
            _quiet(ours_d.fit, Xd, yd)

    runs = {"ours_device": ours_device,
            "torch_device": lambda: ref.torch_epoch(model, opt, Xd, yd, BATCH, seed=0),
            "ours_numpy": lambda: _quiet(ours_np.fit, X, y)}
    for run in runs.values():  # warm-up: allocations, kernels, caches
        run()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(reps):
        for name, run in runs.items():
            times[name].append(_timed(run, device))
    steps = -(-X.shape[0] // BATCH)
    t = {k: statistics.median(v) for k, v in times.items()}
    return {"epoch_seconds": t, "epoch_seconds_all": times,
            "step_ms": {k: 1e3 * v / steps for k, v in t.items()}, "steps": steps,
            "ratio_vs_torch_same_device": t["ours_device"] / t["torch_device"],
            "target_ratio": 1.2}


# -- report ----------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [f"Run {env['date']} on {env['cpu']} ({env['cores']} cores, {env['threads']} threads); "
             f"torch {env.get('torch')}, scikit-learn {env['scikit-learn']}, numpy {env['numpy']}.",
             "", "| device | measurement | ours (tensors) | reference, same device | ratio | "
             "ours (NumPy) |", "| --- | --- | --- | --- | --- | --- |"]
    for device, r in results["devices"].items():
        if "skipped" in r:
            lines.append(f"| {device} | — | skipped: {r['skipped']} | | | |")
            continue
        if "exact" in r:
            e = r["exact"]["runs"]
            lines.append(
                f"| {device} | exact fit C=1 to gap {GAP:g} | {e['ours_device']['seconds']:.2f} s "
                f"({e['ours_device']['evaluations']:.0f} evals) | scikit-learn "
                f"{e['sklearn_device']['seconds']:.2f} s ({e['sklearn_device']['evaluations']:.0f}"
                f" evals) | {r['exact']['speedup_vs_sklearn_same_device']:.1f}× faster (target "
                f"≥ 10×) | {e['ours_numpy']['seconds']:.2f} s |")
        if "epoch" in r:
            p = r["epoch"]
            s, ms = p["epoch_seconds"], p["step_ms"]
            lines.append(
                f"| {device} | 784-128-64-10 epoch, Adam, batch {BATCH} | {s['ours_device']:.3f} s "
                f"({ms['ours_device']:.2f} ms/step) | PyTorch loop {s['torch_device']:.3f} s "
                f"({ms['torch_device']:.2f} ms/step) | {p['ratio_vs_torch_same_device']:.2f} "
                f"(target ≤ 1.2) | {s['ours_numpy']:.3f} s |")
    return "\n".join(lines) + "\n"


def _devices(requested: list[str]) -> dict[str, str | None]:
    """device -> None (run it) or why it is skipped."""
    out = {}
    for device in requested:
        if device.startswith("cuda") and not torch.cuda.is_available():
            out[device] = "no CUDA device here (torch.cuda.is_available() is False)"
        else:
            out[device] = None
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("SOFTMAXREG_DATA"),
                        help="MNIST folder (default: $SOFTMAXREG_DATA)")
    parser.add_argument("--device", nargs="+", default=["cpu", "cuda"],
                        help="torch devices (default: cpu and cuda; cuda is skipped without one)")
    parser.add_argument("--only", nargs="+", choices=("exact", "epoch"),
                        default=["exact", "epoch"])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each epoch")
    parser.add_argument("--exact-reps", type=int, default=1, help="repetitions of each exact fit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=None,
                        help="the first ROWS training rows only (a quick check; f* then computed "
                             "for them)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if torch is None:
        parser.error("the array-API benchmark needs PyTorch: pip install -e '.[bench]'")
    torch.set_num_threads(args.threads)
    results = {"environment": environment(args.threads), "devices": {}}
    with threadpool_limits(args.threads):
        data = load(args.data)
        cache = args.out / "f_star.json"
        if args.rows:
            data, cache = tuple(a[:args.rows] for a in data), args.out / f"f_star_{args.rows}.json"
        args.out.mkdir(parents=True, exist_ok=True)
        fs = f_star(data, cache) if "exact" in args.only else None
        for device, skipped in _devices(args.device).items():
            if skipped:
                results["devices"][device] = {"skipped": skipped}
                continue
            r = results["devices"][device] = {}
            if "epoch" in args.only:
                print(f"{device}: network epoch …", file=sys.stderr, flush=True)
                r["epoch"] = bench_epoch(data, device, args.reps)
            if "exact" in args.only:
                print(f"{device}: exact fit …", file=sys.stderr, flush=True)
                r["exact"] = bench_exact(data, device, args.exact_reps, fs)
            print(json.dumps(r, indent=1), file=sys.stderr)
    save_results(args.out, "array_api", results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
