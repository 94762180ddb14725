"""The "unrolled_kernel" algorithm: forward and kernel-gradient kernels written out for one call's shape.

A convolution whose whole kernel is small — at most UNROLL_MAX_WEIGHTS weights (taps × channels ×
filters), like an image model's first layer (3×3, 1 → 32: 288) — can keep every weight in a
register. This module writes the kernel for such a call as plain Python with every tap, channel
and filter spelled out (each weight read once into a local, each of the `Q` × filters
accumulators a scalar local), so that LLVM, through numba, packs the accumulators into vector
registers and the inner loop is nothing but broadcasts and fused multiply-adds. Measured on the
grayscale first layer (batch 64, 28×28×1 → 32, 3×3; one thread, CPU time): 0.29 ms against
1.7 ms for the generic compiled kernel (`compiled_conv.direct_forward`, whose loops over taps
are not unrolled) and 0.71 ms for PyTorch.

The price is compile time: LLVM takes 5–15 s over the written-out code. So:

* kernels are written to files in a cache folder (`RANKCONV_KERNEL_DIR`, else
  `$XDG_CACHE_HOME/rankconv/kernels`, else `~/.cache/rankconv/kernels`) and compiled with numba's
  disk cache, so each shape compiles once per machine; a file is imported only if it holds
  exactly the text this module writes for that shape;
* the first calls of a shape do not wait: the kernel compiles on a background thread while the
  generic compiled kernel computes the calls, and later calls use the written-out kernel when it
  is ready. Both sum the same products in the same order (taps, then channels, each from the
  first), so which one ran changes no bit of the result (`tests/test_ops_unrolled.py`);
  `set_conv_algorithm("unrolled_kernel")` waits for the kernel instead.

The input is padded first (a copy, small for the few input channels this serves), so the
written-out code has no bounds to test. Backward (`vjp`), the kernel gradient is written out the
same way (each weight's sum a register across the rows; `kernel_grad`), the generic compiled
kernel's while it builds, with the same sums in the same order; the input gradient is im2col's
transposed convolution, which for a first layer's deep output gradient is col2im's one product.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
import types

import numpy as np

from rankconv.ops import compiled_conv, im2col, jit, rank3
from rankconv.ops import conv_common as common

UNROLL_MAX_WEIGHTS = 512  # taps × channels × filters: weights held in registers (32 AVX-512 ones hold 512)
UNROLL_MIN_FILTERS = 8
OUTPUTS = 2  # neighbouring output cells per iteration (measured: 2 beat 1 and 4)
# Forward calls under this many flops run on the calling thread alone. The written-out forward
# kernel writes its output as fast as the memory takes it, and on this project's 2-core VMs a second
# thread writing beside the first made the call slower, not faster: a 28x28x1 -> 32 3x3 layer
# (interleaved, 2 cores) at batch 64 (25 MFLOP) 0.38 ms on one thread against 0.64 on two, batch 128
# 0.68 against 0.90, batch 256 1.32 against 1.67; at batch 512 (200 MFLOP) two won, 5.6 against 9.6.
# (Its kernel gradient, which only reads, gains from two: 0.63 against 0.93 ms at batch 64.)
ONE_THREAD_FLOPS = 1 << 27
_VERSION = 3  # part of each file's name: a change in the written code writes new files


def applies(call: common.ConvCall) -> str | None:
    reason = compiled_conv.direct_applies(call)
    if reason is not None:
        return reason
    if call.groups != 1:
        return f"written-out kernels are for ungrouped convolutions; this call has {call.groups} groups"
    if any(f != 1 for f in call.lhs_dilation):
        return "written-out kernels do not dilate the input"
    if any(lo < 0 or hi < 0 for lo, hi in call.pairs):
        return "written-out kernels pad but do not crop the input"
    weights = call.taps * call.channels * call.filters
    if weights > UNROLL_MAX_WEIGHTS:
        return f"the kernel has {weights} weights; written-out kernels hold at most {UNROLL_MAX_WEIGHTS} in registers"
    if call.filters < UNROLL_MIN_FILTERS:
        return f"{call.filters} filters; written-out kernels vectorise over at least {UNROLL_MIN_FILTERS}"
    if call.dtype not in (np.float32, np.float64):
        return f"written-out kernels are float32 or float64; this call is {call.dtype}"
    return None


# ----------------------------------------------------------------------------- the written code


def _shape_key(call: common.ConvCall) -> tuple:
    fill = 3 - call.rank
    taps = (1,) * fill + tuple(call.kernel_spatial)
    strides = (1,) * fill + tuple(call.strides)
    dilations = (1,) * fill + tuple(call.rhs_dilation)
    return taps, call.channels, call.filters, strides, dilations


def source(key: tuple) -> str:
    """The Python text of the kernels for `key` (`_shape_key`): `conv(x, w, y, r0, r1)` computes
    output rows [r0, r1) (a row: one sample and first-axis position) of `y` (N, O1, O2, O3, F) from
    the padded input `x` (N, P1, P2, P3, C) and the kernel `w` flattened to taps·C·F values;
    `kernel_grad` (`_kernel_grad_source`) the same rows' share of the kernel gradient."""
    (k1, k2, k3), channels, filters, (s1, s2, s3), (d1, d2, d3) = key
    taps = [(t1, t2, t3) for t1 in range(k1) for t2 in range(k2) for t3 in range(k3)]
    lines = [
        f'"""Written by rankconv.ops.unrolled (version {_VERSION}) for taps {k1}x{k2}x{k3}, {channels} channel(s),',
        f"{filters} filters, strides {s1},{s2},{s3}, dilations {d1},{d2},{d3}. Do not edit: it is written again",
        'whenever its text differs."""',
        "",
        "import numba",
        "",
        "from rankconv.ops.jit import fmuladd",
        "",
        "",
        '@numba.njit(cache=True, nogil=True, fastmath={"contract"}, boundscheck=False)',
        "def conv(x, w, y, r0, r1):",
        "    O1, O2, O3 = y.shape[1], y.shape[2], y.shape[3]",
    ]
    index = 0
    for t in range(len(taps)):  # every weight read once, into a local: registers, not loads in the loop
        for c in range(channels):
            lines += [f"    w{t}_{c}_{f} = w[{index + f}]" for f in range(filters)]
            index += filters
    lines += [
        "    for r in range(r0, r1):",
        "        n = r // O1",
        "        o1 = r - n * O1",
        "        for o2 in range(O2):",
        "            o3 = 0",
    ]

    def block(q_count: int, indent: str) -> list[str]:
        body = []
        for number, (t1, t2, t3) in enumerate(taps):
            for q in range(q_count):
                i3 = f"(o3 + {q}) * {s3} + {t3 * d3}" if q else f"o3 * {s3} + {t3 * d3}"
                row = f"x[n, o1 * {s1} + {t1 * d1}, o2 * {s2} + {t2 * d2}, {i3}]"
                body += [f"{indent}v{q}_{c} = {row}[{c}]" for c in range(channels)]
            for c in range(channels):
                for f in range(filters):
                    for q in range(q_count):
                        v, w, a = f"v{q}_{c}", f"w{number}_{c}_{f}", f"a{q}_{f}"
                        first = number == 0 and c == 0
                        body.append(f"{indent}{a} = {v} * {w}" if first else f"{indent}{a} = fmuladd({v}, {w}, {a})")
        for q in range(q_count):
            body.append(f"{indent}out = y[n, o1, o2, o3 + {q}]")
            body += [f"{indent}out[{f}] = a{q}_{f}" for f in range(filters)]
        return body

    lines.append(f"            while o3 + {OUTPUTS} <= O3:")
    lines += block(OUTPUTS, "                ")
    lines.append(f"                o3 += {OUTPUTS}")
    lines.append("            while o3 < O3:")
    lines += block(1, "                ")
    lines.append("                o3 += 1")
    lines += _kernel_grad_source(taps, channels, filters, (s1, s2, s3), (d1, d2, d3))
    return "\n".join(lines) + "\n"


def _kernel_grad_source(taps, channels, filters, strides, dilations) -> list[str]:
    """`kernel_grad(x, g, dw, r0, r1)`: sets `dw` (taps·C·F zeros) to output rows [r0, r1)'s
    share of the kernel gradient, from the padded input `x` and the output gradient `g`. Every
    weight's sum is a scalar local across all the rows (registers, as the forward's weights), each
    cell's F gradient values read once; the sums run over the cells in order, as the generic
    kernel's (`kernels.direct_kernel_grad`) do, so the two agree bit for bit."""
    (s1, s2, s3), (d1, d2, d3) = strides, dilations
    lines = [
        "",
        "",
        '@numba.njit(cache=True, nogil=True, fastmath={"contract"}, boundscheck=False)',
        "def kernel_grad(x, g, dw, r0, r1):",
        "    O1, O2, O3 = g.shape[1], g.shape[2], g.shape[3]",
        "    zero = dw[0]  # dw arrives zeroed: the sums' type and start",
    ]
    sums = [f"s{t}_{c}_{f}" for t in range(len(taps)) for c in range(channels) for f in range(filters)]
    lines += [f"    {name} = zero" for name in sums]
    lines += [
        "    for r in range(r0, r1):",
        "        n = r // O1",
        "        o1 = r - n * O1",
        "        for o2 in range(O2):",
        "            for o3 in range(O3):",
        "                cell = g[n, o1, o2, o3]",
    ]
    indent = "                "
    lines += [f"{indent}g{f} = cell[{f}]" for f in range(filters)]
    for number, (t1, t2, t3) in enumerate(taps):
        row = f"x[n, o1 * {s1} + {t1 * d1}, o2 * {s2} + {t2 * d2}, o3 * {s3} + {t3 * d3}]"
        for c in range(channels):
            lines.append(f"{indent}v = {row}[{c}]")
            lines += [f"{indent}s{number}_{c}_{f} = fmuladd(v, g{f}, s{number}_{c}_{f})" for f in range(filters)]
    lines += [f"    dw[{index}] = {name}" for index, name in enumerate(sums)]
    return lines


# ----------------------------------------------------------------------------- files and compiling


def kernel_dir() -> str:
    """The folder of the written-out kernels (and, beside them, numba's cache of their machine code)."""
    chosen = os.environ.get("RANKCONV_KERNEL_DIR")
    if chosen:
        return chosen
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rankconv", "kernels")


def _module_name(text: str) -> str:
    return f"rankconv_unrolled_v{_VERSION}_{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def _load(key: tuple):
    """The kernels for `key` (a module, or a namespace, whose `conv` and `kernel_grad` are
    compiled on demand): from its file in `kernel_dir()` (written, or written again, where it does
    not hold exactly `source(key)`), or, where the folder cannot be written, from the text alone
    (then without numba's disk cache)."""
    text = source(key)
    name = _module_name(text)
    folder = kernel_dir()
    path = os.path.join(folder, name + ".py")
    try:
        os.makedirs(folder, exist_ok=True)
        current = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                current = handle.read()
        if current != text:
            temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temporary, path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # numba's cache locator finds the function's module by name
        spec.loader.exec_module(module)
        return module
    except OSError:
        namespace: dict = {}
        exec(compile(text.replace("cache=True", "cache=False"), f"<{name}>", "exec"), namespace)  # noqa: S102 - our own text
        return types.SimpleNamespace(conv=namespace["conv"], kernel_grad=namespace["kernel_grad"])


_lock = threading.Lock()
_kernels: dict = {}  # (key, dtype) -> the compiled kernels (`_load`)
_building: dict = {}  # (key, dtype) -> threading.Event set when the build ended
_failures: dict = {}  # (key, dtype) -> the exception a build raised


_one_build = threading.Lock()  # builds run one at a time: each keeps a core busy for seconds


def _build(entry, event) -> None:
    key, dtype = entry
    try:
        with _one_build:
            compiled = _load(key)
            (k1, k2, k3), channels, filters, _, _ = key
            x = np.zeros((1, k1, k2, k3, channels), dtype=dtype)
            w = np.zeros(k1 * k2 * k3 * channels * filters, dtype=dtype)
            y = np.zeros((1, 1, 1, 1, filters), dtype=dtype)
            jit.prepare(compiled.conv, x, w, y, 0, 0)
            jit.prepare(compiled.kernel_grad, x, y, w, 0, 0)
        with _lock:
            _kernels[entry] = compiled
    except Exception as error:  # noqa: BLE001 - the generic kernel keeps computing; the failure is kept for tests
        with _lock:
            _failures[entry] = error
    finally:
        event.set()


def kernel_for(call: common.ConvCall, wait: bool = False):
    """The compiled kernels for `call`'s shape (`_load`), or None while they are being built (the
    build starts on the first request, on a background thread); `wait=True` waits for them."""
    entry = (_shape_key(call), np.dtype(call.dtype).str)
    with _lock:
        ready = _kernels.get(entry)
        if ready is not None:
            return ready
        event = _building.get(entry)
        started = event is None
        if started:
            event = _building[entry] = threading.Event()
    if started and wait:
        _build(entry, event)
    elif started:
        threading.Thread(target=_build, args=(entry, event), name="rankconv-unrolled-build", daemon=True).start()
    if wait:
        event.wait()
        with _lock:
            if entry in _failures:
                raise RuntimeError(f"The written-out kernel for this convolution failed to compile: {_failures[entry]}")
            return _kernels[entry]
    return None


def wait_for_builds(timeout: float | None = None) -> bool:
    """Wait until every written-out kernel requested so far is compiled (or failed); False if
    `timeout` seconds passed first. For benchmarks, which should time the kernel a process ends
    up with, not the generic one it starts with."""
    with _lock:
        events = list(_building.values())
    return all(event.wait(timeout) for event in events)


# ----------------------------------------------------------------------------- the algorithm


def _compiled(call: common.ConvCall):
    """The written-out kernels where they are compiled, else None (the generic compiled kernels then
    compute, with the same sums in the same order); a forced algorithm (`set_conv_algorithm`)
    waits for them."""
    from rankconv.ops import planner

    return kernel_for(call, wait=planner.get_conv_algorithm() == "unrolled_kernel")


def _padded(x, call: common.ConvCall) -> np.ndarray:
    x3 = rank3.as_rank3(x, call.rank)
    pairs = ((0, 0),) * (3 - call.rank) + tuple(call.pairs)
    if any(lo or hi for lo, hi in pairs):
        x3 = np.pad(x3, ((0, 0), *pairs, (0, 0)))
    return np.ascontiguousarray(x3)


def forward(x, kernel, call: common.ConvCall) -> np.ndarray:
    """The written-out kernel where it is compiled; the generic compiled kernel meanwhile (or where
    its build failed)."""
    compiled = _compiled(call)
    if compiled is None:
        return compiled_conv.direct_forward(x, kernel, call)
    w = np.ascontiguousarray(kernel, dtype=call.dtype).reshape(-1)
    y = common.empty(rank3.rank3_shape(call.output_shape), call.dtype)
    parts = 1 if call.flops < ONE_THREAD_FLOPS else call.threads
    rank3.run_rows(compiled.conv, y.shape[0] * y.shape[1], _padded(x, call), w, y, parts=parts)
    return y.reshape(call.output_shape)


def vjp(grad, x, kernel, call: common.ConvCall, wanted=(True, True)):
    """The input gradient as im2col's backward pass computes it (the transposed convolution: col2im
    for a first layer's deep output gradient); the kernel gradient by the written-out kernel where
    it is compiled (every weight's sum in a register), else the generic compiled kernel's, each
    thread summing its rows, the threads' sums added in order."""
    if grad.size == 0 or x.size == 0:
        return np.zeros_like(x), np.zeros_like(kernel)
    dx = im2col.vjp(grad, x, kernel, call, (True, False))[0] if wanted[0] else None
    if not wanted[1]:
        return dx, None
    compiled = _compiled(call)
    if compiled is None:
        return dx, compiled_conv.direct_vjp(grad, x, kernel, call, (False, True))[1]
    g = np.ascontiguousarray(grad.reshape(rank3.rank3_shape(call.output_shape)))
    x3 = _padded(x, call)
    jit.prepare(compiled.kernel_grad, x3, g, np.zeros(kernel.size, call.dtype), 0, 0)
    rows = g.shape[0] * g.shape[1]  # split as the generic kernel's (`rank3.summed_rows`): the same bits
    dw = rank3.summed_rows(
        lambda out, r0, r1: compiled.kernel_grad(x3, g, out, r0, r1), rows, kernel.size, call.dtype, call.threads
    )
    return dx, dw.reshape(kernel.shape)
