"""Forward convolution: rankconv.ops.conv against PyTorch, in one process.

    python benchmarks/conv_forward.py [--repeats 7] [--threads 2] [--backward] [--json FILE]

Needs torch and threadpoolctl (`pip install -e '.[bench]'`). Where the machine sets
OPENBLAS_CORETYPE, run it with that variable (and OPENBLAS_L2_SIZE) unset in this command only:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_forward.py
The report says which BLAS kernel NumPy ran.

Each figure is the median of `--repeats` timed runs after one warm-up. GFLOP/s counts
2 * output cells * kernel taps * channels per group (multiply and add). Peak memory is what
NumPy allocated during one call (tracemalloc), less the returned output: the workspace.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np

CASES = [
    # name, input (channels-last), kernel (Keras layout), padding
    ("seed Conv1D 600x300 k3 64f, batch 32", (32, 600, 300), (3, 300, 64), "valid"),
    ("Kim Conv1D len 64 300->100 k5, batch 50", (50, 64, 300), (5, 300, 100), "valid"),
    ("Conv2D 3x3 32x32 64->64, batch 32", (32, 32, 32, 64), (3, 3, 64, 64), "same"),
    ("Conv3D 3x3x3 16^3 32->32, batch 4", (4, 16, 16, 16, 32), (3, 3, 3, 32, 32), "same"),
]


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (and plan caches, page faults)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def sgemm_gflops(repeats: int) -> float:
    n = 2048
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = np.random.default_rng(1).random((n, n), dtype=np.float32)
    ms = median_ms(lambda: a @ b, repeats)
    return 2 * n**3 / (ms * 1e-3) / 1e9


def peak_workspace_bytes(fn) -> tuple[int, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = sum(r.nbytes for r in result) if isinstance(result, tuple) else result.nbytes
    return peak, peak - out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backward", action="store_true", help="also time forward+backward")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)

    import threadpoolctl
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
    from rankconv.ops import conv, conv_vjp

    torch.set_num_threads(args.threads)
    limiter = threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    blas = [
        {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for info in threadpoolctl.threadpool_info()
        if info.get("user_api") == "blas"
    ]
    roofline = sgemm_gflops(args.repeats)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, torch {torch.__version__}, threads {args.threads}"
    )
    print(f"NumPy BLAS: {blas}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    print(f"sgemm roofline (2048^3, float32): {roofline:.0f} GFLOP/s\n")

    rows = []
    functional = torch.nn.functional
    for name, x_shape, w_shape, padding in CASES:
        rng = np.random.default_rng(0)
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32)
        rank = x.ndim - 2
        # PyTorch gets tensors in its own (64-byte aligned) memory: on NumPy's 16-byte aligned
        # buffers its oneDNN kernels run up to twice as slow, which would flatter rankconv.
        x_t = torch.from_numpy(np.moveaxis(x, -1, 1)).contiguous().clone()
        w_t = torch.from_numpy(np.transpose(w, (rank + 1, rank, *range(rank)))).contiguous().clone()
        torch_conv = {1: functional.conv1d, 2: functional.conv2d, 3: functional.conv3d}[rank]
        ours_ms = median_ms(lambda: conv(x, w, padding=padding), args.repeats)
        with torch.no_grad():
            x_np, w_np = (
                torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1))),
                torch.from_numpy(np.ascontiguousarray(np.transpose(w, (rank + 1, rank, *range(rank))))),
            )
        with torch.no_grad():
            theirs_numpy_memory_ms = median_ms(lambda: torch_conv(x_np, w_np, padding=padding), args.repeats)
        theirs_ms = median_ms(lambda: torch_conv(x_t, w_t, padding=padding), args.repeats)
        y = conv(x, w, padding=padding)
        flops = 2 * y.size * math.prod(w_shape[:-1])
        peak, workspace = peak_workspace_bytes(lambda: conv(x, w, padding=padding))
        bound = x.nbytes + 2 * y.nbytes
        row = {
            "case": name,
            "rankconv_ms": ours_ms,
            "pytorch_ms": theirs_ms,
            "ratio": theirs_ms / ours_ms,
            "pytorch_numpy_memory_ms": theirs_numpy_memory_ms,
            "ratio_numpy_memory": theirs_numpy_memory_ms / ours_ms,
            "gflops": flops / (ours_ms * 1e-3) / 1e9,
            "roofline_fraction": flops / (ours_ms * 1e-3) / 1e9 / roofline,
            "workspace_mb": workspace / 2**20,
            "bound_mb": bound / 2**20,
        }
        if args.backward:
            g = rng.standard_normal(y.shape, dtype=np.float32)
            row["rankconv_fwd_bwd_ms"] = median_ms(
                lambda: (conv(x, w, padding=padding), conv_vjp(g, x, w, padding=padding)), args.repeats
            )
            x_req, w_req = x_t.clone().requires_grad_(), w_t.clone().requires_grad_()
            g_t = torch.from_numpy(np.moveaxis(g, -1, 1)).contiguous().clone()

            def torch_step():
                x_req.grad = w_req.grad = None
                torch_conv(x_req, w_req, padding=padding).backward(g_t)

            row["pytorch_fwd_bwd_ms"] = median_ms(torch_step, args.repeats)
            row["fwd_bwd_ratio"] = row["pytorch_fwd_bwd_ms"] / row["rankconv_fwd_bwd_ms"]
        rows.append(row)

    header = (
        f"{'case':42} {'rankconv ms':>11} {'PyTorch ms':>10} {'ratio':>6} {'PyTorch* ms':>11} {'ratio*':>6} "
        f"{'GFLOP/s':>8} {'roofline':>8} {'workspace MB':>12} {'in+2·out MB':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['case']:42} {r['rankconv_ms']:11.2f} {r['pytorch_ms']:10.2f} {r['ratio']:6.2f} "
            f"{r['pytorch_numpy_memory_ms']:11.2f} {r['ratio_numpy_memory']:6.2f} {r['gflops']:8.0f} "
            f"{r['roofline_fraction']:8.0%} {r['workspace_mb']:12.1f} {r['bound_mb']:11.1f}"
        )
    if args.backward:
        print(f"\n{'case':42} {'fwd+bwd rankconv ms':>19} {'PyTorch ms':>10} {'ratio':>6}")
        for r in rows:
            print(
                f"{r['case']:42} {r['rankconv_fwd_bwd_ms']:19.2f} {r['pytorch_fwd_bwd_ms']:10.2f} {r['fwd_bwd_ratio']:6.2f}"
            )
    print("\nratio = PyTorch ms / rankconv ms (> 1: rankconv is faster); median of", args.repeats, "runs.")
    print("PyTorch: tensors in PyTorch's own (64-byte aligned) memory. PyTorch*: torch.from_numpy views of")
    print("NumPy arrays (16-byte aligned), where its oneDNN kernels are often slower.")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"roofline_gflops": roofline, "blas": blas, "rows": rows}, handle, indent=2)
    limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())
