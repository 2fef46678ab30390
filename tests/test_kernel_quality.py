"""Guards for properties that fail silently: float32 accuracy on long reductions
and the vector code the main kernel compiles to."""
import re

import numba
import numpy as np
import pytest

import numconv
from numconv import _config, _memory
from numconv._kernels import winograd as wk
from numconv._kernels.conv import conv_direct_kernel
from numconv._kernels.tile import VARIANTS, variant_lanes, variant_tag
from numconv._paths.direct import pack_weights
from reference import ref_conv


def _long_reduction_case():
    rng = np.random.default_rng(7)
    # C * kh * kw = 512 * 9 = 4608 terms; positive data is the worst case for
    # rounding (no cancellation, the running sum only grows).
    x = rng.random((1, 10, 10, 512)).astype(np.float32)
    w = rng.random((3, 3, 512, 16)).astype(np.float32)
    return x, w


def _rel_err(got, ref):
    return np.abs(got - ref).max() / np.abs(ref).max()


def test_float32_long_reduction_error_stays_small():
    x, w = _long_reduction_case()
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), padding="same")
    err = _rel_err(numconv.conv2d(x, w, padding="same", method="direct"), ref)  # (auto: Winograd, 3.0e-7)
    # One float32 chain of 4608 terms gives ~4e-6 here; float32 partial sums of
    # 64 terms 4.1e-7 (torch 3.3e-7); with those widened to double every 512
    # terms (the long-reduction kernel), or every 64 (the tile kernel), ~1e-7.
    assert err < 2e-7, err


def test_float32_long_reduction_error_at_most_twice_torchs():
    torch = pytest.importorskip("torch")
    x, w = _long_reduction_case()
    ref = ref_conv(x.astype(np.float64), w.astype(np.float64), padding="same")
    err = _rel_err(numconv.conv2d(x, w, padding="same"), ref)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    errs = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        with torch.no_grad():
            y = torch.nn.functional.conv2d(xt.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt),
                                           padding=1)
        errs.append(_rel_err(y.numpy().transpose(0, 2, 3, 1), ref))
    assert err <= 2 * min(errs), (err, errs)


def _has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512f" in f.read()
    except OSError:
        return False


def _uncached_twin(kernel):
    """``kernel`` compiled with the shipped options but no cache: cached code cannot
    be inspected, and the cache holds the code a fresh compile runs
    (``test_cached_kernel_code_is_the_code_a_fresh_compile_runs``)."""
    return numba.njit(**{k: v for k, v in _config.PARALLEL.items() if k != "cache"})(kernel.py_func)


def _kernel_asm(kernel, *args):
    """The assembly of ``kernel`` for ``args``, after calling it on them: its own
    code where this process compiled it (a cold cache, as on CI, where another
    test's call often already did: no second compile), else an uncached twin's
    (code loaded from the cache cannot be inspected)."""
    kernel(*args)
    sig = tuple(kernel.typeof_pyval(a) for a in args)
    if sig in kernel.overloads and not kernel.stats.cache_hits.get(sig):
        return kernel.inspect_asm(sig)
    twin = _uncached_twin(kernel)
    twin(*args)
    return twin.inspect_asm(twin.signatures[0])


def _hot_block(asm, weight):
    """The basic block of ``asm`` with the largest ``weight(block)``: blocks end
    at labels (and ``# %bb`` comments) and after jumps. (A loop's exit may fall
    through into the code after it, e.g. the tile's stores: LLVM lays blocks out
    so on Intel's ``emeraldrapids``, where splitting at labels alone joined the
    two, and the Winograd tests saw the stores as accumulators stored back.)"""
    return max(re.split(r"\n(?=\S)|\n\tj\w+\t[^\n]*", asm), key=weight)


def _assert_winograd_code(asm, fma, suffix, fmas):
    """A Winograd kernel's code ``asm``: no gathers or scatters; in the contraction's
    hot block at least ``fmas`` 512-bit FMAs and no zmm stored back (the register
    tile stays in registers); the transforms' 512-bit adds (2 x 2 x 12 at least)."""
    assert "gather" not in asm and "scatter" not in asm
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    assert len(re.findall(fma + r"\s+[^\n]*%zmm", hot)) >= fmas, hot
    assert not re.findall(r"vmov\w+\s+%zmm\d+, [^\n]*\(", hot)
    assert len(re.findall(r"v(add|sub)" + suffix + r"\s+[^\n]*%zmm", asm)) >= 24


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("variant", sorted(v for v in VARIANTS if VARIANTS[v][1] >= 64))  # (8 x 32: term kernels)
@pytest.mark.parametrize("dtype, fma", [(np.float32, "vfmadd231ps"), (np.float64, "vfmadd231pd")])
def test_direct_kernel_hot_loop_is_zmm_fmas_without_gathers(dtype, fma, variant):
    """A regression here (no 512-bit FMAs, accumulators spilled, or gathers)
    silently costs 3-100x."""
    lanes = variant_lanes(variant, dtype)
    x = np.ones((1, 1, 6, 40, 64), dtype)
    w = pack_weights(np.ones((1, 3, 3, 64, lanes), dtype), 1, lanes)
    asm = _kernel_asm(conv_direct_kernel, x, w, np.zeros(1, dtype), False, np.empty((1, 1, 4, 38, lanes), dtype),
                      (1, 4, 38, 1, 1, 1, 0, 0, 0), (1, 1, 1), (1, 1, 1), (0, 0, 0), 0, 40, 0, variant_tag(variant))
    assert "gather" not in asm
    # The hottest basic block: FMAs with memory operands for the weights and
    # nothing stored back (the accumulator tile stays in registers).
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    assert len(re.findall(fma + r"\s+[^\n]*%zmm", hot)) >= 8, hot
    stores = re.findall(r"vmov\w+\s+%zmm\d+, [^\n]*\(", hot)
    assert not stores, stores
    # Input loads by plain offsets (tile.at): Numba's negative-index wraparound
    # on arr[i] shows as a sign shift per load (sarq $63), as many integer
    # instructions as FMAs in the 16-lane variant's one-FMA-per-load rows.
    assert "sarq\t$63" not in hot, hot


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("dtype, fma, suffix, scheme", [(np.float32, "vfmadd231ps", "ps", "forward"),
                                                       (np.float64, "vfmadd231pd", "pd", "forward"),
                                                       (np.float32, "vfmadd231ps", "ps", "transposed")])
def test_winograd_kernel_is_zmm_fmas_and_vector_transforms(dtype, fma, suffix, scheme):
    """The contraction's hot block is register-tile FMAs with nothing stored back,
    and the transforms are 512-bit adds, never gathers: for F(2x2, 3x3) and for
    the stride-2 transposed scheme (float32 only: one more compile each)."""
    x5 = np.ones((1, 1, 8, 8, 64), dtype)
    lanes = variant_lanes(1, dtype)
    w5 = np.ones((1, 3, 3, 64, lanes), dtype)
    if scheme == "forward":
        up, out, tag = wk.transform_weights(w5, 1, lanes, dtype), np.empty((1, 1, 8, 8, lanes), dtype), wk.FORWARD
    else:
        up = wk.transform_weights(w5, 1, lanes, dtype, wk.TRANSPOSED)
        out, tag = np.empty((1, 1, 16, 16, lanes), dtype), wk.TRANSPOSED
    asm = _kernel_asm(wk.winograd_kernel, x5, up, np.zeros(1, dtype), False, out, (1, 1, 1), (1, 1, 1), (0, 1, 1), 0, 4,
                      1, 0, variant_tag(1), tag)
    _assert_winograd_code(asm, fma, suffix, 8)


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
def test_winograd_channels_first_kernel_is_zmm_fmas_and_vector_transforms():
    """The channels_first Winograd kernel: the same contraction and transforms,
    and its staging and delivery move blocks through shuffles, never gathers or
    scatters (float32, the path's bench case)."""
    x = np.ones((1, 64, 8, 8), np.float32)
    lanes = variant_lanes(1, np.float32)
    up = wk.transform_weights(np.ones((1, 3, 3, 64, lanes), np.float32), 1, lanes, np.float32)
    out = np.empty((1, lanes, 8, 8), np.float32)
    asm = _kernel_asm(wk.winograd_cf_kernel, x, up, np.zeros(1, np.float32), False, out, (1, 1), (1, 1), 0, (1, 4),
                      1, 0, variant_tag(1))
    _assert_winograd_code(asm, "vfmadd231ps", "ps", 8)
    assert len(re.findall(r"vpermt2\w+|vshuf\w+|vunpck\w+", asm)) >= 32  # transpose_block's 4 stages of 8 pairs


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("dtype, fma, suffix", [(np.float32, "vfmadd231ps", "ps"), (np.float64, "vfmadd231pd", "pd")])
def test_winograd_kernel_gradient_is_zmm_fmas_and_vector_transforms(dtype, fma, suffix):
    """The kernel gradient's contraction: register-tile FMAs, nothing stored back
    in its hot block; its transforms 512-bit adds; no gathers or scatters anywhere
    (a plain element loop clearing its float64 sums had become scatters)."""
    x5 = np.ones((1, 1, 8, 8, 64), dtype)
    g5 = np.ones((1, 1, 8, 8, 64), dtype)
    part = np.zeros((2, 1, 16, 1, 64, 64))
    asm = _kernel_asm(wk.winograd_wgrad_kernel, x5, g5, part, (1, 1, 1), (1, 1), (0, 1, 1), (64, 64), 4, variant_tag(1))
    _assert_winograd_code(asm, fma, suffix, 16)


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_layout_kernel_moves_zmm_rows(dtype):
    """The channels_first <-> channels_last kernel transposes 64-byte blocks in
    registers: zmm loads, stores and permutes, no gathers or scatters (its
    scalar loop nest and LLVM's gather version ran at ~4 cycles per element);
    and so does each width of the narrow strips (2 ... L - 1 rows), one block
    of zmm stores and shuffles per width."""
    from numconv._kernels.layout import transpose_kernel

    asm = _kernel_asm(transpose_kernel, np.ones((1, 32, 64), dtype), np.empty((1, 64, 32), dtype))
    # Blocks that shuffle zmm registers and store zmm rows to memory (not stack
    # spills; the widest strips spill); LLVM may vectorise the ragged-edge loop
    # with gathers, which is fine for those few elements, but no shuffling block
    # may gather or scatter.
    shuffle = r"(vperm|vunpck|vshuf|valign|vinsert|vextract|vpblend|vblend)\w*\s+[^\n]*%zmm"
    store = r"vmov\w+\s+%zmm\d+, [^\n]*\((?!%rsp)"
    rows = 512 // (8 * np.dtype(dtype).itemsize)
    moving = [blk for blk in re.split(r"\n\.?[\w$.]+:", asm)
              if re.search(shuffle, blk) and len(re.findall(store, blk)) >= 2]
    assert all("gather" not in blk and "scatter" not in blk for blk in moving)
    # the whole-block transpose: one store per row, at least as many shuffles
    assert any(len(re.findall(store, blk)) >= rows and len(re.findall(shuffle, blk)) >= rows for blk in moving)
    # the narrow strips: a block of stores after shuffles for each width 2 ... L - 1,
    # each way (LLVM may merge a few)
    assert len(moving) >= 2 * (rows - 2), len(moving)


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("dtype, fma", [(np.float32, "vfmadd231ps"), (np.float64, "vfmadd231pd")])
def test_narrow_kernel_is_zmm_fmas_on_pixel_runs(dtype, fma):
    """The few-filter kernel's hot block: 512-bit FMAs on contiguous input runs
    (memory operands or plain loads), no gathers, nothing stored back; and each
    task prefetches a later task's input into L2 (its channels' streams are
    more than the hardware prefetcher follows: module docstring)."""
    from numconv._kernels.narrow import narrow_kernel
    from numconv._paths.direct import NARROW_VARIANT

    xp = np.ones(2 * 10 * 80 + 64, dtype)
    asm = _kernel_asm(narrow_kernel, xp, (2, 1, 1, 10, 80), np.ones((1, 3, 3, 2, 1), dtype), np.zeros(1, dtype), False,
                      np.empty((1, 1, 8, 78, 1), dtype), (1, 1, 1), (1, 1, 1), False, 4, 0, variant_tag(NARROW_VARIANT))
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    assert "gather" not in hot
    assert len(re.findall(fma + r"\s+[^\n]*%zmm", hot)) >= 4, hot
    assert not re.findall(r"vmov\w+\s+%zmm\d+, [^\n]*\(", hot)
    assert "prefetcht1" in asm


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("variant, dtype, fma", [(v, np.float32, "vfmadd231ps") for v in sorted(VARIANTS)] + [
    (v, np.float64, "vfmadd231pd") for v in sorted(VARIANTS) if VARIANTS[v][1] >= 64])  # (8 x 32: float32 only)
@pytest.mark.parametrize("name", ["short_kernel", "long_kernel"])
def test_term_kernels_are_zmm_fmas_in_registers(name, dtype, fma, variant):
    """The term-loop kernels' hot block (the term loop over every tile row): a
    512-bit FMA into each zmm of the tile (256-bit into each ymm of the 8 x 32
    tile), no gathers, no accumulator stored back (the long kernel's partial-sum
    tiles live beside it, not in its place). The long kernel prefetches each
    tile's successor's input rows into L2 (``prefetcht1``: module docstring)."""
    from numconv._kernels import short

    lanes = variant_lanes(variant, dtype)
    rows, row_bytes = VARIANTS[variant]
    out = np.empty((2, 1, 1, 36, lanes), dtype)
    if name == "short_kernel":
        cg, grid, extra = 3, (), (40, 2)
    else:  # 100 channels x 5 taps: partial sums every 64 terms, widened at 512
        cg, grid, extra = 100, ((1, 1, 36, 1, 1, 1, 0, 0, 0),), ((0, 0, 2), 0, 40, None, 2)
    x = (np.ones(2 * 40 * cg, dtype), (2, cg, 1, 1, 40), (40 * cg, 1, 40 * cg, 40 * cg, cg))
    asm = _kernel_asm(getattr(short, name), *x, np.ones(5 * cg * lanes, dtype), (5 * cg * lanes, lanes), (1, 1, 1, 5),
                      np.zeros(1, dtype), False, out, *grid, (1, 1, 1), (1, 1, 1), *extra, None, variant_tag(variant))
    assert "gather" not in asm and "scatter" not in asm
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    reg = "zmm" if row_bytes >= 64 else "ymm"
    sums = set(re.findall(fma + r"\s+[^\n]*, (%" + reg + r"\d+)\n", hot + "\n"))  # the FMAs' destinations
    assert len(sums) >= rows * row_bytes // (64 if reg == "zmm" else 32), hot
    # the 16-accumulator tiles spill a broadcast input or two when LLVM unrolls
    # the term loop; never an accumulator
    assert not sums & set(re.findall(r"vmov\w+\s+(%" + reg + r"\d+), [^\n]*\(", hot)), hot
    # the term offsets read by plain loads (tile.at): Numba's wraparound on
    # offs[t] kept a register busy and, with 8 row offsets live, made LLVM
    # shuffle them through registers and the stack every term (8 x 16 tile:
    # 8 x 56 x 56 x 64 groups 4, 1 thread, 6.2 -> 5.3 ms)
    assert "sarq\t$63" not in hot, hot
    assert (name == "long_kernel") == ("prefetcht1" in asm)


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("variant, stream", [(v, ()) for v in sorted(VARIANTS)] + [(1, (0,))])
def test_pointwise_kernel_is_zmm_fmas_in_registers(variant, stream):
    """``pointwise_kernel`` (1 x 1 layers as a matrix product) as the long kernel:
    a 512-bit FMA into each zmm of the tile (256-bit, each ymm, on the 8 x 32
    tile), no gathers or scatters, no accumulator stored back in the hot block,
    the next tile's input prefetched into L2; streaming (the 4 x 64 tile, into
    an aligned ``out``), its results stored non-temporally and no output lines
    fetched for writing, else the reverse."""
    from numconv._kernels.short import pointwise_kernel

    lanes = variant_lanes(variant, np.float32)
    rows, row_bytes = VARIANTS[variant]
    C, K, P = 100, 2 * lanes, 36
    asm = _kernel_asm(pointwise_kernel, np.ones(P * C, np.float32), (1, 1, P, C), (1, 1, 1),
                      np.ones(2 * C * lanes, np.float32), np.zeros(1, np.float32), False,
                      _memory.empty((1, 1, 1, P, K), np.float32), 12, 2, stream, variant_tag(variant))
    assert "gather" not in asm and "scatter" not in asm
    assert ("vmovntps" in asm) == bool(stream) and ("prefetchw" in asm) == (not stream)
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    reg = "zmm" if row_bytes >= 64 else "ymm"
    sums = set(re.findall(r"vfmadd231ps\s+[^\n]*, (%" + reg + r"\d+)\n", hot + "\n"))
    assert len(sums) >= rows * row_bytes // (64 if reg == "zmm" else 32), hot
    assert not sums & set(re.findall(r"vmov\w+\s+(%" + reg + r"\d+), [^\n]*\(", hot)), hot
    assert "prefetcht1" in asm


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("stream", [(), (0,)])
def test_product_cf_kernel_is_zmm_fmas_in_registers(stream):
    """``product_cf_kernel`` (channels-first 1 x 1 layers): its product's hot
    block a 512-bit FMA into each of the 16 zmm of the 8 x 32 tile, nothing
    stored back; each run's channels copied with vector moves (a scalar copy
    loop cost it 40 % on 8 x 128 x 56 x 56 -> 128), no gathers or scatters;
    streaming, its whole runs stored non-temporally."""
    from numconv._kernels.short import product_cf_kernel
    from numconv._paths.direct import PRODUCT_CF_VARIANT

    C, K, P = 40, 24, 112  # (planes of whole lines: the streamed runs' stores are aligned)
    out = _memory.empty((2, K, P), np.float32)
    asm = _kernel_asm(product_cf_kernel, np.ones(2 * C * P, np.float32), P, np.ones(K * C, np.float32),
                      np.zeros(K * 32, np.float32), False, out, 64, 2, stream, variant_tag(PRODUCT_CF_VARIANT))
    assert "gather" not in asm and "scatter" not in asm
    assert ("vmovntps" in asm) == bool(stream)
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    sums = set(re.findall(r"vfmadd231ps\s+[^\n]*, (%zmm\d+)\n", hot + "\n"))
    assert len(sums) >= 16, hot
    assert not sums & set(re.findall(r"vmov\w+\s+(%zmm\d+), [^\n]*\(", hot)), hot
    # the copy: a zmm loaded and stored straight back (``tile.copy_line``)
    assert re.search(r"vmovups\s+-?\w*\(\S+\), (%zmm\d+)\n\s*vmovups\s+\1, ", asm)


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
@pytest.mark.parametrize("stream", [(), (0,)])
def test_separable_kernel_is_zmm_fmas_in_registers(stream):
    """The fused separable kernel: its 1 x 1 stage's hot block a 512-bit FMA into
    each of the 16 zmm of the 4 x 64 tile, no accumulator stored back; no gathers
    or scatters anywhere (the depthwise stage's slides included). Streaming: its
    results stored non-temporally (into an aligned ``out``), no output lines
    fetched for writing; else the reverse."""
    from numconv._kernels.separable import separable_kernel
    from numconv._paths.direct import FUSED_VARIANTS

    dvar, pvar = FUSED_VARIANTS
    C, K = 48, 128
    x = np.ones((2, 1, 6, 20, C), np.float32)
    wm = np.ones((1, 3, 3, 1, 64), np.float32)
    wp = np.ones(2 * C * 64, np.float32)
    out = _memory.empty((2, 1, 6, 20, K), np.float32)
    mids = np.empty((2, 20 * C), np.float32)
    asm = _kernel_asm(separable_kernel, x, wm, wp, np.zeros(1, np.float32), False, out, mids, (1, 1, 1), (1, 1, 1),
                      (0, 1, 1), 20, stream, (0,) * 3, (0,), variant_tag(dvar), variant_tag(pvar))
    assert "gather" not in asm and "scatter" not in asm
    assert ("vmovntps" in asm) == bool(stream) and ("prefetchw" in asm) == (not stream)
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd"))
    sums = set(re.findall(r"vfmadd231ps\s+[^\n]*, (%zmm\d+)\n", hot + "\n"))
    assert len(sums) >= 16, hot
    assert not sums & set(re.findall(r"vmov\w+\s+(%zmm\d+), [^\n]*\(", hot)), hot


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
def test_separable_channels_first_kernel_is_zmm_fmas_in_registers():
    """The channels-first fused separable kernel: its 1 x 1 stage's term loop (4
    filters x 64 pixels) a 512-bit FMA into each of 16 zmm, no accumulator stored
    back; no gathers or scatters (its depthwise stage's row slides included)."""
    from numconv._kernels.separable import separable_cf_kernel
    from numconv._paths.direct import CF_FUSED_VARIANT, NARROW_VARIANT

    C, K = 48, 128
    x = np.ones(2 * C * 12 * 20, np.float32)
    wm = np.ones((1, 3, 3, 1, C), np.float32)
    out = _memory.empty((2, K, 1, 12, 20), np.float32)
    mids = np.empty((2, C * 8 * 20 + 64), np.float32)
    asm = _kernel_asm(separable_cf_kernel, x, (C, 1, 12, 20), (0, 1, 1), wm, np.ones(K * C, np.float32),
                      np.zeros(1, np.float32), False, out, mids, (1, 1, 1), (1, 1, 1), 8, (0,) * 3, (0,),
                      variant_tag(NARROW_VARIANT), variant_tag(CF_FUSED_VARIANT), ())
    assert "gather" not in asm and "scatter" not in asm
    # the 1 x 1 stage's term loop: per term one broadcast weight per filter, 4 FMAs each
    # (the depthwise stage's hottest block has 3 broadcasts for 48 FMAs)
    hot = _hot_block(asm, lambda blk: blk.count("vfmadd") * (blk.count("vfmadd") == 4 * blk.count("vbroadcastss")))
    sums = set(re.findall(r"vfmadd231ps\s+[^\n]*, (%zmm\d+)\n", hot + "\n"))
    assert len(sums) >= 16, hot
    assert not sums & set(re.findall(r"vmov\w+\s+(%zmm\d+), [^\n]*\(", hot)), hot


@pytest.mark.parametrize("op", ["conv", "conv_cf", "depthwise", "separable", "transpose", "backprop_input",
                                "max_pool"])
def test_results_start_on_a_cache_line(op):
    # NumPy puts large arrays 16 bytes past a cache line; numconv's own results are
    # 64-byte aligned so the next layer's vector loads do not straddle lines.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 33, 33, 32)).astype(np.float32)
    w = rng.standard_normal((3, 3, 32, 16)).astype(np.float32)
    if op == "conv":
        y = numconv.conv(x, w, padding="same")
    elif op == "conv_cf":
        y = numconv.conv(x.transpose(0, 3, 1, 2), w, padding="same", data_format="channels_first")
    elif op == "depthwise":
        y = numconv.depthwise_conv(x, w[..., :1], padding="same")
    elif op == "separable":
        y = numconv.separable_conv(x, w[..., :1], w[:1, :1, :, :], padding="same")
    elif op == "transpose":
        y = numconv.conv_transpose(x, w[..., :8].transpose(0, 1, 3, 2)[:, :, :, :], strides=2, padding="same")
    elif op == "backprop_input":
        y = numconv.conv_backprop_input(x[..., :16], w, x.shape, padding="same")
    else:
        y = numconv.max_pool(x, 3, strides=2)
    assert y.size and y.ctypes.data % 64 == 0, (op, y.ctypes.data % 64)


def _function_asm(asm, prefix):
    """The instructions of the first function in ``asm`` whose label starts with ``prefix``."""
    m = re.search(r"\n(" + re.escape(prefix) + r"[\w$.]*):\n(.*?)\n\s*\.size\s+\1", asm, re.S)
    assert m, prefix
    return [ln for ln in m.group(2).splitlines() if ln.startswith("\t") and not ln.startswith("\t.")]


def test_cached_kernel_code_is_the_code_a_fresh_compile_runs():
    """A kernel's library (what ``cache=True`` writes to disk) must hold its
    ``prange`` body as compiled once, not re-optimised by every library that
    links it (``_config._keep_parfor_code``): re-optimised, the tile kernel's
    body was 49 % longer with twice the stack traffic, and every process that
    loaded it from the cache ran the stock conv1d 1.5x slower than the process
    that compiled it."""
    assert _config.KEEP_PARFOR_CODE
    kern = _uncached_twin(conv_direct_kernel)
    x = np.ones((2, 1, 1, 50, 1), np.float32)
    w = pack_weights(np.ones((1, 1, 5, 1, 16), np.float32), 1, 16)
    kern(x, w, np.zeros(1, np.float32), False, np.empty((2, 1, 1, 46, 16), np.float32),
         (1, 1, 46, 1, 1, 1, 0, 0, 0), (1, 1, 1), (1, 1, 1), (0, 0, 0), 0, 48, 0, variant_tag(3))
    library = kern.overloads[kern.signatures[0]].library
    body = next(lib for lib in library._linking_libraries if lib.name.startswith("__numba_parfor_gufunc"))
    label = "_ZN13_3cdynamic_3e36__numba_parfor_gufunc"
    fresh = _function_asm(body.get_asm_str(), label)      # what runs in the compiling process
    cached = _function_asm(library.get_asm_str(), label)  # what later processes load
    stack = [sum("(%rsp)" in ins for ins in code) for code in (fresh, cached)]
    assert len(cached) <= 1.1 * len(fresh), (len(fresh), len(cached))
    assert stack[1] <= 1.1 * stack[0], stack


def test_compile_patch_covers_the_kernel_packages_only(monkeypatch):
    """The compile-once patch applies to the parallel kernels of the packages in
    ``_config.KERNEL_PACKAGES`` (numconv; ``benchmarks/ab.py`` adds the copy of a
    revision it times beside it, which the patch had left to be re-optimised:
    up to 15 % slower with the same code), and to nothing else."""
    from types import SimpleNamespace

    def dispatcher(module, parallel=True):
        return SimpleNamespace(py_func=SimpleNamespace(__module__=module), targetoptions={"parallel": parallel})

    assert _config._is_parallel_kernel(dispatcher("numconv._kernels.short"))
    assert not _config._is_parallel_kernel(dispatcher("numconv._kernels.short", parallel=False))
    assert not _config._is_parallel_kernel(dispatcher("numconv_base._kernels.short"))
    assert not _config._is_parallel_kernel(dispatcher("numconvx.kernels"))
    monkeypatch.setattr(_config, "KERNEL_PACKAGES", _config.KERNEL_PACKAGES | {"numconv_base"})
    assert _config._is_parallel_kernel(dispatcher("numconv_base._kernels.short"))


@pytest.mark.skipif(not _has_avx512(), reason="needs an AVX-512 CPU")
def test_channels_first_max_pool_kernel_deinterleaves_in_registers():
    """The plane max-pool kernel's stride-2 taps: a two-source zmm permute (the
    even lanes of two loads) and zmm max, no gathers (a stride-2 scalar or
    gather loop is what it replaces)."""
    from numconv._kernels.pool import MAX, pool_cf_kernel

    asm = _kernel_asm(pool_cf_kernel, np.ones((4, 1, 9, 70), np.float32), np.empty((4, 1, 4, 34), np.float32),
                      (1, 3, 3), (1, 2, 2), (0, 0, 0), MAX, 4)
    assert "gather" not in asm
    assert re.search(r"vpermt2ps\s+[^\n]*%zmm|vpermi2ps\s+[^\n]*%zmm|vshufps\s+[^\n]*%zmm", asm), "no zmm deinterleave"
    assert re.search(r"vmaxps\s+[^\n]*%zmm", asm)
