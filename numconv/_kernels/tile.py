"""Stack-allocated accumulator tiles for register-blocked kernels.

A tile allocated with ``np.empty`` lives on the heap; LLVM cannot prove it does not
alias the inputs and stores it after every FMA (57-73 GFLOP/s measured here). An
``alloca`` of a fixed-size array in the function's entry block lets LLVM promote the
whole tile to registers (400+ GFLOP/s): see ../shared/PERF_NOTES.md, item 4.

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
