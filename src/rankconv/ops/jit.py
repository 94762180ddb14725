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


def kernel(function):
    """Compile `function` lazily with numba (no Python objects, GIL released, cached on disk);
    without numba, the plain Python function (never called by the planner then, but importable)."""
    if _numba is None:
        return function
    # `contract` lets LLVM fuse multiply and add into FMAs; no reassociation, so the sums keep
    # their order and a seeded run repeats exactly.
    return _numba.njit(cache=True, nogil=True, fastmath={"contract"}, boundscheck=False)(function)
