"""Transposed convolution and the gradients of ``conv``: one adjoint, many uses.

Per spatial axis, ``conv`` computes ``y[o] = sum_k xpad[o*s + k*d] w[k]``. Its adjoint
scatters back: ``gpad[j] = sum_{o, k : o*s + k*d = j} y[o] w[k]``. Three public ops are
this one computation with different output windows ``i = j - pb``, ``0 <= i < Lout``:

* ``conv_backprop_input``: ``pb`` = the forward pad before, ``Lout`` = the input
  length; for reflect / replicate / circular padding the window is the whole padded
  input and the padded border is folded back onto the positions it was read from;
* ``conv_transpose``: Keras's ``Conv*DTranspose`` window (``transpose_window``);
* ``conv_backprop_kernel`` is the other adjoint (in the kernel), itself a grouped
  conv of the input by the output gradient (``conv_backprop_kernel``); 3x3
  windows at stride 1 take the transposed Winograd form (``_kernels/winograd.py``).

The scatter is computed as gathers on the direct / FFT paths (no new loop nest):
outputs ``i`` split into ``s`` phases by ``(i + pb) mod s``; each phase only meets the
taps ``k`` with ``k*d = (i + pb) mod s``, which are evenly spaced, and is a stride-1
conv of ``y`` with those taps reversed (``_phases``). So a stride-2 2-D transpose is
four small stride-1 convs doing exactly the useful multiply-adds, not one conv of a
zero-stuffed input doing four times as many. 3x3 windows at stride 2 (2-D, >= 8
channels and filters per group) take a Winograd form of all four phases at once
instead, 25 products per 4 x 4 outputs where the phases do 36
(``_paths/winograd.transposed_applies``, ``_kernels/winograd.py``).

Each phase conv has a fixed cost (~40 us here: Python, weight packing, a
parallel launch), so large strides on small layers were all fixed cost: a stride-3
3-D layer is 27 one-tap phases (1 x 6 x 6 x 6 x 3 -> 256 3 x 3 x 3 input
gradient: 2.9 ms, torch 0.04). There the adjoint takes its column form
(``_columns``): one grouped 1 x 1 conv computes every input position's products
with every tap, and ``_kernels/fold.py`` sums, per output, the columns that land
on it (0.13 ms). It writes and reads back taps x the output's bytes, so
``_columns_pay`` weighs that against the phases' fixed costs. The plans of both
forms, with their sub-specs, are remembered per arguments (``_plan``).
"""
import math
from dataclasses import replace

import numba
import numpy as np

from . import _dispatch
from . import _memory
from ._paths import direct
from ._config import kernel_lock
from ._errors import shape_str, type_error, unknown_option, value_error
from ._kernels.layout import swap_last_axes
from ._kernels.fold import axis_table, fold_columns_kernel
from ._kernels.act import DEFERRED, apply_deferred, bias_activation_kernel, fused_code
from ._kernels.pad import PAD_MODES, source_index
from ._kernels.tile import VARIANTS, choose_variant, variant_lanes, variant_tag
from ._kernels import winograd as wk
from ._kernels.wgrad import weight_grad_kernel
from ._paths import winograd as winograd_path
from ._paths.direct import padded
from ._spec import (DATA_FORMATS, ConvSpec, apply_callable, canonical_array, canonical_input, canonical_kernel,
                    canonical_output, check_limit, check_out, deliver, index, normalize_activation, normalize_array,
                    normalize_method, normalize_tuple, out_apart, remember, spec_from_shapes, user_layout)

# ---------------------------------------------------------------- the adjoint core


def _axis_phases(s, d, k, pb, lout, o_len):
    """Phases of one axis: ``(i0, q, taps, dil, base)`` per non-empty output phase.

    Outputs ``i0, i0 + s, ...`` (``q`` of them) read ``y[q' + base + m * dil]`` with the
    kernel taps ``taps[m]`` (already in gather order), ``q'`` the index within the phase.
    ``taps`` is empty when no tap reaches the phase (its outputs are zero)."""
    phases = []
    for r in range(s):
        i0 = (r - pb) % s
        q = len(range(i0, lout, s))
        if q == 0:
            continue
        ks = [t for t in range(k) if (t * d - r) % s == 0]
        if not ks:
            phases.append((i0, q, (), 1, 0))
            continue
        j0 = i0 + pb
        offsets = [(j0 - t * d) // s for t in ks]       # decreasing in t, evenly spaced
        dil = offsets[0] - offsets[1] if len(ks) > 1 else 1
        phases.append((i0, q, tuple(reversed(ks)), dil, offsets[-1]))
    return phases


#: the column form's cost per byte of columns (written by the 1 x 1 conv, read back
#: by the fold) against the phase form's cost per phase conv beyond the first, both
#: in seconds (``_columns_pay``). Measured (2 threads, medians of 9, float32,
#: phases vs columns): 1 x 6 x 6 x 6 x 64 -> 16 3 x 3 x 3 stride 3 (27 phases,
#: 0.37 MB of columns) 0.90 vs 0.27 ms; 1 x 7 x 7 x 256 -> 128 3 x 3 stride 2 (4,
#: 0.23 MB) 0.54 vs 0.50; 1 x 16 x 16 x 64 -> 64 4 x 4 stride 2 (4, 1.05 MB) 0.41 vs
#: 0.47; 8 x 28 x 28 x 64 -> 64 3 x 3 stride 2 (4, 14 MB) 2.7 vs 4.6.
COLUMN_BYTE_COST = 3e-10
PHASE_COST = 4e-5

#: adjoint plans by their arguments, most recent last (``_plan``)
_PLANS = {}
_PLANS_KEPT = 256


def adjoint(spec, g5, wt, pbs, louts, out5, method):
    """``out5[n, i, c] = sum over o*s + k*d = i + pb of g5[n, o, f] * wt[k, f, c]``.

    ``g5`` (N, O1, O2, O3, F) canonical; ``wt`` (K1, K2, K3, F // G, C) the forward
    kernel with each group's channel axes swapped (``swap_channels``); ``spec`` gives
    strides, dilations, groups and dtype; ``out5`` (N, *louts, C) is written in full.
    Each phase is a stride-1 conv on the chosen path (``method``); where the phases
    are many and small, the column form (``_columns``) instead."""
    plan = _plan(spec, tuple(pbs), tuple(louts), g5.shape, wt.shape, method)
    if plan.transposed:
        return winograd_path.run_transposed(spec, g5, wt, pbs, out5)
    if plan.columns is not None:
        return _columns(plan.columns, g5, wt, out5)
    if plan.zero:
        out5[...] = 0                                     # outputs no phase writes stay zero
    for sub, src, taps, lattice in plan.runs:
        gy = np.ascontiguousarray(g5[src])
        w = np.ascontiguousarray(wt[taps])
        if lattice is None:
            _dispatch.run(sub, gy, w, None, out5)
        elif _dispatch.resolve(sub) == "direct":
            # the dense kernel writes the phase straight into its interleaved positions
            direct.run(sub, gy, w, None, out5, lattice=lattice)
        else:
            tmp = _memory.scratch(sub.canonical_output_shape, spec.dtype)
            _dispatch.run(sub, gy, w, None, tmp)
            out5[(slice(None),) + tuple(slice(f, None, s) for s, f in zip(*lattice))] = tmp
    return out5


class _Plan:
    """What ``adjoint`` runs for one set of arguments: ``runs``, per phase with any
    tap (sub-spec, the slices of ``g5`` it reads, the index of its taps in ``wt``,
    its output lattice or None when it is the only phase and fills the output);
    ``zero``, whether some outputs no phase writes stay zero; ``columns``, the
    column form's arguments instead (``_columns``), or None; ``transposed``,
    whether the transposed Winograd scheme computes it all instead
    (``_paths/winograd.transposed_applies``)."""

    __slots__ = ("runs", "zero", "columns", "transposed")

    def __init__(self, runs, zero, columns, transposed=False):
        self.runs, self.zero, self.columns, self.transposed = runs, zero, columns, transposed


def _plan(spec, pbs, louts, gshape, wshape, method):
    """The remembered ``_Plan`` for these arguments (its sub-specs kept with it, so
    their own remembered predicates serve every call)."""
    try:
        key = (spec, pbs, louts, gshape, wshape, method)
        plan = _PLANS.get(key)
    except TypeError:  # an unhashable field (a callable activation object)
        return _make_plan(spec, pbs, louts, gshape, wshape, method)
    if plan is None:
        plan = _make_plan(spec, pbs, louts, gshape, wshape, method)
        remember(_PLANS, _PLANS_KEPT, key, plan)
    return plan


def _make_plan(spec, pbs, louts, gshape, wshape, method):
    if method in ("auto", "winograd") and winograd_path.transposed_applies(spec, pbs, louts, gshape, wshape):
        return _Plan((), False, None, True)
    per_axis = [_axis_phases(s, d, k, pb, lo, o) for s, d, k, pb, lo, o in
                zip(spec.strides, spec.dilations, wshape[:3], pbs, louts, gshape[1:4])]
    N, F, C = gshape[0], gshape[-1], wshape[-1]
    single = all(len(p) == 1 and p[0][1] == lo for p, lo in zip(per_axis, louts))
    runs = []
    for combo in np.ndindex(*[len(p) for p in per_axis]):
        phase = [per_axis[a][i] for a, i in enumerate(combo)]
        if any(not taps for _, _, taps, _, _ in phase):
            continue  # no tap reaches these outputs: they stay zero
        src, pads, shape = [slice(None)], [], []
        for (i0, q, taps, dil, base), o_len in zip(phase, gshape[1:4]):
            extent = q + (len(taps) - 1) * dil          # y positions base .. base + extent - 1
            lo, hi = max(base, 0), min(base + extent, o_len)
            if lo >= hi:
                break                                     # the window misses y entirely
            src.append(slice(lo, hi))
            pads.append((lo - base, base + extent - hi))
            shape.append(hi - lo)
        else:
            sub = replace(spec, batch=N, channels=F, filters=C, in_spatial=tuple(shape),
                          kernel_spatial=tuple(len(p[2]) for p in phase), out_spatial=tuple(p[1] for p in phase),
                          strides=(1, 1, 1), dilations=tuple(p[3] for p in phase), pads=tuple(pads),
                          padding_mode="zeros", activation=0, method=method)
            lattice = None if single else (spec.strides, tuple(p[0] for p in phase))
            runs.append((sub, tuple(src), np.ix_(*(list(t) for _, _, t, _, _ in phase)), lattice))
    zero = len(runs) < math.prod(len(p) for p in per_axis)
    columns = _columns_plan(spec, pbs, louts, gshape, wshape, method) if _columns_pay(spec, runs, gshape, wshape,
                                                                                method) else None
    return _Plan(runs, zero, columns)


def _columns_pay(spec, runs, gshape, wshape, method):
    """Whether the column form (``_columns``) is cheaper than the phase convs:
    it writes and reads back a column per input position and tap, where the phases
    pay a conv's fixed cost (~30 us of Python, weight packing and a parallel launch)
    each. Large strides make many phases of few taps each (stride 3 in 3-D: 27 of
    one tap), on outputs small enough that the fixed costs are all the time."""
    if method not in ("auto", "direct") or len(runs) < 2:
        return False
    col_bytes = math.prod(gshape[:4]) * math.prod(wshape[:3]) * wshape[-1] * np.dtype(spec.dtype).itemsize
    return col_bytes * COLUMN_BYTE_COST < (len(runs) - 1) * PHASE_COST


def _columns_plan(spec, pbs, louts, gshape, wshape, method):
    """The column form's (1 x 1 conv spec, fold arguments): each group's ``F // G``
    channels of ``g5`` to its ``taps x C // G`` columns."""
    O = tuple(gshape[1:4])
    taps = tuple(wshape[:3])
    sub = replace(spec, batch=gshape[0], channels=gshape[-1], filters=math.prod(taps) * wshape[-1], in_spatial=O,
                  kernel_spatial=(1, 1, 1), out_spatial=O, strides=(1, 1, 1), dilations=(1, 1, 1),
                  pads=((0, 0),) * 3, padding_mode="zeros", activation=0, method=method)
    tables = tuple(axis_table(L, k, s, d, pb, o) for L, k, s, d, pb, o in
                   zip(louts, taps, spec.strides, spec.dilations, pbs, O))
    return sub, taps, spec.groups, tables


def _columns(cplan, g5, wt, out5):
    """The adjoint in column form: ``cols[n, o, (g, k, c)] = g5[n, o, group g] @
    wt[k, :, g * Cg + c]`` as one grouped 1 x 1 conv on the dense kernels, then
    each output position sums the columns that land on it (``fold_columns_kernel``)."""
    sub, taps, G, tables = cplan
    KT = math.prod(taps)
    Fg, C = wt.shape[3], wt.shape[4]
    wc = np.ascontiguousarray(wt.reshape(KT, Fg, G, C // G).transpose(1, 2, 0, 3)).reshape(1, 1, 1, Fg, KT * C)
    cols = _memory.scratch(sub.canonical_output_shape, sub.dtype)
    _dispatch.run(sub, np.ascontiguousarray(g5), wc, None, cols)
    rows = math.prod(out5.shape[:3])
    chunks = min(out5.shape[3], -(-4 * numba.get_num_threads() // rows))
    with kernel_lock():
        fold_columns_kernel(cols, out5, taps, G, chunks, tables)
    return out5


def swap_channels(w5, groups):
    """(K.., Cg, G*Fg) -> (K.., Fg, G*Cg): within each group, in and out channels
    swap. One ``swap_last_axes`` pass per tap's (Cg, G*Fg) matrix, then, with
    groups, the (G, Fg) blocks of Cg-runs regrouped as (Fg, G) (NumPy's strided
    moveaxis took 5.6 ms for a 3 x 3 x 512 x 512 kernel, the transpose kernel ~0.5)."""
    *ks, cg, f = w5.shape
    fg = f // groups
    taps = math.prod(ks)
    t = swap_last_axes(np.ascontiguousarray(w5).reshape(taps, cg, f),
                       _memory.scratch((taps, f, cg), w5.dtype))  # (taps, G * Fg, Cg)
    if groups > 1 and fg > 1:
        t = t.reshape(taps, groups, fg, cg).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(t).reshape(*ks, fg, groups * cg)


def fold_padding(spec, gpad):
    """Gradient w.r.t. the padded input -> w.r.t. the input: each border position of
    ``gpad`` (N, Lp1, Lp2, Lp3, C) is added onto the input position it copied
    (``spec.padding_mode``), axis by axis."""
    g = gpad
    for axis, ((before, after), L) in enumerate(zip(spec.pads, spec.in_spatial)):
        if before == 0 and after == 0:
            continue
        ax = axis + 1
        core = np.take(g, range(before, before + L), axis=ax).copy()
        for j in list(range(before)) + list(range(before + L, before + L + after)):
            src = source_index.py_func(j - before, L, PAD_MODES[spec.padding_mode])
            idx = [slice(None)] * 5
            idx[ax] = src
            jdx = [slice(None)] * 5
            jdx[ax] = j
            core[tuple(idx)] += g[tuple(jdx)]
        g = core
    return g


# ---------------------------------------------------------------- public ops


def _shape_arg(fn, arg, shape, ndim):
    try:
        shape = tuple(index(v) for v in shape)  # (int() would truncate 5.5 to 5; True is no length)
    except TypeError:
        raise type_error(fn, arg, f"must be a tuple of {ndim} ints", repr(shape),
                         "Pass integer lengths, e.g. x.shape or tuple(int(v) for v in ...).") from None
    if len(shape) != ndim or any(v < 0 for v in shape):
        raise value_error(fn, arg, f"must be a tuple of {ndim} non-negative ints", repr(shape))
    check_limit(fn, arg, shape, repr(shape))
    return shape


@out_apart("grad_out", "kernel")
@_memory.calls_scratch
def conv_backprop_input(grad_out, kernel, input_shape, *, strides=1, padding="valid", dilation_rate=1,
                        groups=None, data_format="channels_last", padding_mode="zeros", method="auto", out=None):
    """Gradient of a loss with respect to ``conv``'s input ``x``.

    For ``y = conv(x, kernel, **conv_args)`` and ``grad_out = dL/dy``, returns ``dL/dx``
    (shape ``input_shape``). It is the adjoint of ``conv`` in ``x``: for
    ``padding_mode="zeros"`` a transposed convolution; for reflect / replicate /
    circular padding the gradient that reached the padded border is added onto the
    input positions the border copied (as PyTorch's autograd does).

    Parameters
    ----------
    grad_out : array_like
        ``dL/dy``, shaped like ``conv``'s output for ``input_shape``.
    kernel : array_like
        The forward kernel, Keras layout ``(*kernel_size, in_channels // groups, filters)``.
    input_shape : tuple of int
        Shape of the forward input ``x`` (its layout given by ``data_format``).
    strides, padding, dilation_rate, groups, data_format, padding_mode
        The forward call's arguments (see `numconv.conv`).
    method : {"auto", "direct", "fft", "oa", "winograd"}, default "auto"
        Path for the strided-phase convolutions that compute it. 3x3 windows at
        stride 2 (2-D, dilation 1, at least 8 channels and filters per group) take
        the transposed Winograd scheme under "auto" and "winograd"; "direct"
        keeps the phases.
    out : ndarray, optional
        Preallocated result of shape ``input_shape``.

    Returns
    -------
    ndarray
        ``dL/dx`` of shape ``input_shape``, dtype NumPy's promotion of the inputs.

    Examples
    --------
    >>> import numpy as np, numconv
    >>> w = np.ones((3, 1, 1))
    >>> numconv.conv_backprop_input(np.ones((1, 3, 1)), w, (1, 5, 1))[0, :, 0]
    array([1., 2., 3., 2., 1.])
    """
    fn = "conv_backprop_input"
    g, _ = normalize_array(fn, "grad_out", grad_out)
    kernel, _ = normalize_array(fn, "kernel", kernel)
    input_shape = _shape_arg(fn, "input_shape", input_shape, kernel.ndim)
    dtype = np.result_type(g.dtype, kernel.dtype)
    spec = spec_from_shapes(fn, input_shape, kernel.shape, None, dtype, strides, padding, dilation_rate, groups,
                            data_format, padding_mode, None, method, _dispatch.METHODS)
    _check_grad_out(fn, g, spec)
    check_out(fn, out, input_shape, dtype)
    if spec.batch == 0:
        return np.zeros(input_shape, dtype) if out is None else _fill(out, 0)
    g5 = canonical_output(spec, g)
    wt = swap_channels(canonical_kernel(spec, kernel), spec.groups)
    if spec.padding_mode == "zeros":
        # returned as it is only channels-last without ``out``
        alloc = _memory.empty if spec.data_format == "channels_last" and out is None else _memory.scratch
        dx = alloc((spec.batch,) + spec.in_spatial + (spec.channels,), dtype)
        adjoint(spec, g5, wt, [p[0] for p in spec.pads], spec.in_spatial, dx, spec.method)
    else:
        louts = [L + b + a for L, (b, a) in zip(spec.in_spatial, spec.pads)]
        gpad = _memory.empty((spec.batch,) + tuple(louts) + (spec.channels,), dtype)
        adjoint(spec, g5, wt, [0, 0, 0], louts, gpad, spec.method)
        dx = fold_padding(spec, gpad)
    return user_layout(spec, dx, spec.in_spatial, spec.channels, out)


def _fill(out, value):
    out[...] = value
    return out


def _check_grad_out(fn, g, spec):
    if g.shape != tuple(spec.output_shape):
        raise value_error(fn, "grad_out", f"must have the forward conv's output shape {shape_str(spec.output_shape)} "
                          f"for input shape {shape_str(_user_shape(spec))} and these arguments",
                          f"shape {shape_str(g.shape)}",
                          "Pass the same strides, padding, dilation_rate, groups and data_format as the forward call.")


def _user_shape(spec):
    spatial = spec.in_spatial[3 - spec.rank:]
    if spec.data_format == "channels_first":
        return (spec.batch, spec.channels) + spatial
    return (spec.batch,) + spatial + (spec.channels,)


@out_apart("x", "grad_out")
@_memory.calls_scratch
def conv_backprop_kernel(x, grad_out, kernel_shape, *, strides=1, padding="valid", dilation_rate=1, groups=None,
                         data_format="channels_last", padding_mode="zeros", method="auto", out=None):
    """Gradient of a loss with respect to ``conv``'s kernel.

    For ``y = conv(x, kernel, **conv_args)`` and ``grad_out = dL/dy``, returns
    ``dL/dkernel[k, c, f] = sum over batch and outputs o of xpad[o*s + k*d, c] * grad_out[o, f]``
    (shape ``kernel_shape``, Keras layout), with ``xpad`` the input padded as the
    forward call padded it (``padding_mode`` included). Computed as a grouped conv of
    the input by the output gradient (batch and output positions are its reduction).
    The bias gradient is ``grad_out`` summed over every axis but the channel axis.

    Parameters
    ----------
    x : array_like
        The forward input.
    grad_out : array_like
        ``dL/dy``, shaped like ``conv(x, kernel, **conv_args)``.
    kernel_shape : tuple of int
        ``(*kernel_size, in_channels // groups, filters)``.
    strides, padding, dilation_rate, groups, data_format, padding_mode
        The forward call's arguments (see `numconv.conv`).
    method : {"auto", "direct", "fft", "oa", "winograd"}, default "auto"
        Path for the convolution that computes it. ``"winograd"`` computes 3x3
        windows at H/W stride 1 (ranks 2 and 3, as ``conv``'s Winograd path) in
        the F(3x3, 2x2) form, the others directly; ``"auto"`` uses it on those
        windows when the layer has at least 128 output tiles of 2 x 2.
    out : ndarray, optional
        Preallocated result of shape ``kernel_shape``.

    Returns
    -------
    ndarray
        ``dL/dkernel``, dtype NumPy's promotion of ``x`` and ``grad_out``.

    Examples
    --------
    >>> import numpy as np, numconv
    >>> x = np.arange(5.0).reshape(1, 5, 1)
    >>> numconv.conv_backprop_kernel(x, np.ones((1, 3, 1)), (3, 1, 1))[:, 0, 0]
    array([3., 6., 9.])
    """
    fn = "conv_backprop_kernel"
    x, _ = normalize_array(fn, "x", x)
    g, _ = normalize_array(fn, "grad_out", grad_out)
    if isinstance(kernel_shape, (int, np.integer)) or not hasattr(kernel_shape, "__len__"):
        raise type_error(fn, "kernel_shape", "must be a tuple (*kernel_size, in_channels // groups, filters)",
                         repr(kernel_shape))
    kernel_shape = _shape_arg(fn, "kernel_shape", kernel_shape, len(kernel_shape))
    dtype = np.result_type(x.dtype, g.dtype)
    spec = spec_from_shapes(fn, x.shape, kernel_shape, None, dtype, strides, padding, dilation_rate, groups,
                            data_format, padding_mode, None, method, _dispatch.METHODS)
    _check_grad_out(fn, g, spec)
    check_out(fn, out, kernel_shape, dtype)
    N, C, F, G = spec.batch, spec.channels, spec.filters, spec.groups
    cg = C // G
    real = np.dtype(spec.dtype).kind == "f"  # the gradient kernels' dtypes; complex: a convolution on its path
    dw5 = np.zeros(spec.kernel_spatial + (cg, F), dtype)
    if N > 0:
        x5 = canonical_input(spec, x)
        g5 = canonical_output(spec, g)
        # Only xpad[: (k-1)*d + (o-1)*s + 1] is ever read; zeros padding stays index arithmetic.
        extents = [d * (k - 1) + (o - 1) * s + 1 for k, d, o, s in
                   zip(spec.kernel_spatial, spec.dilations, spec.out_spatial, spec.strides)]
        if spec.padding_mode == "zeros":
            crop, pads = [], []
            for (b, _), L, e in zip(spec.pads, spec.in_spatial, extents):
                keep = min(L, e - b)
                crop.append(slice(0, max(keep, 0)))
                pads.append((b, max(e - b - L, 0) if keep > 0 else 0))
            xs = x5[(slice(None),) + tuple(crop)]
        else:
            xs = padded(spec, x5)[(slice(None),) + tuple(slice(0, e) for e in extents)]
            pads = [(0, 0)] * 3
        if not all(n > 0 for n in xs.shape[1:4]):
            pass  # every tap reads only padding: the gradient is zero
        elif real and _winograd_grad(spec):
            dw5 = _weight_grad_winograd(spec, np.ascontiguousarray(xs), g5, pads)
        elif real and spec.method in ("auto", "direct", "winograd"):
            dw5 = _weight_grad_direct(spec, np.ascontiguousarray(xs), g5, pads)
        else:
            # batch <- in-channel within group, channels <- (group, image), kernel <- grad_out
            xt = np.ascontiguousarray(xs.reshape(xs.shape[:4] + (G, cg)).transpose(5, 1, 2, 3, 4, 0)
                                      .reshape((cg,) + xs.shape[1:4] + (G * N,)))
            gt = np.ascontiguousarray(g5.transpose(1, 2, 3, 0, 4))
            sub = replace(spec, batch=cg, channels=G * N, filters=F, in_spatial=xt.shape[1:4],
                          kernel_spatial=gt.shape[:3], out_spatial=spec.kernel_spatial, strides=spec.dilations,
                          dilations=spec.strides, pads=tuple(pads), padding_mode="zeros", activation=0)
            tmp = np.empty((cg,) + spec.kernel_spatial + (F,), dtype)
            _dispatch.run(sub, xt, gt, None, tmp)
            dw5 = np.moveaxis(tmp, 0, 3)
    dw = dw5.reshape(kernel_shape)
    return deliver(dw, out)


# ---------------------------------------------------------------- conv_transpose


def _winograd_grad(spec):
    """Whether ``conv_backprop_kernel`` runs ``spec`` on the Winograd kernel
    gradient: on the windows the forward Winograd path computes
    (``_paths.winograd.applies``), with ``method="winograd"``, or with ``"auto"``
    when the layer has at least two slices of tiles to share among threads (a
    single slice runs on one thread, where the direct gradient splits its filters
    and channels: 1 x 16 x 16 x 64 -> 64, 0.11 ms against 0.10). Measured, 2
    threads, float32 unless noted, direct / Winograd: resnet 8 x 56 x 56 x 64 ->
    64 5.4 / 2.8 ms (float64 13.1 / 6.3), 32 x 14 x 14 x 256 -> 256 27.5 / 16.3,
    3 -> 64 channels 0.55 / 0.47, groups 4 2.7 / 2.6, 3-D 2 x 16 x 32^3 x 32 ->
    32 4.6 / 3.2, 2 x 32 x 32 x 64 -> 64 0.44 / 0.30, 8 x 14 x 14 x 512 -> 512
    31 / 26, 8 x 28 x 28 x 256 -> 256 26 / 17. The choice depends on the shape
    alone, never on the thread count."""
    if spec.method not in ("auto", "winograd") or not winograd_path.applies(spec):
        return False
    return spec.method == "winograd" or winograd_path.tile_count(spec) >= 2 * wk.MIN_SLICE_TILES


def _weight_grad_winograd(spec, xs, g5, pads):
    """The kernel gradient on ``_kernels.winograd.winograd_wgrad_kernel`` (F(3x3,
    2x2)), as (KD, 3, 3, Cg, K)."""
    G, cg, F = spec.groups, spec.channels // spec.groups, spec.filters
    variant = choose_variant(F // G, spec.dtype)
    rows, lanes = VARIANTS[variant][0], variant_lanes(variant, spec.dtype)
    kgp, cgp = -(-(F // G) // lanes) * lanes, -(-cg // rows) * rows
    kd = spec.kernel_spatial[0]
    block = min(cgp, wk.WGRAD_BLOCK), min(kgp, wk.WGRAD_BLOCK)  # multiples of rows and lanes
    part = _memory.scratch((wk.wgrad_slices(winograd_path.tile_count(spec)), kd, wk.ALPHA ** 2, G, cgp, kgp),
                           np.float64)
    dw5 = np.empty(spec.kernel_spatial + (cg, F), spec.dtype)
    with kernel_lock():
        wk.winograd_wgrad_kernel(xs, g5, part, spec.dilations, (spec.strides[0], spec.dilations[0]),
                                 tuple(p[0] for p in pads), block, wk.wgrad_run(kd, *block, spec.dtype),
                                 variant_tag(variant))
        wk.wgrad_finish(part, dw5)
    return dw5


def _weight_grad_direct(spec, xs, g5, pads):
    """The kernel gradient on ``_kernels.wgrad`` (KD, KH, KW, Cg, K): a tile of input
    channels x filters per task, reduced over every image and output position."""
    cg, F = spec.channels // spec.groups, spec.filters
    variant = choose_variant(F // spec.groups, spec.dtype)
    rows, lanes = VARIANTS[variant][0], variant_lanes(variant, spec.dtype)
    flat = g5.reshape(-1)
    if (F // spec.groups) % lanes:  # the last filter block's vector loads run past g
        flat = np.concatenate([flat, np.zeros(lanes, spec.dtype)])
    blocks = spec.groups * -(-(F // spec.groups) // lanes) * -(-cg // rows)
    per_task = max(1, blocks // (4 * numba.get_num_threads()))
    dw5 = np.empty(spec.kernel_spatial + (cg, F), spec.dtype)
    with kernel_lock():
        weight_grad_kernel(xs, g5, flat, dw5, spec.strides, spec.dilations, tuple(p[0] for p in pads), per_task,
                           variant_tag(variant))
    return dw5


def transpose_window(L, k, s, d, padding, output_padding):
    """Keras's ``Conv*DTranspose`` per axis: ``(pb, Lout)`` where output ``i`` is the
    adjoint's position ``i + pb``. Keras pads the stride-stuffed input by
    ``(left, right)`` around the flipped kernel (``keras.src.backend.common.backend_utils``);
    here ``pb = (ke - 1) - left`` and ``Lout = (L - 1) * s + 1 + left + right - ke + 1``."""
    ke = d * (k - 1) + 1
    if padding == "valid":
        op = max(ke, s) - ke if output_padding is None else output_padding
        left, right = ke - 1, ke - 1 + op
    else:
        total = s + ke - 2 if output_padding is None else ke + ke % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, ke - 1)
        right = total - left
    return ke - 1 - left, (L - 1) * s + 1 + left + right - ke + 1


@out_apart("x", "kernel", "bias")
@_memory.calls_scratch
def conv_transpose(x, kernel, bias=None, *, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                   data_format="channels_last", activation=None, method="auto", out=None):
    """Transposed convolution (Keras ``Conv1DTranspose`` / ``Conv2DTranspose`` / ``Conv3DTranspose``).

    The adjoint of ``conv`` in its input: each input position scatters ``kernel``
    times its value, stride ``s`` apart, as in Keras (TensorFlow's
    ``conv2d_transpose``). Output length per axis, as Keras 3 computes it, with
    ``ke = d * (k - 1) + 1``:

    * ``"valid"``: ``(L - 1) * s + ke + output_padding``, with ``output_padding``
      defaulting to ``max(ke, s) - ke`` (so ``L * s`` when the kernel is shorter
      than the stride, where PyTorch gives ``(L - 1) * s + ke``);
    * ``"same"``: ``L * s`` without ``output_padding``, else
      ``(L - 1) * s + ke % 2 + output_padding``.

    With ``output_padding=None`` it is the exact adjoint of ``conv`` with the same
    ``strides``, ``padding`` and ``dilation_rate``:
    ``<conv(z, kernel), x> == <z, conv_transpose(x, kernel)>``.

    Parameters
    ----------
    x : array_like
        ``(batch, *spatial, in_channels)`` (or channels first).
    kernel : array_like
        Keras layout ``(*kernel_size, filters, in_channels)``.
    bias : array_like, optional
        ``(filters,)``.
    strides, dilation_rate : int or tuple of int
        As in Keras; each >= 1.
    padding : {"valid", "same"}
    output_padding : int or tuple of int, optional
        Extra length per axis (Keras's meaning above); each must be < its stride
        (or < its dilation, as Keras allows).
    data_format : {"channels_last", "channels_first"}
    activation : str or callable, optional
        As for `numconv.conv`.
    method : {"auto", "direct", "fft", "oa", "winograd"}, default "auto"
        Path for the phase convolutions. 3x3 windows at stride 2 (2-D, dilation
        1, at least 8 channels and filters) take the transposed Winograd scheme
        under "auto" and "winograd"; "direct" keeps the phases.
    out : ndarray, optional
        Preallocated result.

    Returns
    -------
    ndarray
        ``(batch, *out_spatial, filters)`` (or channels first).

    Examples
    --------
    >>> import numpy as np, numconv
    >>> x = np.array([1.0, 2.0]).reshape(1, 2, 1)
    >>> numconv.conv_transpose(x, np.ones((3, 1, 1)), strides=2)[0, :, 0]
    array([1., 1., 3., 2., 2.])
    """
    fn = "conv_transpose"
    x, _ = normalize_array(fn, "x", x)
    kernel, _ = normalize_array(fn, "kernel", kernel)
    if bias is not None:
        bias, _ = normalize_array(fn, "bias", bias)
    rank = kernel.ndim - 2
    if rank not in (1, 2, 3):
        raise value_error(fn, "kernel", "must be 3-D, 4-D or 5-D: (*kernel_size, filters, in_channels)",
                          f"shape {shape_str(kernel.shape)}")
    if not isinstance(padding, str):
        raise type_error(fn, "padding", "must be \"valid\" or \"same\" (Keras's Conv*DTranspose takes no "
                         "explicit pads)", repr(padding), "For explicit pads p, conv_backprop_input(y, kernel, "
                         "input_shape, padding=p) computes the adjoint of conv with those pads (its kernel "
                         "in conv's layout, (*kernel_size, in_channels, filters)).")
    if padding.lower() not in ("valid", "same"):
        raise unknown_option(fn, "padding", padding, ("valid", "same"))
    padding = padding.lower()
    if not isinstance(data_format, str) or data_format.lower() not in DATA_FORMATS:
        raise unknown_option(fn, "data_format", data_format, DATA_FORMATS)
    data_format = data_format.lower()
    if x.ndim != rank + 2:
        layout = "(batch, *spatial, in_channels)" if data_format == "channels_last" else "(batch, in_channels, *spatial)"
        raise value_error(fn, "x", f"must be {rank + 2}-D for a {kernel.ndim}-D kernel ({layout})",
                          f"shape {shape_str(x.shape)}")
    filters, in_channels = kernel.shape[-2], kernel.shape[-1]
    channels = x.shape[-1] if data_format == "channels_last" else x.shape[1]
    spatial = x.shape[1:-1] if data_format == "channels_last" else x.shape[2:]
    if channels != in_channels:
        raise value_error(fn, "x", f"must have in_channels = {in_channels} channels (the last axis of kernel shape "
                          f"{shape_str(kernel.shape)}, Keras layout (*kernel_size, filters, in_channels))",
                          f"{channels} channels in shape {shape_str(x.shape)} (data_format=\"{data_format}\")")
    strides = normalize_tuple(fn, "strides", strides, rank)
    dilations = normalize_tuple(fn, "dilation_rate", dilation_rate, rank)
    ops = (None,) * rank if output_padding is None else normalize_tuple(fn, "output_padding", output_padding, rank,
                                                                        minimum=0)
    for axis, (op, s, d) in enumerate(zip(ops, strides, dilations)):
        if op is not None and op >= max(s, d):
            raise value_error(fn, "output_padding", f"must be smaller than the stride or the dilation on every "
                              f"axis (axis {axis}: stride {s}, dilation {d})", repr(output_padding))
    if 0 in kernel.shape:
        raise value_error(fn, "kernel", "must have no zero-length axis", f"shape {shape_str(kernel.shape)}")
    windows = [transpose_window(L, k, s, d, padding, op)
               for L, k, s, d, op in zip(spatial, kernel.shape[:-2], strides, dilations, ops)]
    louts = [lo for _, lo in windows]
    for axis, lo in enumerate(louts):
        if lo < 1:
            raise value_error(fn, "x", f"gives an empty output on spatial axis {axis}", f"output length {lo}",
                              "Use a larger input or padding=\"valid\".")
    if bias is not None and bias.shape != (filters,):
        raise value_error(fn, "bias", f"must have shape ({filters},), one value per filter",
                          f"shape {shape_str(bias.shape)}")
    dtype = np.result_type(x.dtype, kernel.dtype, *(() if bias is None else (bias.dtype,)))
    act = normalize_activation(fn, activation, dtype)
    method = normalize_method(fn, method, _dispatch.METHODS)
    lead = 3 - rank
    N = x.shape[0]
    out_shape = ((N,) + tuple(louts) + (filters,) if data_format == "channels_last"
                 else (N, filters) + tuple(louts))
    check_out(fn, out, out_shape, dtype)
    if N == 0:
        return np.empty(out_shape, dtype) if out is None else out
    # The forward conv whose adjoint this is maps `filters` channels to `in_channels`.
    spec = ConvSpec(fn=fn, rank=rank, batch=N, channels=filters, filters=in_channels, groups=1,
                    in_spatial=(1,) * lead + tuple(louts), kernel_spatial=(1,) * lead + kernel.shape[:-2],
                    out_spatial=(1,) * lead + tuple(spatial), strides=(1,) * lead + strides,
                    dilations=(1,) * lead + dilations, pads=((0, 0),) * 3, padding_mode="zeros",
                    data_format=data_format, dtype=dtype, activation=act, method=method)
    x5 = canonical_output(spec, x)  # x is the output side of the conv this is the adjoint of
    wt = swap_channels(canonical_kernel(spec, kernel), 1)
    alloc = _memory.empty if data_format == "channels_last" and out is None else _memory.scratch
    y5 = alloc((N,) + spec.in_spatial + (filters,), dtype)  # returned as it is only channels-last without out
    adjoint(spec, x5, wt, [0] * lead + [pb for pb, _ in windows], spec.in_spatial, y5, method)
    return transpose_epilogue(spec, y5, bias, out)


def transpose_epilogue(spec, y5, bias, out):
    """``conv_transpose``'s bias and activation on its canonical result ``y5`` (in
    place), delivered in the user's layout (into ``out`` where given); the whole
    op's and each of ``numconv.dask``'s blocks' (same formulas, same bits)."""
    act, filters = spec.activation, y5.shape[-1]
    if (bias is not None or (isinstance(act, int) and act)) and y5.size:
        b = np.zeros(1, spec.dtype) if bias is None else canonical_array(bias, spec.dtype, (filters,))
        with kernel_lock():
            bias_activation_kernel(y5.reshape(-1, filters), b, bias is not None,
                                   fused_code(act) if isinstance(act, int) else 0)
        if isinstance(act, int) and act in DEFERRED:
            apply_deferred(y5, act)
    result = user_layout(spec, y5, spec.in_spatial, filters, out)
    if callable(act):
        result = apply_callable(spec.fn, act, result, out)
    return result
