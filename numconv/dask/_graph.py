"""Block plans and the task graph behind every ``numconv.dask`` op.

An op's output is cut into blocks (a grid of output chunks, one list per axis).
For each output chunk of each axis a *plan* says which input positions the
block reads, in the axis's padded coordinates ``[a, b)`` (``a < 0`` or
``b > L`` reach into the padding):

* ``batch``: the output chunk is the input chunk (no halo);
* ``span``: a fixed input range (all input channels, a group's channels, ...);
* ``window``: output ``o`` reads ``o * s - before + [0, ext)`` (``ext`` the dilated
  kernel extent): conv, pooling and the signal ops. Output chunks are aligned to
  the input chunks (output chunk ``j`` holds the outputs whose window centre
  lies in input chunk ``j``; stride-1 "same" keeps the input's chunks), so a
  block reads its own chunk plus a halo of about ``(ext - s) / 2`` positions on
  each side -- from several neighbouring chunks when chunks are smaller than
  the halo;
* ``transpose``: the adjoint window (``conv_transpose``): the input range whose
  scatter reaches the output chunk.

Padding is resolved against the *whole* array, never a chunk: zeros are
virtual pads handed to the in-memory op (or materialised where the op needs
them); reflect / replicate / circular map each padded position to the array
position it copies (the same rule as ``numconv._kernels.pad.source_index``),
and those positions are gathered from whichever chunks hold them -- the other
end of the array for circular padding, so a chunk never wraps onto itself.

Each block is one task that assembles its input from slices of the input
chunks it touches (``getitem`` tasks, so only the slices travel between
workers; a whole chunk is referenced directly) and runs the in-memory op on it
(``numconv.dask._tasks``) with the thread count the worker allows
(``numconv.dask._threads``).
"""
import itertools
import math
import operator
from functools import partial

import numpy as np

MAPPED_MODES = ("reflect", "replicate", "circular")


# ---------------------------------------------------------------- per-axis sources

class Source:
    """What one output chunk reads along one axis.

    ``intervals``: disjoint, sorted ``(lo, hi)`` ranges of the real axis (their
    concatenation is the *compact* input); ``take``: ``None`` (the block is the
    compact input) or ``(before_idx, (m0, m1), after_idx)``: the block is
    ``compact[before_idx] + compact[m0:m1] + compact[after_idx]`` (mapped
    padding); ``pads``: zero pads ``(before, after)`` around it; ``origin``: the
    padded coordinate of the block's first position (what ops need to line up
    windows)."""

    __slots__ = ("intervals", "take", "pads", "origin")

    def __init__(self, intervals, take=None, pads=(0, 0), origin=0):
        self.intervals = tuple((int(lo), int(hi)) for lo, hi in intervals if hi > lo)
        self.take = take
        self.pads = (int(pads[0]), int(pads[1]))
        self.origin = int(origin)


def span_source(lo, hi):
    return Source(((lo, hi),), origin=lo)


def window_source(a, b, L, mode):
    """The padded range ``[a, b)`` of an axis of length ``L`` under padding ``mode``
    (``"zeros"``, ``"clip"`` -- zeros that ops treat as absent -- or a mapped mode)."""
    lo, hi = max(a, 0), min(b, L)
    if mode not in MAPPED_MODES or (a >= 0 and b <= L):
        if lo >= hi:  # nothing real: the whole range is padding
            return Source((), pads=(b - a, 0), origin=a)
        return Source(((lo, hi),), pads=(lo - a, b - hi), origin=a)
    p = np.arange(a, b)
    if mode == "reflect":
        r = np.where(p < 0, -p, np.where(p >= L, 2 * (L - 1) - p, p))
    elif mode == "replicate":
        r = np.clip(p, 0, L - 1)
    else:  # circular
        r = p % L
    u = np.unique(r)  # the compact input: sorted real positions needed
    runs = np.split(u, np.flatnonzero(np.diff(u) != 1) + 1)
    intervals = [(run[0], run[-1] + 1) for run in runs]
    nb, na = max(0, min(-a, b - a)), max(0, min(b - L, b - a))
    before = np.searchsorted(u, r[:nb])
    after = np.searchsorted(u, r[len(r) - na:])
    m0 = int(np.searchsorted(u, lo)) if lo < hi else 0
    m1 = m0 + max(hi - lo, 0)
    return Source(intervals, take=(before, (m0, m1), after), origin=a)


# ---------------------------------------------------------------- per-axis plans

def _bounds(chunks):
    return np.concatenate([[0], np.cumsum(chunks)]).astype(int)


def _chunks_from_bounds(bounds, total):
    """Output chunks from candidate boundaries: clamped, deduplicated, no empty chunk."""
    edges = sorted({0, total} | {min(max(int(v), 0), total) for v in bounds})
    return tuple(int(e1 - e0) for e0, e1 in zip(edges[:-1], edges[1:]) if e1 > e0) or (0,)


class BatchPlan:
    """Output chunks = input chunks; each block reads its own chunk."""

    def __init__(self, in_chunks):
        self.chunks = tuple(in_chunks)
        self._b = _bounds(self.chunks)

    def source(self, j):
        return span_source(self._b[j], self._b[j + 1])


class SpanPlan:
    """Given output chunks; block ``j`` reads the input range ``ranges[j]``."""

    def __init__(self, chunks, ranges):
        self.chunks = tuple(chunks)
        self._ranges = list(ranges)

    def source(self, j):
        return span_source(*self._ranges[j])


class WindowPlan:
    """Output ``o`` reads padded positions ``o * s - before + [0, ext)`` of an axis of
    length ``L``; ``out_len`` outputs; output chunk ``j`` holds the outputs whose window
    centre lies in input chunk ``j`` (stride-1 "same" keeps the input's chunks)."""

    def __init__(self, L, s, before, ext, out_len, mode, in_chunks):
        self.L, self.s, self.before, self.ext, self.mode = L, s, before, ext, mode
        inner = _bounds(in_chunks)[1:-1]
        centre = before - (ext - 1) // 2  # output o's window centre is o * s - centre
        self.chunks = _chunks_from_bounds([-(-(B + centre) // s) for B in inner], out_len)
        self._b = _bounds(self.chunks)

    def source(self, j):
        o0, o1 = self._b[j], self._b[j + 1]
        a = o0 * self.s - self.before
        b = (o1 - 1) * self.s - self.before + self.ext
        return window_source(a, b, self.L, self.mode)


class TransposePlan:
    """``conv_transpose`` along one axis: output ``i`` is adjoint position ``i + pb``,
    which input ``o`` reaches through tap ``k`` when ``o * s + k * d = i + pb``. Output
    chunks are aligned to the input chunks (input chunk ``j`` scatters from ``B_j * s``)."""

    def __init__(self, L, s, ext, pb, lout, in_chunks):
        self.L, self.s, self.ext, self.pb = L, s, ext, pb
        inner = _bounds(in_chunks)[1:-1]
        self.chunks = _chunks_from_bounds([B * s - pb for B in inner], lout)
        self._b = _bounds(self.chunks)

    def source(self, j):
        i0, i1 = self._b[j], self._b[j + 1]
        # floor (not ceil) for the first input: its origin then lies at or before
        # i0 + pb - (ext - 1), so the block's local pad offset is never negative
        lo = max(0, (i0 + self.pb - (self.ext - 1)) // self.s)
        hi = min(self.L, (i1 - 1 + self.pb) // self.s + 1)
        return Source(((lo, max(lo, hi)),), origin=lo)


# ---------------------------------------------------------------- the graph

def _segments(source, in_bounds):
    """Pieces of ``source``'s intervals by input chunk along one axis:
    ``(chunk index, local slice, compact slice, whole chunk?)``."""
    segs, offset = [], 0
    for lo, hi in source.intervals:
        first = int(np.searchsorted(in_bounds, lo, side="right")) - 1
        c = first
        while c < len(in_bounds) - 1 and in_bounds[c] < hi:
            s0, s1 = max(lo, in_bounds[c]), min(hi, in_bounds[c + 1])
            segs.append((c, slice(int(s0 - in_bounds[c]), int(s1 - in_bounds[c])),
                         slice(offset + int(s0 - lo), offset + int(s1 - lo)),
                         s0 == in_bounds[c] and s1 == in_bounds[c + 1]))
            c += 1
        offset += hi - lo
    return segs


def _compact_len(source):
    return sum(hi - lo for lo, hi in source.intervals)


def build(token_name, x, plans, op, dtype, consts=(), materialize="never"):
    """A ``dask.array.Array`` whose block ``(j0, j1, ...)`` is
    ``op(block_input, pads, info, *consts)``.

    ``plans``: one plan per axis of ``x`` (``.chunks``, ``.source(j)``); the output
    has the plans' chunks. ``op`` is a picklable callable; ``pads`` are the zero
    pads per axis still to apply (virtual), ``info`` per axis ``(o0, o1, origin)``:
    the block's output range and the padded coordinate of its first input.
    ``consts`` (kernels, biases) enter the graph once each, not once per task.
    ``materialize``: ``"never"`` (zero pads stay virtual), ``"empty"`` (write them
    into the block only when an axis has no real input), ``"always"``.
    """
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    name = token_name
    dsk = {}
    const_keys = []
    for i, c in enumerate(consts):
        key = (f"{name}-const{i}",)
        dsk[key] = c
        const_keys.append(key)
    in_bounds = [_bounds(c) for c in x.chunks]
    per_axis = []
    for axis, plan in enumerate(plans):
        rows = []
        starts = _bounds(plan.chunks)
        for j in range(len(plan.chunks)):
            src = plan.source(j)
            rows.append((src, _segments(src, in_bounds[axis]), (int(starts[j]), int(starts[j + 1]), src.origin)))
        per_axis.append(rows)
    getters = {}
    meta_dtype = np.dtype(x.dtype)
    for idx in itertools.product(*(range(len(p.chunks)) for p in plans)):
        rows = [per_axis[a][j] for a, j in enumerate(idx)]
        sources = [r[0] for r in rows]
        refs, places = [], []
        for combo in itertools.product(*(r[1] for r in rows)):
            chunk = (x.name,) + tuple(seg[0] for seg in combo)
            local = tuple(seg[1] for seg in combo)
            if all(seg[3] for seg in combo):
                ref = chunk
            else:
                gkey = (chunk, tuple((s.start, s.stop) for s in local))
                ref = getters.get(gkey)
                if ref is None:
                    ref = (f"{name}-get", len(getters))
                    dsk[ref] = (operator.getitem, chunk, local)
                    getters[gkey] = ref
            refs.append(ref)
            places.append(tuple(seg[2] for seg in combo))
        static = dict(compact=tuple(_compact_len(s) for s in sources), dtype=meta_dtype, places=places,
                      takes=tuple(s.take for s in sources), pads=tuple(s.pads for s in sources),
                      info=tuple(r[2] for r in rows), materialize=materialize)
        dsk[(name,) + idx] = (partial(run_block, op, static), refs) + tuple(const_keys)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    chunks = tuple(p.chunks for p in plans)
    return da.Array(graph, name, chunks, meta=np.empty((0,) * len(chunks), dtype))


def assemble(pieces, static):
    """The block's input from its pieces: compact gather, mapped padding, zero pads.
    Returns ``(block, pads still to apply virtually)``."""
    compact, places, takes = static["compact"], static["places"], static["takes"]
    if len(pieces) == 1 and all(p == slice(0, n) for p, n in zip(places[0], compact)) \
            and tuple(pieces[0].shape) == compact:
        block = pieces[0]
    else:
        block = np.empty(compact, pieces[0].dtype if pieces else static["dtype"])
        for piece, place in zip(pieces, places):
            block[place] = piece
    for axis, take in enumerate(takes):
        if take is None:
            continue
        before, (m0, m1), after = take
        if len(before) == 0 and len(after) == 0 and m0 == 0 and m1 == block.shape[axis]:
            continue
        mid = block[(slice(None),) * axis + (slice(m0, m1),)]
        block = np.concatenate([np.take(block, before, axis=axis), mid, np.take(block, after, axis=axis)],
                               axis=axis)
    pads = static["pads"]
    mode = static["materialize"]
    if any(pads) and (mode == "always" or (mode == "empty" and 0 in block.shape)):
        block = np.pad(block, pads)
        pads = ((0, 0),) * len(pads)
    return block, pads


def run_block(op, static, pieces, *consts):
    """One block's task: assemble its input, run ``op`` with the worker's thread count."""
    from ._threads import task_threads

    block, pads = assemble(pieces, static)
    with task_threads():
        return op(block, pads, static["info"], *consts)


def check_known_shape(fn, x, arg="x"):
    """Dask arrays with unknown chunk sizes (after boolean indexing) cannot be planned."""
    if any(math.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError(f"{fn}: {arg} must have known chunk sizes; got chunks {x.chunks}. "
                         f"Call {arg}.compute_chunk_sizes() first.")
