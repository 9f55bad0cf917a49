"""One library, one task, one thread setting, in a process of its own (started by ``fair.py``).

    python benchmarks/worker.py '{"task": "epoch", "library": "torch", "threads": 2, ...}'

The thread limit is set before any work (threadpoolctl for the BLAS and OpenMP pools of NumPy,
scipy and scikit-learn; ``torch.set_num_threads`` for PyTorch), then the measurement is built.
The worker answers ``ready`` and then reads one command per line on stdin — ``warmup``, ``run``,
``quit`` — and answers each with one JSON line.  Whatever the libraries print goes to stderr, so
the answers are the only thing on stdout.  A failing command is answered with its error; the
worker stays up and the driver decides.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def answers():
    """The original stdout, kept for the answers; file descriptor 1 then points at stderr."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def limit_threads(library: str, threads: int) -> dict:
    """Import what the library needs, cap every thread pool at ``threads``, report the pools."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_info, threadpool_limits

    info: dict = {}
    if library == "torch":
        import torch

        torch.set_num_threads(threads)
        info["torch_threads"] = torch.get_num_threads()
        info["torch"] = torch.__version__
    elif library == "ours":
        import softmaxreg  # noqa: F401
    threadpool_limits(limits=threads)
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture",
            "threading_layer")
    info["threadpools"] = [{k: pool.get(k) for k in keys} for pool in threadpool_info()]
    return info


def execute(measurement, command: str) -> dict:
    if command not in ("warmup", "run"):
        return {"status": "error", "error": f"unknown command {command!r}"}
    try:
        return {"status": "ok", "result": getattr(measurement, command)()}
    except Exception as exc:  # reported to the driver, which records it and goes on
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-2000:]}


def main() -> int:
    spec = json.loads(sys.argv[1])
    out = answers()
    start = time.perf_counter()
    try:
        info = limit_threads(spec["library"], spec["threads"])
        import libraries

        data = libraries.load_data(spec["data"], float64=spec["task"] == "exact64")
        measurement = libraries.MEASUREMENTS[(spec["task"], spec["library"])](data, spec)
    except Exception as exc:
        print(json.dumps({"status": "error", "error": f"{type(exc).__name__}: {exc}",
                          "traceback": traceback.format_exc()[-2000:]}), file=out)
        return 1
    info.update(pid=os.getpid(), setup_seconds=time.perf_counter() - start)
    print(json.dumps({"status": "ready", "info": info}), file=out)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        print(json.dumps(execute(measurement, command), default=float), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
