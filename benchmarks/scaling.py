"""Scaling of the distributed fit: MNIST replicated to 0.6M and 2.4M rows (float32, pixels in
[0, 1]), in memory and on a LocalCluster of 1 and 2 single-threaded worker processes.

    python benchmarks/scaling.py --data ../shared/data/mnist                 # ~25 min
    python benchmarks/scaling.py --data ../shared/data/mnist --rows 600000 --fit-rows 0

For each size N it measures
  * one evaluation of J and ∇J (one L-BFGS iteration without line search): in memory with 1
    and 2 BLAS threads, and as a DaskObjective on 1 and 2 workers (median of ``--evals``);
  * the whole ``SoftmaxRegression().fit`` (default tol, staged preconditioner) on the workers,
    for the sizes in ``--fit-rows``, with its iterations;
  * the fixed cost of one distributed evaluation (scheduling, θ out, tree sum back) on chunks of
    10 rows, for 2 to 64 chunks: the communication term of the model.
The workers build their chunks themselves from the 60k base (read from disk on a worker, copied
per chunk), so nothing of size N passes through the client.  Results go to
``benchmarks/results/scaling.json``; the README's "Scaling out" section is written from them.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import run  # noqa: E402  (benchmarks/run.py, beside this file)
from threadpoolctl import threadpool_limits

from softmaxreg import SoftmaxRegression
from softmaxreg import distributed as dist
from softmaxreg.io import load_mnist
from softmaxreg.network import Network, NetworkSpec
from softmaxreg.objective import Objective, objective

HERE = Path(__file__).resolve().parent
BASE_ROWS = 60_000
L2 = 1.0 / 60_000  # C = 1 on 60k rows; only the timing matters here


def base(data_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's 60k training images as float32 in [0, 1] (60000, 784), labels (60000,)."""
    ds = load_mnist(data_dir)
    return (ds.X.astype(np.float32) / 255.0), ds.y.astype(np.int64)


def median_time(fn, reps: int) -> float:
    fn()  # warm up: caches, lazy imports, the workers' first task
    return run.median_time(fn, reps)


# -- in memory ------------------------------------------------------------------------------------
def in_memory_evaluation(X0, y0, n_rows: int, reps: int) -> dict:
    """Seconds per evaluation of the blocked in-memory objective, 1 and 2 BLAS threads."""
    copies = n_rows // BASE_ROWS
    X, y = np.concatenate([X0] * copies), np.concatenate([y0] * copies)
    net = Network((X.shape[1], 10), output="softmax", dtype=np.float32)
    f, theta = objective(net, X, y, None, L2), np.zeros(net.params.size)
    out = {}
    for threads in (1, 2):
        with threadpool_limits(threads):
            out[f"threads_{threads}"] = median_time(lambda: f(theta), reps)
    del X, y
    gc.collect()
    return out


# -- on the workers -------------------------------------------------------------------------------
def _load_base(data_dir: str):
    return base(data_dir)


def _replica(pair, which: int):
    """One chunk of 60k rows: a private copy of the base, so the chunks are N rows in memory."""
    return pair[which].copy()


def replicated(data_dir: str, n_rows: int):
    """(X, y) as Dask arrays of N / 60k chunks of 60k rows, built on the workers."""
    import dask
    import dask.array as da

    pair = dask.delayed(_load_base, pure=True)(data_dir)
    copies = n_rows // BASE_ROWS
    X = da.concatenate([da.from_delayed(dask.delayed(_replica)(pair, 0), (BASE_ROWS, 784),
                                        dtype=np.float32) for _ in range(copies)])
    y = da.concatenate([da.from_delayed(dask.delayed(_replica)(pair, 1), (BASE_ROWS,),
                                        dtype=np.int64) for _ in range(copies)])
    return X, y


def dask_evaluation(client, data_dir: str, n_rows: int, reps: int) -> dict:
    """Seconds per DaskObjective evaluation on the persisted chunks, and the set-up time."""
    X, y = replicated(data_dir, n_rows)
    start = time.perf_counter()
    f, theta = _objective(client, X, y)
    setup = time.perf_counter() - start
    seconds = median_time(lambda: f(theta), reps)
    return {"evaluation": seconds, "load_and_persist": setup}


def dask_fit(client, data_dir: str, n_rows: int, max_iter: int) -> dict:
    """The whole distributed fit, from building the chunks on the workers to the solution."""
    X, y = replicated(data_dir, n_rows)
    start = time.perf_counter()
    model = SoftmaxRegression(max_iter=max_iter).fit(X, y)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "n_iter": int(model.n_iter_[0]), "loss": float(model.loss_)}


def fixed_cost(client, chunk_counts, reps: int) -> dict:
    """Seconds per evaluation on ``c`` chunks of 10 rows: scheduling and communication only."""
    import dask.array as da

    rng = np.random.default_rng(0)
    out = {}
    for c in chunk_counts:
        X = da.from_array(rng.random((10 * c, 784), dtype=np.float32), chunks=(10, 784))
        y = da.from_array(np.arange(10 * c) % 10, chunks=10)
        f, theta = _objective(client, X, y)
        out[c] = median_time(lambda f=f, theta=theta: f(theta), reps)
    return out


def _objective(client, X, y):
    """The objective of softmax regression on (X, y) persisted as Dask rows, and θ = 0."""
    data = dist.scan(X, y, client=client)
    rows = data.prepare(None, np.float32)
    net = NetworkSpec((X.shape[1], len(data.classes)), "identity", dtype="float32").build()
    return Objective(rows, net, L2), np.zeros(net.params.size)


def cluster(n_workers: int):
    from dask.distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0")
    return lc, Client(lc)


# -- the run --------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.environ.get("SOFTMAXREG_DATA"), required=False)
    p.add_argument("--rows", type=int, nargs="+", default=[600_000, 2_400_000])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--fit-rows", type=int, nargs="*", default=[600_000, 2_400_000],
                   help="sizes at which to time the whole fit")
    p.add_argument("--max-iter", type=int, default=100)
    p.add_argument("--evals", type=int, default=5)
    p.add_argument("--out", default=str(HERE / "results" / "scaling.json"))
    args = p.parse_args()
    data_dir = str(Path(args.data).resolve())
    results = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average_start": os.getloadavg()},
               "sizes": {}}
    X0, y0 = base(data_dir)
    for n in args.rows:
        entry = results["sizes"].setdefault(str(n), {})
        entry["in_memory"] = in_memory_evaluation(X0, y0, n, args.evals)
        print(n, "in memory", entry["in_memory"], flush=True)
    del X0, y0
    for w in args.workers:
        lc, client = cluster(w)
        with lc, client:
            if w == max(args.workers):
                results["fixed_cost"] = fixed_cost(client, (2, 4, 8, 16, 32, 64), args.evals)
                print("fixed cost", results["fixed_cost"], flush=True)
            for n in args.rows:
                entry = results["sizes"][str(n)]
                entry[f"dask_{w}"] = dask_evaluation(client, data_dir, n, args.evals)
                if n in args.fit_rows:
                    entry[f"dask_{w}"]["fit"] = dask_fit(client, data_dir, n, args.max_iter)
                print(n, w, "workers", entry[f"dask_{w}"], flush=True)
                client.cancel(list(client.futures.values()))  # free the chunks before the next N
                gc.collect()
    results["machine"]["load_average_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
