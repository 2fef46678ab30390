"""The machine's floating-point peak, measured: a register-only FMA loop.

``python -m numconv bench`` reports every case against two ceilings: NumPy's
matrix product (what a tuned BLAS reaches through memory) and this one, what the
cores' FMA units can do at all. Each thread runs ``CHAINS`` independent
``<64 bytes>`` vector FMA chains (``llvm.fma``, the tile kernels' instruction)
that never touch memory, so the loop is limited by FMA throughput alone: 12
chains cover the FMA latency (4 cycles) x 2 pipes with room to spare. On the
2-core Zen 4 this project is timed on, 117.4 GFLOP/s per core in float32 (32
flops a cycle at ~3.67 GHz) and 234.9 on two; float64 half of that.
"""
import time

import numpy as np
from llvmlite import ir
from numba import prange
from numba.extending import intrinsic

from .._config import parallel_kernel
from .tile import _fma

CHAINS = 12


@intrinsic
def fma_chains(typingctx, like, count):
    """``CHAINS`` chains of ``count`` dependent vector FMAs each (``like``'s dtype,
    64-byte vectors), summed into one element so nothing is optimised away."""
    dtype = like.dtype

    def codegen(context, builder, sig, args):
        _, n = args
        elem = context.get_value_type(dtype)
        vty = ir.VectorType(elem, 512 // dtype.bitwidth)

        def splat(v):
            return ir.Constant(vty, [ir.Constant(elem, v)] * vty.count)

        entry = builder.block
        loop = builder.append_basic_block("fma_loop")
        done = builder.append_basic_block("fma_done")
        builder.branch(loop)
        builder.position_at_end(loop)
        i = builder.phi(n.type)
        i.add_incoming(ir.Constant(n.type, 0), entry)
        accs = []
        for k in range(CHAINS):
            acc = builder.phi(vty)
            acc.add_incoming(splat(1.0 + k), entry)
            accs.append(acc)
        nxt = [_fma(builder, acc, splat(0.999999), splat(1e-7)) for acc in accs]
        i1 = builder.add(i, ir.Constant(n.type, 1))
        i.add_incoming(i1, loop)
        for acc, v in zip(accs, nxt):
            acc.add_incoming(v, loop)
        builder.cbranch(builder.icmp_signed("<", i1, n), loop, done)
        builder.position_at_end(done)
        total = nxt[0]
        for v in nxt[1:]:
            total = builder.fadd(total, v)
        return builder.extract_element(total, ir.Constant(ir.IntType(32), 0))

    return dtype(like, count), codegen


@parallel_kernel
def _burst(like, count, threads):
    out = np.empty(threads, like.dtype)
    for t in prange(threads):
        out[t] = fma_chains(like, count)
    return out


def fma_peak(dtype="float32", threads=1, seconds=0.03, repeat=3):
    """GFLOP/s of ``threads`` threads each running the FMA chains for about
    ``seconds``, best of ``repeat``."""
    like = np.empty(1, dtype)
    lanes = 64 // like.itemsize
    _burst(like, 1000, threads)  # compile (cached) and wake the threads
    count = 1 << 16
    while True:  # double until one run takes 10 ms (~2^20 iterations here)
        t0 = time.perf_counter()
        _burst(like, count, threads)
        if time.perf_counter() - t0 > 0.01:
            break
        count *= 2
    count = int(count * seconds / 0.01)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        _burst(like, count, threads)
        best = min(best, time.perf_counter() - t0)
    return 2 * CHAINS * lanes * count * threads / best / 1e9
