"""The switch for compiled kernels: numba when it is installed and `RANKCONV_JIT` is not "0".

Compiled kernels serve the convolutions BLAS has no product for (depthwise, few input channels)
and pooling. Each is one more algorithm beside the NumPy ones, which stay as the fallback and as
the truth the kernels are tested against. `RANKCONV_JIT=0` in the environment (read at import), or
`set_jit(False)` at run time, selects the NumPy algorithms everywhere.

Kernels are compiled lazily, on their first call, for the host's vector unit, and cached on disk
(numba's `cache=True`: beside the source, or under `NUMBA_CACHE_DIR` where that is not writable), so
only the first process on a machine pays the compile time. They release the GIL (`nogil`) and run
on the package's own worker threads (`conv_common.run_parallel`), so one thread budget —
`rankconv.ops.set_num_threads` — covers them, the block-wise algorithms and BLAS.
"""

from __future__ import annotations

import os
import threading

try:  # numba is a runtime dependency where it has wheels; elsewhere the NumPy algorithms run
    import numba as _numba
except ImportError:  # pragma: no cover - exercised on platforms without numba
    _numba = None

AVAILABLE = _numba is not None
_enabled = AVAILABLE and os.environ.get("RANKCONV_JIT", "1").strip().lower() not in ("0", "false", "no", "off")


def enabled() -> bool:
    """Whether the planner may choose compiled kernels."""
    return _enabled


def set_jit(on: bool) -> None:
    """Allow (True) or forbid (False) compiled kernels; True needs numba installed."""
    global _enabled
    if not isinstance(on, bool):
        raise TypeError(f"`on` must be True or False; received {on!r}.")
    if on and not AVAILABLE:
        raise ValueError("Compiled kernels need numba, which is not installed: pip install numba.")
    _enabled = on


def unavailable_reason() -> str | None:
    """None where compiled kernels may run, else why not (for the planner's explanations)."""
    if not AVAILABLE:
        return "numba is not installed"
    if not _enabled:
        return "compiled kernels are switched off (RANKCONV_JIT=0 or set_jit(False))"
    return None


_slp_lock = threading.Lock()


def prepare(dispatcher, *args) -> None:
    """Compile `dispatcher` for these arguments' types (or load it from the disk cache) with LLVM's
    SLP vectoriser on, before its first call. numba leaves SLP off by default; rankconv's
    register-blocked kernels (`blocks`) need it to pack their scalar accumulators into vector
    registers. The switch is numba's process-wide setting, turned on only while rankconv's kernels
    compile (under numba's compiler lock, so no other compilation sees it)."""
    if _numba is None:
        return
    # numba.typeof on every argument costs ~50 us; this runs before every kernel call, so the
    # signatures already prepared are remembered by what decides them (dtype, rank, layout, flags)
    key = (id(dispatcher), *map(_signature_key, args))
    if key in _prepared:
        return
    signature = tuple(_numba.typeof(a) for a in args)
    if signature in dispatcher.overloads:
        _prepared.add(key)
        return
    from numba.core import config
    from numba.core.compiler_lock import global_compiler_lock

    with _slp_lock, global_compiler_lock:
        if signature in dispatcher.overloads:
            return
        saved = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1
        try:
            dispatcher.compile(signature)
        finally:
            config.SLP_VECTORIZE = saved
    _prepared.add(key)


_prepared: set = set()


def _signature_key(value):
    """What numba's type of `value` depends on: an array's dtype, rank, layout and flags; else the type."""
    flags = getattr(value, "flags", None)
    if flags is None:
        return type(value)
    return (value.dtype.str, value.ndim, flags.c_contiguous, flags.f_contiguous, flags.aligned, flags.writeable)


def inline_kernel(function):
    """`kernel`, inlined into every kernel that calls it (numba's IR inlining): for small blocks
    called in a hot loop, where a call's overhead would cost as much as the block."""
    if _numba is None:
        return function
    return _numba.njit(cache=True, nogil=True, fastmath={"contract"}, boundscheck=False, inline="always")(function)


def kernel(function):
    """Compile `function` lazily with numba (no Python objects, GIL released, cached on disk);
    without numba, the plain Python function (never called by the planner then, but importable)."""
    if _numba is None:
        return function
    # `contract` lets LLVM fuse multiply and add into FMAs; no reassociation, so the sums keep
    # their order and a seeded run repeats exactly.
    return _numba.njit(cache=True, nogil=True, fastmath={"contract"}, boundscheck=False)(function)


if _numba is not None:
    from llvmlite import ir as _llvm_ir
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def fmuladd(typingctx, a, b, c):
        """`a * b + c` as LLVM's `llvm.fmuladd`: one fused multiply-add where the machine has one,
        exactly what `fastmath={"contract"}` makes of `c += a * b` in a loop. Written-out kernels
        (`unrolled`) call it so that each product is fused whatever LLVM's vectorisers do to the
        straight-line code, and their sums equal the loop kernels' bit for bit."""
        if not (a == b == c) or not isinstance(a, _numba.types.Float):
            return None

        def codegen(context, builder, signature, args):
            kind = args[0].type
            function = builder.module.declare_intrinsic(
                "llvm.fmuladd", [kind], _llvm_ir.FunctionType(kind, [kind, kind, kind])
            )
            return builder.call(function, args)

        return a(a, b, c), codegen

else:  # pragma: no cover - without numba the written-out kernels are never used

    def fmuladd(a, b, c):
        return a * b + c
