"""How fast could any im2col convolution on NumPy's BLAS be? For the core issue's four forward cases,
time the matrix products alone — the gathered windows already in memory, so gathering, padding and
threads cost nothing — and compare with PyTorch's whole convolution in the same process.

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm_ceiling.py [--repeats 9]

Products timed, each the best of two ways of running them on all cores (NumPy's BLAS on all
threads; or one BLAS thread per core, each on its share of the rows) and of several numbers of
rows per product (CHUNKS; whole-matrix products are slower than cache-sized ones):
- "one deep product": (output positions) × (taps · channels) @ (taps · channels) × filters — plain
  im2col;
- "k shallow products": the first kernel axis split off (rankconv's im2col with
  `split_first_axis`), k products of a third of the depth, summed (the sums not timed).
ceiling = PyTorch ms / products-alone ms: the ratio no im2col built on these products can beat.
"""

import argparse
import math
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

import numpy as np  # noqa: E402

from rankconv import bench  # noqa: E402

CHUNKS = (1024, 2048, 4096, 1 << 30)  # rows per product: the best of these counts
CASES = ("seed Conv1D", "Kim Conv1D 64x300 k5", "Conv2D 3x3 32x32", "Conv3D 3x3x3")


def _products(case, split):
    """The (rows, depth) and (depth, filters) operands of the case's im2col products."""
    spatial, taps = case.x_shape[1:-1], case.kernel_shape[:-2]  # (the four cases have stride 1)
    out = spatial if case.padding == "same" else [n - k + 1 for n, k in zip(spatial, taps)]
    rows = case.x_shape[0] * math.prod(out)
    depth = math.prod(case.kernel_shape[:-1])
    filters = case.kernel_shape[-1]
    count = case.kernel_shape[0] if split else 1
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, depth // count), dtype=np.float32)
    b = rng.standard_normal((depth // count, filters), dtype=np.float32)
    return a, b, count


def _all_threads(a, b, count, out, chunk):
    for start in range(0, len(a), chunk):
        for _ in range(count):
            np.matmul(a[start : start + chunk], b, out=out[start : start + chunk])


def _thread_per_core(a, b, count, out, threads, chunk):
    import threadpoolctl

    halves = np.array_split(np.arange(len(a)), threads)

    def work(part):
        for start in range(part[0], part[-1] + 1, chunk):
            stop = min(start + chunk, part[-1] + 1)
            for _ in range(count):
                np.matmul(a[start:stop], b, out=out[start:stop])

    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        workers = [threading.Thread(target=work, args=(h,)) for h in halves[1:]]
        for w in workers:
            w.start()
        work(halves[0])
        for w in workers:
            w.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    limiter = bench.pin_threads(args.threads)
    print(f"NumPy BLAS: {bench.blas_info()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}")
    print(f"sgemm roofline (2048^3): {bench.sgemm_gflops(args.repeats):.0f} GFLOP/s; threads {args.threads}")
    print(f"{'case':<44}{'PyTorch ms':>11}{'rankconv ms':>12}{'one deep':>10}{'k shallow':>10}{'ceiling':>9}")
    for name in CASES:
        case = next(c for c in bench.CONV_CASES if name.lower() in c.name.lower())
        x, w = bench.arrays(case)
        theirs = bench.torch_functions(case, x, w)[0]
        torch_ms = bench.median_ms(theirs, args.repeats)
        if hasattr(theirs, "alternative"):
            torch_ms = min(torch_ms, bench.median_ms(theirs.alternative, args.repeats))
        ours_ms = bench.median_ms(bench.rankconv_functions(case, x, w)[0], args.repeats)
        best = []
        for split in (False, True):
            a, b, count = _products(case, split)
            out = np.empty((len(a), b.shape[1]), np.float32)
            best.append(
                min(
                    min(
                        bench.median_ms(lambda a=a, b=b, c=count, o=out: _all_threads(a, b, c, o, rows), args.repeats),
                        bench.median_ms(
                            lambda a=a, b=b, c=count, o=out: _thread_per_core(a, b, c, o, args.threads, rows),
                            args.repeats,
                        ),
                    )
                    for rows in CHUNKS
                )
            )
        print(
            f"{case.name:<44}{torch_ms:>11.2f}{ours_ms:>12.2f}{best[0]:>10.2f}{best[1]:>10.2f}"
            f"{torch_ms / min(best):>9.2f}"
        )
    limiter.restore_original_limits()


if __name__ == "__main__":
    main()
