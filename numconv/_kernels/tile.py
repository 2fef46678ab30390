"""Stack-allocated accumulator tiles for register-blocked kernels.

A tile allocated with ``np.empty`` lives on the heap; LLVM cannot prove it does not
alias the inputs and stores it after every FMA (57-73 GFLOP/s measured here). An
``alloca`` of a fixed-size array in the function's entry block lets LLVM promote the
whole tile to registers (400+ GFLOP/s): see ../shared/PERF_NOTES.md, item 4.

A second, *wide* tile (float64 / complex128) receives the register tile's partial
sums every ``FLUSH_TERMS`` reduction terms for float32 and complex64 data, so a
long reduction (C * kh * kw in the thousands) is a sum of short partial sums
instead of one long float32 chain: the float32 error stops growing with the
reduction length (measured at 4608 terms on positive data: 4.0e-6 relative with
one chain, 1.3e-7 with flushes every 128 terms; torch's NCHW path 3.5e-7). The
flush costs ~10 % of the float32 tile's speed; float64/complex128 skip it at
compile time (``flush_terms`` is 0).

``TILE_BYTES`` is one accumulator row: 256 bytes = 4 zmm registers = 64 float32 /
32 float64 / 32 complex64 / 16 complex128 lanes. ``TILE_ROWS`` output pixels share
each weight row; 4 rows x 4 zmm = 16 accumulators, leaving room for the weight row
and broadcasts in AVX-512's 32 registers (7 rows spill).
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

TILE_BYTES = 256
TILE_ROWS = 4
FLUSH_TERMS = 128


def _lanes(dtype):
    return TILE_BYTES // np.dtype(str(dtype)).itemsize


def block_size(x):
    """Lanes per tile row for ``x``'s dtype (a compile-time constant in kernels)."""
    return _lanes(x.dtype)


@overload(block_size, inline="always")
def _block_size_overload(x):
    n = _lanes(x.dtype)
    return lambda x: n


@intrinsic
def stack_tile(typingctx, like):
    """Pointer to an uninitialised ``TILE_ROWS x block_size(like)`` array of
    ``like.dtype``, allocated once in the entry block of the calling function."""
    dtype = like.dtype
    n = TILE_ROWS * _lanes(dtype)

    def codegen(context, builder, signature, args):
        lty = context.get_data_type(dtype)
        ptr = cgutils.alloca_once(builder, ir.ArrayType(lty, n))
        return builder.bitcast(ptr, lty.as_pointer())

    return types.CPointer(dtype)(like), codegen


def _is_single(dtype):
    return np.dtype(str(dtype)) in (np.dtype(np.float32), np.dtype(np.complex64))


def flush_terms(x):
    """Reduction terms between flushes of the register tile into the wide tile:
    ``FLUSH_TERMS`` for float32/complex64, 0 (never) for double precision."""
    return FLUSH_TERMS if _is_single(x.dtype) else 0


@overload(flush_terms, inline="always")
def _flush_terms_overload(x):
    n = FLUSH_TERMS if _is_single(x.dtype) else 0
    return lambda x: n


@intrinsic
def wide_tile(typingctx, like):
    """Like ``stack_tile`` but in double precision (float64 or complex128): the
    second-level accumulator for single-precision kernels."""
    dtype = types.complex128 if isinstance(like.dtype, types.Complex) else types.float64
    n = TILE_ROWS * _lanes(like.dtype)

    def codegen(context, builder, signature, args):
        lty = context.get_data_type(dtype)
        ptr = cgutils.alloca_once(builder, ir.ArrayType(lty, n))
        return builder.bitcast(ptr, lty.as_pointer())

    return types.CPointer(dtype)(like), codegen
