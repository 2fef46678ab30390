"""The benchmark case table and the peer registry: one source of truth.

``python -m numconv bench`` (``numconv._bench``) and the asv suite in
``benchmarks/`` (through ``benchmarks/common.py``) both read this module, so a
case means the same shapes, arguments, data and FLOP count everywhere.

* ``CASES``: named workloads from issue 3 (items 3 and 4). Append-only, as in
  NumPy's asv suite: never change an existing entry (asv results stay
  comparable over time); add a new name instead.
* ``inputs(name)`` and ``reference(name)``: seeded, ``lru_cache``d data and an
  independent float64 NumPy result (a loop over kernel taps written from the
  definition in API.md; it imports nothing from numconv's implementation).
* ``PEERS``: ``{"numconv", "torch", "scipy"}`` -> ``prepare(case, **options)``
  returning a ``Prepared`` zero-argument callable, or raising
  ``NotImplementedError`` when the peer is not installed or has no such op (asv
  counts that as a skip; the bench prints a dash).

Nothing here imports torch, scipy or matplotlib at import time.

torch notes: ``torch.nn.functional.conv{1,2,3}d`` under ``torch.no_grad()`` at
``threads`` (default 2) intra-op threads. Two memory formats are prepared:
``"nchw"`` (contiguous, torch's default) and ``"channels_last"``
(``torch.channels_last`` / ``channels_last_3d``; for 1-D, which has no
channels-last memory format, a ``permute`` view of the (N, L, C) array). Torch
runs its channels-last convolutions through oneDNN (mkldnn), which is usually its
faster CPU path; the bench reports the faster of the two ("torch's best layout").
Padding that ``F.conv*d`` cannot express (asymmetric pads from "same"/"causal",
non-zero padding modes) is applied with ``F.pad`` inside the timed call, as
``torch.nn.Conv2d(padding_mode=...)`` does.
"""
import dataclasses
import functools
import math
import zlib

import numpy as np

# ----------------------------------------------------------------------- cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One named workload.

    ``x_shape`` is always given channels-last ``(batch, *spatial, channels)``;
    ``inputs`` transposes it when ``kwargs`` asks for ``data_format="channels_first"``.
    ``kernel_shape`` is Keras's ``(*kernel_size, in_channels // groups, filters)``.
    ``kwargs`` is a tuple of ``(name, value)`` pairs for ``numconv.conv`` (frozen,
    hashable); ``conv_kwargs`` gives it as a dict.
    """

    name: str
    area: str  # benchmark file/class: "conv1d", "conv2d", "conv3d", "depthwise", "variants"
    x_shape: tuple
    kernel_shape: tuple
    kwargs: tuple = ()
    dtype: str = "float32"
    slow: bool = False  # skipped by asv when ASV_SKIP_SLOW=1
    note: str = ""
    #: "conv", or an issue-5 op: "separable", "transpose", "backprop_input",
    #: "backprop_kernel", "max_pool" (see ``OPS``)
    op: str = "conv"
    pointwise: int = 0  # separable: filters of the 1x1 stage

    @property
    def conv_kwargs(self):
        return dict(self.kwargs)

    @property
    def rank(self):
        return len(self.kernel_shape) - 2

    @property
    def data_format(self):
        return self.conv_kwargs.get("data_format", "channels_last")

    @property
    def groups(self):
        g = self.conv_kwargs.get("groups")
        return self.x_shape[-1] // self.kernel_shape[-2] if g is None else g

    @property
    def geometry(self):
        """``(pads, out_spatial)``: explicit (before, after) pads and output lengths."""
        return _geometry(self)

    @property
    def out_shape(self):
        """Output shape, channels-last (for ``transpose``: Keras's transposed length;
        for the gradients: the gradient's shape)."""
        if self.op == "transpose":
            kw = self.conv_kwargs
            s = _tuple(kw.get("strides", 1), self.rank)
            d = _tuple(kw.get("dilation_rate", 1), self.rank)
            same = kw.get("padding", "valid") == "same"
            out = [L * si if same else (L - 1) * si + max(di * (k - 1) + 1, si)
                   for L, k, si, di in zip(self.x_shape[1:-1], self.kernel_shape, s, d)]
            return (self.x_shape[0],) + tuple(out) + (self.kernel_shape[-2],)
        if self.op == "backprop_input":
            return self.x_shape
        if self.op == "backprop_kernel":
            return self.kernel_shape
        return (self.x_shape[0],) + self.geometry[1] + (self.pointwise or self.kernel_shape[-1],)

    @property
    def flops(self):
        """2 x multiply-accumulates of the direct computation (no padding waste);
        for ``max_pool`` one comparison per window element."""
        if self.op == "transpose":
            return 2 * math.prod(self.x_shape) * math.prod(self.kernel_shape[:-1])
        out = (self.x_shape[0],) + self.geometry[1] + (self.kernel_shape[-1],)  # the conv's output
        if self.op == "max_pool":
            return math.prod(out) * math.prod(self.kernel_shape[:-2])
        flops = 2 * math.prod(out) * math.prod(self.kernel_shape[:-1])
        if self.op == "separable":
            flops += 2 * math.prod(out) * self.pointwise
        return flops

    @property
    def min_bytes(self):
        """Compulsory memory traffic: read x and the kernel once, write the output once."""
        item = np.dtype(self.dtype).itemsize
        return item * (math.prod(self.x_shape) + math.prod(self.kernel_shape) + math.prod(self.out_shape))

    def describe(self):
        """Short human-readable shape summary, e.g. ``8x56x56x64 -> 64, 3x3 same``."""
        k = "x".join(map(str, self.kernel_shape[:-2]))
        kw = {key: v for key, v in self.kwargs if key not in ("padding",)}
        extra = " ".join(f"{key}={v}" for key, v in kw.items())
        pad = self.conv_kwargs.get("padding", "valid")
        pad = pad if isinstance(pad, str) else f"pad {pad}"
        if self.op == "transpose":
            return (f"transpose {'x'.join(map(str, self.x_shape))} -> {self.kernel_shape[-2]}, {k} {pad}"
                    f"{' ' + extra if extra else ''}")
        if self.op == "max_pool":
            return f"max_pool {'x'.join(map(str, self.x_shape))}, {k} {pad}{' ' + extra if extra else ''}"
        base = f"{'x'.join(map(str, self.x_shape))} -> {self.kernel_shape[-1]}, {k} {pad}{' ' + extra if extra else ''}"
        if self.op == "separable":
            return f"separable {base} -> 1x1 -> {self.pointwise}"
        return base if self.op == "conv" else f"{self.op} {base}"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def with_kwargs(self, **kwargs):
        """A copy with some ``numconv.conv`` keyword arguments changed."""
        merged = dict(self.kwargs)
        merged.update(kwargs)
        return self.replace(kwargs=tuple(merged.items()))

    def shrunk(self):
        """A tiny case with the same arguments, dtype and channels (for smoke tests
        and for counting compiled specialisations): batch 1, each spatial length cut
        to a few dilated kernel sizes."""
        pads, _ = self.geometry
        d = _tuple(self.conv_kwargs.get("dilation_rate", 1), self.rank)
        s = _tuple(self.conv_kwargs.get("strides", 1), self.rank)
        spatial = []
        for L, k, di, si, (b, a) in zip(self.x_shape[1:-1], self.kernel_shape[:-2], d, s, pads):
            eff = di * (k - 1) + 1
            spatial.append(min(L, max(2 * eff + 2 * si, 8, b + 1, a + 1)))
        return self.replace(name=self.name + "_small", x_shape=(1, *spatial, self.x_shape[-1]), slow=False)


def _c(name, area, x_shape, kernel_shape, dtype="float32", slow=False, note="", op="conv", pointwise=0, **kwargs):
    return Case(name, area, tuple(x_shape), tuple(kernel_shape), tuple(kwargs.items()), dtype, slow, note, op,
                pointwise)


#: Issue-5 ops a case can name; "conv" is numconv.conv. For ``transpose`` the kernel
#: is Keras's ``(*k, filters, in_channels)``; for ``max_pool`` it is ``(*pool, 1, C)``
#: (only its shape is used: the pool window); for ``separable`` it is the depthwise
#: kernel as a grouped-conv kernel ``(*k, 1, C)`` and ``pointwise`` the 1x1 filters.
OPS = ("conv", "separable", "transpose", "backprop_input", "backprop_kernel", "max_pool")


#: Append-only. Names are stable identifiers for asv results; keep them ASCII.
CASE_LIST = [
    # issue 3, item 3
    _c("resnet", "conv2d", (8, 56, 56, 64), (3, 3, 64, 64), padding="same"),
    _c("pointwise", "conv2d", (8, 28, 28, 256), (1, 1, 256, 256)),
    _c("stem", "conv2d", (1, 224, 224, 3), (7, 7, 3, 64), strides=2, padding=3),
    _c("dilated", "conv2d", (4, 64, 64, 32), (3, 3, 32, 32), padding="same", dilation_rate=2),
    _c("imdb", "conv1d", (32, 100, 128), (7, 128, 32)),
    _c("resnet_f64", "conv2d", (8, 56, 56, 64), (3, 3, 64, 64), dtype="float64", padding="same"),
    _c("imdb_f64", "conv1d", (32, 100, 128), (7, 128, 32), dtype="float64"),
    _c("stock", "conv1d", (1000, 50, 1), (5, 1, 16)),
    _c("wavenet", "conv1d", (16, 16000, 64), (2, 64, 64), slow=True, padding="causal", dilation_rate=8),
    _c("strided1d", "conv1d", (32, 4096, 64), (9, 64, 128), slow=True, strides=4, padding=4),
    _c("depthwise2d", "depthwise", (8, 56, 56, 128), (3, 3, 1, 128), padding="same", groups=128,
       note="memory-bound"),
    _c("depthwise1d", "depthwise", (16, 16000, 64), (9, 1, 64), slow=True, padding="same", groups=64,
       note="memory-bound"),
    _c("conv3d", "conv3d", (2, 16, 32, 32, 32), (3, 3, 3, 32, 32), padding="same"),
    # issue 3, item 4: padding / stride / dilation / groups keep a fast path
    _c("resnet_reflect", "variants", (8, 56, 56, 64), (3, 3, 64, 64), padding="same", padding_mode="reflect"),
    _c("resnet_s2d2", "variants", (8, 56, 56, 64), (3, 3, 64, 64), padding="same", strides=2, dilation_rate=2),
    _c("resnet_groups4", "variants", (8, 56, 56, 64), (3, 3, 16, 64), padding="same", groups=4),
    # issue 3, item 3: channels_first input costs at most 1.25x channels_last
    _c("resnet_cf", "variants", (8, 56, 56, 64), (3, 3, 64, 64), padding="same", data_format="channels_first"),
    # issue 5, item 6 (depthwise 8x56x56x128 3x3 is "depthwise2d" above)
    _c("separable2d", "ops", (8, 56, 56, 128), (3, 3, 1, 128), op="separable", pointwise=128, padding="same",
       groups=128),
    _c("transpose2d", "ops", (8, 28, 28, 64), (3, 3, 64, 64), op="transpose", strides=2, padding="same"),
    _c("backprop_input", "ops", (8, 56, 56, 64), (3, 3, 64, 64), op="backprop_input", padding="same"),
    _c("backprop_kernel", "ops", (8, 56, 56, 64), (3, 3, 64, 64), op="backprop_kernel", padding="same"),
    _c("maxpool2d", "ops", (8, 112, 112, 64), (3, 3, 1, 64), op="max_pool", strides=2, note="memory-bound"),
    # issue 4, item 5: large kernels, where the FFT path wins (torch has none)
    _c("fft2d", "fft", (4, 256, 256, 8), (25, 25, 8, 8), slow=True, padding="same"),
    _c("fft1d", "fft", (8, 65536, 4), (1025, 4, 4), slow=True, padding="same"),
    # few filters over many channels (the dot kernel, no issue target): a segmentation
    # head's 1 x 1 to two classes and an image decoder's 3 x 3 to three colours
    _c("head1x1", "conv2d", (8, 128, 128, 64), (1, 1, 64, 2)),
    _c("rgb3x3", "conv2d", (8, 128, 128, 64), (3, 3, 64, 3), padding="same"),
]

CASES = {c.name: c for c in CASE_LIST}
assert len(CASES) == len(CASE_LIST), "duplicate case name"


def select(patterns=None):
    """Cases chosen by ``patterns`` (a comma-separated string or a list), in table
    order; every case for ``None`` or an empty string.

    A pattern equal to a case name selects that case only; one with ``*``, ``?``
    or ``[`` is a glob; any other pattern selects every name containing it
    (``"resnet"`` is one case, ``"resnet*"`` six, ``"1d"`` all conv1d-like ones).
    A pattern that matches nothing raises ValueError listing the names.
    """
    return _choose(patterns, [CASES])[0]


def _choose(patterns, tables):
    """Per table (a name -> case dict), the cases ``patterns`` choose, in table
    order (every case for no patterns); a pattern matching no table raises."""
    if not patterns:
        return [list(t.values()) for t in tables]
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    chosen = set()
    for p in (p.strip() for p in patterns):
        if not p:
            continue
        hits = [n for t in tables for n in _match(p, t)]
        if not hits:
            raise ValueError(f"no benchmark case matches {p!r}; cases are: {', '.join(n for t in tables for n in t)}")
        chosen.update(hits)
    return [[c for n, c in t.items() if n in chosen] for t in tables]


def _match(pattern, names):
    """Names ``pattern`` selects: itself if it is one, a glob's matches, else every
    name containing it."""
    import fnmatch

    if pattern in names:
        return [pattern]
    if any(ch in pattern for ch in "*?["):
        return fnmatch.filter(names, pattern)
    return [n for n in names if pattern in n]


def get_case(case):
    """A ``Case`` from a name or a ``Case``."""
    return case if isinstance(case, Case) else CASES[case]


# ------------------------------------------------------------------- geometry
# Written from API.md, independently of numconv._spec, so the peers and the
# reference check numconv's padding arithmetic instead of borrowing it.

def _tuple(v, r):
    return (int(v),) * r if np.ndim(v) == 0 else tuple(int(i) for i in v)


def _explicit_pads(padding, r, spatial, k, s, d):
    if isinstance(padding, str):
        out = []
        for L, ki, si, di in zip(spatial, k, s, d):
            eff = di * (ki - 1) + 1
            if padding == "valid":
                out.append((0, 0))
            elif padding == "same":
                total = max((-(-L // si) - 1) * si + eff - L, 0)
                out.append((total // 2, total - total // 2))
            elif padding == "causal":
                out.append((eff - 1, 0))
            elif padding == "full":
                out.append((eff - 1, eff - 1))
            else:
                raise ValueError(f"unknown padding {padding!r}")
        return tuple(out)
    if np.ndim(padding) == 0:
        return ((int(padding), int(padding)),) * r
    padding = tuple(padding)
    if r == 1 and len(padding) == 2 and all(np.ndim(p) == 0 for p in padding):
        return ((int(padding[0]), int(padding[1])),)
    return tuple((int(p), int(p)) if np.ndim(p) == 0 else (int(p[0]), int(p[1])) for p in padding)


@functools.lru_cache(maxsize=None)
def _geometry(case):
    kw = case.conv_kwargs
    r = case.rank
    k = case.kernel_shape[:-2]
    s = _tuple(kw.get("strides", 1), r)
    d = _tuple(kw.get("dilation_rate", 1), r)
    spatial = case.x_shape[1:-1]
    pads = _explicit_pads(kw.get("padding", "valid"), r, spatial, k, s, d)
    out = tuple((L + b + a - di * (ki - 1) - 1) // si + 1
                for L, ki, si, di, (b, a) in zip(spatial, k, s, d, pads))
    return pads, out


# ----------------------------------------------------------------------- data

@functools.lru_cache(maxsize=2)
def _base_arrays(x_shape, kernel_shape):
    """float64 x ~ N(0, 1) and kernel ~ N(0, 1 / fan_in), seeded by the shapes, so
    resnet, resnet_f64 and resnet_cf see the same values."""
    seed = zlib.crc32(repr((x_shape, kernel_shape)).encode())
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(kernel_shape) / math.sqrt(math.prod(kernel_shape[:-1]))
    return x, w


@functools.lru_cache(maxsize=4)
def inputs(case):
    """``(x, kernel)`` for ``case`` (a name or a ``Case``) in its dtype and data_format.

    Cached and shared: callers must not modify them. (They are left writable on
    purpose: numconv copies read-only inputs, which would add a copy to timings.)
    """
    case = get_case(case)
    x, w = _base_arrays(case.x_shape, case.kernel_shape)
    x = x.astype(case.dtype)
    if case.data_format == "channels_first":
        x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    return x, w.astype(case.dtype)


@functools.lru_cache(maxsize=4)
def op_inputs(case):
    """The op's extra operand in the case's dtype: the 1x1 kernel (``separable``),
    the output gradient (``backprop_*``: shaped like the conv's output, in the
    case's data_format), else None."""
    case = get_case(case)
    seed = zlib.crc32(repr((case.name, case.x_shape)).encode())
    rng = np.random.default_rng(seed)
    if case.op == "separable":
        C = case.kernel_shape[-1]
        return (rng.standard_normal((1,) * case.rank + (C, case.pointwise)) / math.sqrt(C)).astype(case.dtype)
    if case.op.startswith("backprop"):
        conv_out = (case.x_shape[0],) + case.geometry[1] + (case.kernel_shape[-1],)
        g = rng.standard_normal(conv_out).astype(case.dtype)
        return np.ascontiguousarray(np.moveaxis(g, -1, 1)) if case.data_format == "channels_first" else g
    return None


@functools.lru_cache(maxsize=2)
def reference(case):
    """float64 channels-last result of ``case`` on the float64 base data.

    A loop over kernel taps (each tap one strided window times a small matrix),
    with the padding done by ``np.pad``; groups are looped over, and one-channel
    groups (depthwise) are a broadcast multiply. Activations and bias are not used
    by the case table.
    """
    case = get_case(case)
    kw = case.conv_kwargs
    unsupported = set(kw) - {"padding", "strides", "dilation_rate", "groups", "padding_mode", "data_format"}
    if unsupported:
        raise NotImplementedError(f"reference: {sorted(unsupported)} not supported")
    x, w = _base_arrays(case.x_shape, case.kernel_shape)
    if case.op == "separable":
        return _reference_conv(case, x, w) @ op_inputs(case).astype(np.float64).reshape(case.kernel_shape[-1], -1)
    if case.op == "max_pool":
        return _reference_max_pool(case, x)
    if case.op != "conv":
        raise NotImplementedError(f"reference: no table reference for op {case.op!r} (tests/test_grad.py and "
                                  "tests/test_transpose_depthwise.py check it against finite differences and Keras)")
    return _reference_conv(case, x, w)


def _reference_max_pool(case, x):
    """Max over each window (valid padding), as the element-wise max of strided views."""
    pool = case.kernel_shape[:-2]
    s = _tuple(case.conv_kwargs.get("strides", 1), case.rank)
    _, out_sp = case.geometry
    y = np.full((x.shape[0],) + out_sp + (x.shape[-1],), -np.inf)
    for tap in np.ndindex(*pool):
        idx = (slice(None),) + tuple(slice(t, t + si * (o - 1) + 1, si) for t, si, o in zip(tap, s, out_sp))
        y = np.maximum(y, x[idx])
    return y


_NP_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _reference_conv(case, x, w):
    r = case.rank
    kw = case.conv_kwargs
    pads, out_sp = case.geometry
    s = _tuple(kw.get("strides", 1), r)
    d = _tuple(kw.get("dilation_rate", 1), r)
    G = case.groups
    C = x.shape[-1]
    Cg, K = w.shape[-2], w.shape[-1]
    Kg = K // G
    xp = np.pad(x, ((0, 0),) + pads + ((0, 0),), mode=_NP_PAD_MODES[kw.get("padding_mode", "zeros")])
    xp = xp.reshape(xp.shape[:-1] + (G, C // G))
    wg = w.reshape(w.shape[:-2] + (Cg, G, Kg))
    y = np.zeros((x.shape[0],) + out_sp + (G, Kg))
    for tap in np.ndindex(*w.shape[:r]):
        idx = (slice(None),) + tuple(slice(t * di, t * di + si * (o - 1) + 1, si)
                                     for t, di, si, o in zip(tap, d, s, out_sp))
        win = xp[idx]  # (N, *out, G, Cg)
        wt = wg[tap]   # (Cg, G, Kg)
        if Cg == 1:
            y += win * wt[0][None]
        elif G == 1:
            y[..., 0, :] += win[..., 0, :] @ wt[:, 0, :]
        else:
            for g in range(G):
                y[..., g, :] += win[..., g, :] @ wt[:, g, :]
    return y.reshape(y.shape[:-2] + (K,))


def rel_error(y, ref):
    """``max |y - ref| / max |ref|`` in float64 (0 for an all-zero reference)."""
    y = np.asarray(y, dtype=np.float64)
    scale = float(np.max(np.abs(ref), initial=0.0))
    return float(np.max(np.abs(y - ref), initial=0.0)) / (scale or 1.0)


# ---------------------------------------------------------------------- peers

class Prepared:
    """A zero-argument callable running one case, and how to read its result.

    ``fn()`` runs the operation on prepared inputs (layout conversion and
    weight transposes already done); ``to_numpy(result)`` turns its result into a
    channels-last ndarray (for accuracy checks, outside any timing).
    """

    def __init__(self, fn, to_numpy=np.asarray, label=""):
        self.fn = fn
        self.to_numpy = to_numpy
        self.label = label

    def __call__(self):
        return self.fn()

    def result(self):
        """Run once and return the channels-last ndarray."""
        return self.to_numpy(self.fn())

    def __repr__(self):
        return f"Prepared({self.label})"


def _channels_last(case, y):
    y = np.asarray(y)
    layout_free = case.op == "backprop_kernel"  # a kernel gradient has Keras's kernel layout in both formats
    return np.moveaxis(y, 1, -1) if case.data_format == "channels_first" and not layout_free else y


def prepare_numconv(case, method="auto", data_format=None, threads=None):
    """``numconv.conv`` on the case's inputs.

    ``method``: "auto" or any key of ``numconv._dispatch.METHODS``.
    ``data_format``: override the case's layout ("channels_first" transposes the
    input outside the timed call). ``threads``: ``numconv.set_num_threads`` first.
    """
    import numconv
    from numconv._dispatch import METHODS

    case = get_case(case)
    if method != "auto" and method not in METHODS:
        raise NotImplementedError(f"numconv has no method {method!r} (methods: {', '.join(METHODS)})")
    if data_format is not None and data_format != case.data_format:
        case = case.with_kwargs(data_format=data_format)
    if threads is not None:
        numconv.set_num_threads(threads)
    x, w = inputs(case)
    kwargs = case.conv_kwargs
    kwargs["method"] = method
    extra = op_inputs(case)
    fn = _numconv_op(numconv, case, x, w, extra, kwargs)

    return Prepared(fn, functools.partial(_channels_last, case), f"numconv {case.name} method={method}")


def _numconv_op(numconv, case, x, w, extra, kwargs):
    """A zero-argument call of ``case.op`` with numconv's public functions."""
    op = case.op
    if op == "conv":
        return lambda: numconv.conv(x, w, **kwargs)
    if op == "separable":
        dk = w.reshape(w.shape[:-2] + (w.shape[-1], 1))  # (*k, 1, C) -> Keras (*k, C, 1)
        kw = {k: v for k, v in kwargs.items() if k != "groups"}
        return lambda: numconv.separable_conv(x, dk, extra, **kw)
    if op == "transpose":
        return lambda: numconv.conv_transpose(x, w, **kwargs)
    if op == "backprop_input":
        return lambda: numconv.conv_backprop_input(extra, w, x.shape, **kwargs)
    if op == "backprop_kernel":
        return lambda: numconv.conv_backprop_kernel(x, extra, w.shape, **kwargs)
    if op == "max_pool":
        pool = case.kernel_shape[:-2]
        fmt = kwargs.get("data_format", "channels_last")
        return lambda: numconv.max_pool(x, pool, kwargs.get("strides"), kwargs.get("padding", "valid"), fmt)
    raise NotImplementedError(f"unknown op {op!r}")


TORCH_LAYOUTS = ("nchw", "channels_last")
_TORCH_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _import_torch():
    try:
        import torch
    except ImportError as e:  # also sys.modules["torch"] = None
        raise NotImplementedError(f"torch is not installed ({e})") from None
    return torch


def prepare_torch(case, layout="nchw", threads=2):
    """``torch.nn.functional.conv{r}d`` on the case's inputs, in one memory format.

    ``layout``: "nchw" (contiguous) or "channels_last" (oneDNN's preferred format;
    for 1-D a permuted view of the channels-last data). Weights are transposed to
    torch's ``(K, Cin/g, *k)`` and converted to the same memory format.
    """
    torch = _import_torch()
    import torch.nn.functional as F

    case = get_case(case)
    if layout not in TORCH_LAYOUTS:
        raise ValueError(f"layout must be one of {TORCH_LAYOUTS}; got {layout!r}")
    kw = case.conv_kwargs
    unsupported = set(kw) - {"padding", "strides", "dilation_rate", "groups", "padding_mode", "data_format"}
    if unsupported:
        raise NotImplementedError(f"torch peer: {sorted(unsupported)} not mapped")
    if threads is not None:
        torch.set_num_threads(threads)
    r = case.rank
    x, w = inputs(case)
    x_cl = _channels_last(case, x)  # view, channels-last
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[r]
    pads, _ = case.geometry
    s = _tuple(kw.get("strides", 1), r)
    d = _tuple(kw.get("dilation_rate", 1), r)
    mode = kw.get("padding_mode", "zeros")
    symmetric = all(b == a for b, a in pads)
    if mode == "zeros" and symmetric:
        conv_pad, pre_pad = tuple(b for b, _ in pads), None
    else:
        conv_pad = 0
        pre_pad = tuple(p for pair in reversed(pads) for p in pair)  # F.pad: last axis first
    wt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1))))
    xt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_cl, -1, 1)))  # contiguous NC*
    if layout == "channels_last":
        if r == 1:
            xt = torch.from_numpy(np.ascontiguousarray(x_cl)).permute(0, 2, 1)
        else:
            fmt = torch.channels_last if r == 2 else torch.channels_last_3d
            xt = xt.contiguous(memory_format=fmt)
            wt = wt.contiguous(memory_format=fmt)
    groups = case.groups
    pad_mode = _TORCH_PAD_MODES[mode]

    def fn():
        with torch.no_grad():
            xi = xt if pre_pad is None else F.pad(xt, pre_pad, mode=pad_mode)
            return conv(xi, wt, None, s, conv_pad, d, groups)

    if case.op != "conv":
        fn = _torch_op(torch, case, xt, wt, layout, s, d, pads, pre_pad, conv_pad)
        if case.op.startswith("backprop"):
            return Prepared(fn, lambda y: np.asarray(y), f"torch {case.name} {layout}")

    def to_numpy(y):
        return np.moveaxis(y.numpy(), 1, -1)

    return Prepared(fn, to_numpy, f"torch {case.name} {layout}")


def _torch_op(torch, case, xt, wt, layout, s, d, pads, pre_pad, conv_pad):
    """torch's counterpart of an issue-5 op (``torch.nn.grad`` for the gradients: the
    same ``convolution_backward`` autograd runs)."""
    import torch.nn.functional as F

    r = case.rank
    op = case.op
    fmt = None if layout != "channels_last" or r == 1 else (torch.channels_last if r == 2 else torch.channels_last_3d)
    if op == "max_pool":
        pool = F.max_pool1d if r == 1 else F.max_pool2d if r == 2 else F.max_pool3d
        if case.conv_kwargs.get("padding", "valid") != "valid":
            raise NotImplementedError("torch peer: max_pool with padding='same' not mapped")
        k = case.kernel_shape[:-2]
        return lambda: pool(xt, k, s)
    if pre_pad is not None and op != "transpose":
        raise NotImplementedError(f"torch peer: asymmetric / non-zero padding not mapped for op {op!r}")
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[r]
    if op == "separable":
        pw = np.moveaxis(op_inputs(case), (-1, -2), (0, 1))
        pwt = torch.from_numpy(np.ascontiguousarray(pw))
        if fmt is not None:
            pwt = pwt.contiguous(memory_format=fmt)
        G = case.groups

        def fn():
            with torch.no_grad():
                return conv(conv(xt, wt, None, s, conv_pad, d, G), pwt)
        return fn
    if op == "transpose":
        tconv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[r]
        w = inputs(case)[1]  # Keras (*k, filters, in) -> torch (in, filters, *k)
        wtt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(w, (-1, -2), (0, 1))))
        if fmt is not None:
            wtt = wtt.contiguous(memory_format=fmt)
        # Keras (TF / JAX backends) crops the full transposed output at pb = (ke - 1) - left;
        # torch's padding= crops symmetrically, which Keras itself warns differs for
        # "same" with a stride (its torch backend): take torch's full output and crop.
        from numconv._adjoint import transpose_window

        padding = case.conv_kwargs.get("padding", "valid")
        crop = [slice(None), slice(None)]
        for L, k, si, di in zip(case.x_shape[1:-1], case.kernel_shape[:-2], s, d):
            pb, lout = transpose_window(L, k, si, di, padding, None)
            crop.append(slice(pb, pb + lout))
        crop = tuple(crop)
        top = tuple(max(0, sl.stop - ((L - 1) * si + di * (k - 1) + 1))
                    for sl, L, k, si, di in zip(crop[2:], case.x_shape[1:-1], case.kernel_shape[:-2], s, d))

        def fn():
            with torch.no_grad():
                return tconv(xt, wtt, None, s, 0, top, 1, d)[crop]
        return fn
    g = op_inputs(case)
    gt = torch.from_numpy(np.ascontiguousarray(np.moveaxis(g, -1, 1)))
    if fmt is not None:
        gt = gt.contiguous(memory_format=fmt)
    elif r == 1 and layout == "channels_last":
        gt = torch.from_numpy(np.ascontiguousarray(g)).permute(0, 2, 1)
    grad = {1: (torch.nn.grad.conv1d_input, torch.nn.grad.conv1d_weight),
            2: (torch.nn.grad.conv2d_input, torch.nn.grad.conv2d_weight),
            3: (torch.nn.grad.conv3d_input, torch.nn.grad.conv3d_weight)}[r]
    G = case.groups
    if op == "backprop_input":
        shape = tuple(xt.shape)
        return lambda: np.moveaxis(grad[0](shape, wt, gt, s, conv_pad, d, G).numpy(), 1, -1)
    shape = tuple(wt.shape)
    return lambda: np.moveaxis(grad[1](xt, shape, gt, s, conv_pad, d, G).numpy(), (0, 1), (-1, -2))


def prepare_scipy(case, threads=None):
    """``scipy.signal.fftconvolve`` over the spatial axes, for cases with one
    input channel per group (depthwise, or a single input channel): SciPy has no
    channel-contracting convolution, so other cases raise NotImplementedError.

    Cross-correlation is convolution with the flipped kernel; dilation inserts
    zeros into the kernel, strides subsample the output, and padding is an
    ``np.pad`` in the timed call.
    """
    if get_case(case).op != "conv":
        raise NotImplementedError(f"scipy has no {get_case(case).op}")
    try:
        import scipy.signal
    except ImportError as e:
        raise NotImplementedError(f"scipy is not installed ({e})") from None
    case = get_case(case)
    kw = case.conv_kwargs
    r = case.rank
    G, Cg, K = case.groups, case.kernel_shape[-2], case.kernel_shape[-1]
    if Cg != 1:
        raise NotImplementedError("scipy.signal has no channel-contracting convolution "
                                  f"({case.name}: {Cg} input channels per group)")
    x, w = inputs(case)
    x = _channels_last(case, x)
    pads, _ = case.geometry
    s = _tuple(kw.get("strides", 1), r)
    d = _tuple(kw.get("dilation_rate", 1), r)
    np_mode = _NP_PAD_MODES[kw.get("padding_mode", "zeros")]
    # kernel (*k, 1, K) -> flipped, dilated (1, *k_dil, K)
    k = w.shape[:r]
    wd = np.zeros(tuple(di * (ki - 1) + 1 for ki, di in zip(k, d)) + (K,), w.dtype)
    wd[tuple(slice(None, None, di) for di in d)] = w[..., 0, :]
    wf = np.ascontiguousarray(wd[(slice(None, None, -1),) * r])[None]
    m = K // G
    chan = None if x.shape[-1] == 1 or m == 1 else np.arange(K) // m
    axes = tuple(range(1, r + 1))
    stride_idx = (slice(None),) + tuple(slice(None, None, si) for si in s)
    workers = threads

    def fn():
        xp = np.pad(x, ((0, 0),) + pads + ((0, 0),), mode=np_mode) if any(any(p) for p in pads) else x
        if chan is not None:
            xp = xp[..., chan]
        y = scipy.signal.fftconvolve(xp, wf, mode="valid", axes=axes)
        return y[stride_idx] if any(si > 1 for si in s) else y

    if workers is not None:
        import scipy.fft

        inner = fn

        def fn():
            with scipy.fft.set_workers(workers):
                return inner()

    return Prepared(fn, np.asarray, f"scipy {case.name}")


PEERS = {"numconv": prepare_numconv, "torch": prepare_torch, "scipy": prepare_scipy}


# ------------------------------------------------------------ signal cases
# Issue 4, item 5: ``numconv.signal.convolve`` against ``scipy.signal`` on the same
# arguments. SciPy runs as users call it (its FFTs single-threaded, SciPy's
# default); numconv at ``threads``.

@dataclasses.dataclass(frozen=True)
class SignalCase:
    """One ``convolve(in1, in2, mode, axes=axes)`` workload; ``peer`` names the
    ``scipy.signal`` function it is compared with. Append-only, as ``CASE_LIST``."""

    name: str
    in1: tuple
    in2: tuple
    dtype: str
    peer: str  # "fftconvolve" or "oaconvolve"
    mode: str = "full"
    axes: object = None

    @property
    def flops(self):
        """2 x the direct computation's multiply-adds for the full result (every
        element of ``in1`` meets every element of ``in2``; ``in2``'s broadcast axes
        have length 1): GFLOP/s of a transform path is the direct-equivalent rate."""
        return 2 * math.prod(self.in1) * math.prod(self.in2)

    def describe(self):
        axes = "" if self.axes is None else f", axes={self.axes}"
        return (f"convolve {'x'.join(map(str, self.in1))} * {'x'.join(map(str, self.in2))}, "
                f"mode={self.mode}{axes}  vs scipy.signal.{self.peer}")


SIGNAL_CASE_LIST = [
    SignalCase("image31", (1024, 1024), (31, 31), "float64", "fftconvolve", "same"),
    SignalCase("samples1025", (1 << 20,), (1025,), "float64", "oaconvolve", "same"),
    SignalCase("stack257", (64, 65536), (1, 257), "float32", "oaconvolve", "full", 1),
]
SIGNAL_CASES = {c.name: c for c in SIGNAL_CASE_LIST}
assert not set(SIGNAL_CASES) & set(CASES), "a signal case shares a conv case's name"


def select_all(patterns=None):
    """``(cases, signal_cases)`` chosen by ``patterns`` from both tables (as
    ``select``: exact names, globs, substrings; a pattern matching neither table
    raises ValueError)."""
    return tuple(_choose(patterns, [CASES, SIGNAL_CASES]))


@functools.lru_cache(maxsize=2)
def signal_inputs(name):
    """Seeded standard-normal ``(in1, in2)`` in the case's dtype (shared: do not modify)."""
    case = SIGNAL_CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return rng.standard_normal(case.in1).astype(case.dtype), rng.standard_normal(case.in2).astype(case.dtype)


@functools.lru_cache(maxsize=1)
def signal_reference(name):
    """The float64 result by ``scipy.signal.fftconvolve`` on the float64 inputs
    (raises NotImplementedError without SciPy)."""
    try:
        import scipy.signal
    except ImportError as e:
        raise NotImplementedError(f"scipy is not installed ({e})") from None
    case = SIGNAL_CASES[name]
    a, b = (v.astype(np.float64) for v in signal_inputs(name))
    return scipy.signal.fftconvolve(a, b, mode=case.mode, axes=case.axes)


def prepare_signal(name, impl, threads=None):
    """``numconv.signal.convolve`` (``impl="numconv"``, at ``threads``) or the
    case's ``scipy.signal`` function (``impl="scipy"``) on the case's inputs, as a
    ``Prepared``; NotImplementedError for a peer that is not installed."""
    case = SIGNAL_CASES[name]
    a, b = signal_inputs(name)
    kwargs = {"mode": case.mode} if case.axes is None else {"mode": case.mode, "axes": case.axes}
    if impl == "numconv":
        import numconv
        from numconv import signal

        if threads is not None:
            numconv.set_num_threads(threads)
        return Prepared(lambda: signal.convolve(a, b, **kwargs), np.asarray, f"numconv {name}")
    if impl == "scipy":
        try:
            import scipy.signal
        except ImportError as e:
            raise NotImplementedError(f"scipy is not installed ({e})") from None
        fn = getattr(scipy.signal, case.peer)
        return Prepared(lambda: fn(a, b, **kwargs), np.asarray, f"scipy.signal.{case.peer} {name}")
    raise NotImplementedError(f"no {impl!r} peer for numconv.signal cases")


# --------------------------------------------------------------------------- dispatcher grid

def dispatch_grid(n=240, seed=0, max_direct_macs=1.5e8):
    """A seeded grid of ``n`` conv shapes for judging ``method="auto"``: ranks 1-3,
    1-32 channels and filters, batch 1-4, kernels from 1 to well past the
    direct/FFT crossover, "same" or "valid" padding, float32 and float64. Draws
    whose direct multiply-adds exceed ``max_direct_macs`` are redrawn, so every
    shape times in milliseconds. Returns ``(x_shape, kernel_shape, kwargs, dtype)``
    tuples, channels last. Append-only: change ``seed``/``n`` only with the
    README's dispatcher figure.
    """
    rng = np.random.default_rng(seed)
    spatial = {1: (256, 32768), 2: (16, 384), 3: (8, 40)}
    kmax = {1: 1025, 2: 41, 3: 13}
    grid = []
    while len(grid) < n:
        rank = int(rng.choice([1, 1, 2, 2, 2, 3]))
        lo, hi = spatial[rank]
        size = int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        k = int(np.exp(rng.uniform(0, np.log(kmax[rank]))))
        if k > size:
            continue
        c = int(rng.choice([1, 1, 2, 4, 8, 16, 32]))
        f = int(rng.choice([1, 2, 4, 8, 16, 32]))
        batch = int(rng.choice([1, 2, 4]))
        padding = str(rng.choice(["same", "valid"]))
        out = size if padding == "same" else size - k + 1
        if batch * out ** rank * f * c * k ** rank > max_direct_macs:
            continue
        dtype = str(rng.choice(["float32", "float64"]))
        grid.append(((batch,) + (size,) * rank + (c,), (k,) * rank + (c, f), {"padding": padding}, dtype))
    return grid


def time_methods(x_shape, kernel_shape, kwargs, dtype, repeat=5, seed=0, kept=False):
    """{method: best-of-``repeat`` seconds} for every conv method with a path of its
    own for these shapes (the methods ``choose_conv_method(measure=True)`` times,
    whose warm-up and timed call are the first sample), plus the method ``auto``
    chose, on seeded data of the given shapes. The later samples run in rounds
    (one call of each method per round), so a burst of load on this shared
    machine slows every method alike instead of one method's samples. Every call
    transforms its kernel (no spectrum kept between calls, ``_paths/fft.py``): the
    cost ``auto``'s model counts, and what a first call with new weights pays.
    With ``kept``, spectra are kept as in normal use (a layer called again with the
    same weights), the first sample only warms them, and ``auto`` chooses as it
    does then (``_dispatch``'s lanes terms)."""
    import contextlib
    import time

    from numconv import choose_conv_method, conv
    from numconv._paths import fft

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(kernel_shape).astype(dtype)
    with contextlib.nullcontext() if kept else fft.spectra_not_kept():
        times = choose_conv_method(x, w, measure=True, **kwargs)[1]
        if kept:
            times = dict.fromkeys(times, math.inf)
        for _ in range(repeat - 1):
            for method in times:
                t0 = time.perf_counter()
                conv(x, w, method=method, **kwargs)
                times[method] = min(times[method], time.perf_counter() - t0)
        return times, choose_conv_method(x, w, **kwargs)


def lanes_grid(n=80, seed=0, max_direct_macs=6e8):
    """A seeded grid of ``n`` layers that ``_paths/fft.run_lanes`` computes (float32,
    2-D, at least ``LANES_MIN_CHANNELS`` channels, the spectrum kept): for fitting
    and judging ``auto``'s lanes terms on layers called again with the same
    weights. Batch 1-8, 32-256 pixels a side, 4-32 channels, 1-32 filters, kernels
    3-21, "same" or "valid"; as ``dispatch_grid``, draws past ``max_direct_macs``
    are redrawn. Append-only."""
    from numconv import _dispatch
    from numconv._paths import fft
    from numconv._spec import spec_from_shapes

    rng = np.random.default_rng(seed)
    grid = []
    while len(grid) < n:
        batch = int(rng.choice([1, 2, 4, 8]))
        h = int(np.exp(rng.uniform(np.log(32), np.log(256))))
        wd = h if rng.random() < 0.6 else int(np.exp(rng.uniform(np.log(32), np.log(256))))
        k = int(rng.choice([3, 5, 7, 9, 11, 13, 15, 21]))
        c = int(rng.choice([4, 8, 16, 32]))
        f = int(rng.choice([1, 2, 4, 8, 16, 32]))
        padding = str(rng.choice(["same", "valid"]))
        if k > min(h, wd) or batch * h * wd * c * f * k * k > max_direct_macs:
            continue
        xs, ws = (batch, h, wd, c), (k, k, c, f)
        spec = spec_from_shapes("lanes_grid", xs, ws, None, np.dtype(np.float32), 1, padding, 1, None,
                                "channels_last", "zeros", None, "auto", _dispatch.METHODS)
        if fft.lanes_apply(spec):
            grid.append((xs, ws, {"padding": padding}, "float32"))
    return grid
