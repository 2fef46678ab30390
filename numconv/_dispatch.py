"""Method registry and choice: which path computes a ``ConvSpec``.

``METHODS`` maps each public ``method=`` string to its path's ``run``; tests and
benchmarks loop over it. ``choose_conv_method`` looks at shapes only.

Cost model (units: one multiply-add of the direct tile kernel at full lane use),
each method's cost a sum of terms (``cost_terms``) times constants (``CONSTANTS``):

* direct: lane-slot multiply-adds (filters padded to the tile's lanes, pixels to
  whole tiles of rows along W; for the narrow kernel, pixels padded to whole
  runs and rows to whole tiles) plus ``DIRECT_TAP_COST`` per tile and inner
  loop (per kernel tap, or per kernel row where the kernel merges a row's taps;
  narrow: per tap and channel): the fixed cost that dominates small layers.
  Depthwise counts ``DEPTHWISE_COST`` per multiply-add, in either precision
  (float64 ran 1.1-2.4x float32's time on 2-D layers and as fast on 3-D windows,
  where SciPy's float64 transforms ran up to 2.5x float32's);
* fft: ``FFT_TRANSFORM_COST`` per ``n log2 n`` operation of each transform (one
  per input image and channel, per output image and filter, per kernel slice),
  ``FFT_CONTRACT_COST`` per complex multiply-add of the channel contraction and
  ``FFT_CALL_COST`` per call;
* oa (overlap-save): the FFT terms of the stacked blocks it transforms (``oa.plan``);
* winograd (3x3 windows at stride 1 only, ``_paths/winograd.py``): see
  ``_winograd_terms``. Its three constants were fitted by hand to single-thread
  timings of eleven float32 layers against the direct kernel (8 x 56 x 56 with 16,
  32 and 64 channels, groups 4, 28 x 28 x 128, 14 x 14 x 256, 1 x 224 x 224 x 8 -> 16,
  dilation 2, reflect padding, 3-D 32 -> 32, float64): it picks the faster path
  on all eleven, and Winograd is 1.25-1.65x faster than direct where it is picked.
  Re-timed at 2 threads once the cache held the kernels as compiled (2026-11-24),
  the 2-D layers still matched, but 3-D Winograd ran 1.7-2x slower than modelled
  against the now faster direct kernel (2 x 16 x 32^3, 32 -> 32: direct 3.9-4.1,
  Winograd 5.1-5.4 ms, auto had picked Winograd): its contraction counts
  ``WINOGRAD_3D_MAC_COST`` per multiply-add with a depth window, which picks
  the faster path or one within 6 % of it on three 3-D layers (16, 32, 64 channels).
  That constant depends on the machine class (``machine_class``): on cores whose FMA
  units are 256 bits wide (Zen 4 runs each 512-bit FMA in two passes; AVX2-only
  CPUs), the direct kernel's multiply-adds cost twice the cycles while Winograd's
  transforms, which wait on memory, cost about the same, so 3-D Winograd wins
  there. Timed on a Zen 4 (2 threads, median of 9, 2026-11-24): direct / Winograd
  1.40-1.81x on six 3-D layers (2 x 16 x 32^3 with 16, 32 and 64 channels, 1 x 8 x
  16^2 x 64, a 5 x 3 x 3 window, float64), all of which the Zen 5 constant sent to
  direct; 0.9 (``FITTED_CONSTANTS["half"]``) sends all six to Winograd (break-even
  0.93 on the 16-channel layer) and changes no 2-D choice.
  ``WINOGRAD_WEIGHT_COST`` (per transformed weight) fell from 150 to 16 when the
  weight transform became a vector loop (3 x 3 x 512 x 512: 7.3 -> 0.7 ms), timed
  against direct on nineteen 3 x 3 "same" float32 layers of 7-1024 channels and 2-56
  pixels a side (2 threads, best of 5, 2026-11-24): 150 sent five layers that
  Winograd computes 1.3-2.1x faster to direct (8 x 7 x 7 x 512, 2 x 16 x 16 x 512
  -> 1024, ...); 16 picks the faster path or one within 1.2x of it on 17 of 19
  (misses: 4 x 4 x 4 x 512, 1.23x; 1 x 7 x 7 x 64, 0.09 against 0.06 ms).

``DIRECT_TAP_COST`` and the three FFT constants were fitted by
``benchmarks/fit_dispatch.py`` on the development machine (2 Zen 5 cores,
AVX-512): it times every method on ``numconv._cases.dispatch_grid()`` (240 seeded
shapes per seed: ranks 1-3, 1-32 channels and filters, kernels 1 to 1025 taps /
41^2 / 13^3, float32 and float64; best of 5 interleaved rounds) and grid-searches
the constants for the largest share of shapes where ``auto`` is within 1.2x of
the fastest method. Fitted on seeds 0 and 1 (480 shapes): 97.7 %; held-out seed
2: 96.2 % (mean regret 1.015x, worst 2.0x: a 39 x 39 x 8 image with a 37 x 37
kernel in float64, direct 3.0 vs overlap-save 1.5 ms). Re-timed with the final
narrow kernel (vector stores, runs along W for 1-D signals; 2026-11-23): seeds
0 / 1 / 2 at 97.9 / 97.9 / 97.5 % (mean regret 1.011-1.013x, worst 2.7x: a
16^3 x 2 volume with a 6^3 kernel, direct 1.16 vs FFT 0.43 ms); a refit on seeds
0 and 1 would reach 98.1 %, so the constants were kept. Re-timed 2026-11-24 (cache
holding the kernels as compiled, 3-D Winograd term): seeds 0 / 1 / 2 at 98.3 /
98.8 / 98.3 % (mean regret 1.006-1.008x, worst 1.6x: a 30238-sample signal with a
478-tap kernel, 4 filters: auto's overlap-save 2.18 ms, direct 1.36); constants kept. The
tap term's fitted weight fell from 800 to 0 when the narrow kernel
(``_kernels/narrow.py``) took over the one-to-four-filter layers whose per-tap
overhead it modelled; it stays in the search. The model before this refit (no
tap, call or overlap-save terms) scored 92.5-94.6 % on the same grids, its worst
misses 3-4x on small 3-D volumes with one channel. Re-run the script on a new
machine class.

Zen 4 (``machine_class() == "half"``; 2026-11-24, after the FFT path's contraction moved
onto the tile, 3-6x faster): with the Zen 5 constants ``auto`` was within 1.2x of
the fastest on 93.3 / 94.6 / 93.8 % of seeds 0 / 1 / 2. The unconstrained refit
on seeds 0 and 1 (transform 7.93, contract 16, call 6e7, tap 400: 97.7 %, held-out
seed 2 97.9 %) sent the bench's 1025-tap conv1d (8 x 65536 x 4 -> 4) to
overlap-save, 14.8 ms against FFT's 8.3; the constants kept are the best of the
grid that sends both bench FFT cases to the FFT path, as measured
(``FFT_TRANSFORM_COST`` 6.3, ``FFT_CONTRACT_COST`` 128, ``FFT_CALL_COST`` 3e7,
``DIRECT_TAP_COST`` 100): 97.9 / 96.7 % on seeds 0 / 1 (97.3 % together) and 97.1 %
on held-out seed 2. Re-timed after the FFT path stopped competing with Numba's
spinning OpenMP threads and stopped copying its zero padding (same day; FFT
times x0.96 on the grid, up to 1.8x faster on the large ones, small calls 2x
faster): the constants above then scored 95.8 / 97.1 / 95.8 %, worst 4.1x. Refit
on seeds 0 and 1 under the same constraint: ``FFT_TRANSFORM_COST`` 7.93,
``FFT_CONTRACT_COST`` 128, ``FFT_CALL_COST`` 3e6, ``DIRECT_TAP_COST`` 0: 97.5 /
98.3 % (97.9 % together) and 97.5 % on held-out seed 2 (the unconstrained best,
97.9 / 98.8 / 96.3 %, again sent the 1025-tap conv1d to overlap-save). These timings transform the
kernel on every call (``_cases.time_methods``), as the model counts; a layer
called again with the same weights skips that (``_paths/fft.kernel_spectrum``),
so there FFT is cheaper than modelled. The Zen 5 constants predate the faster
contraction, which they overcharge; they stay until re-timed on a Zen 5.

The float32 2-D layers that ``_paths/fft.lanes_apply`` sends to numconv's own
transforms (only where kernel spectra are kept, so never in the timings above)
are weighed with terms of their own (``_lanes_terms``: no kernel transforms, a
layer called again reusing its spectrum). Fitted 2026-11-25 on Zen 4 by
``benchmarks/fit_dispatch.py --kept`` on ``_cases.lanes_grid`` seed 0 (80 layers:
batch 1-8, 32-256 pixels a side, 4-32 channels, 1-32 filters, kernels 3-21, best
of 4 after a warm-up call, spectra kept): ``LANES_TRANSFORM_COST`` 6.32,
``LANES_CONTRACT_COST`` 16, ``LANES_CALL_COST`` 1e7 put ``auto`` within 1.2x of the
fastest on 97.5 % (worst 1.22x), and on 98.3 % of held-out seed 1 (60 layers,
mean regret 1.023x, worst 1.31x: 8 x 247 x 247 x 8 -> 4, 5 x 5, direct 12.8
against FFT 9.8 ms). The pocketfft path's model had put it within 1.2x on 76.7 %
of seed 1 (worst 3.46x: 2 x 82 x 82 x 8 -> 32, 13 x 13 valid, direct 4.06 against
overlap-save 1.17 ms). On Zen 5 the
lanes constants are its FFT constants (not timed there). ``auto``'s remembered
choices are keyed on whether spectra are kept, so a layer timed inside
``spectra_not_kept`` is weighed with the pocketfft terms there.

Intel AVX-512 cores (``machine_class() == "intel"``), fitted 2026-11-26 on an
Emerald Rapids (LLVM ``emeraldrapids``, 2 cores, full-width FMA units, 2 MiB L2
per core), the same way: with the Zen 5 constants ``auto`` was within 1.2x of the
fastest on 94.6 / 95.8 / 96.7 % of seeds 0 / 1 / 2, and within 1.2x on only 63.7 /
67.5 % of the ``--kept`` grids' seeds 0 / 1 (their lanes constants had never been
timed). The refit on seeds 0 and 1 (``FFT_TRANSFORM_COST`` 6.3,
``FFT_CONTRACT_COST`` 256, ``FFT_CALL_COST`` 3e7, ``DIRECT_TAP_COST`` 100): 96.7 %
there, 97.5 % on held-out seed 2 (worst 3.4x: 4 x 30 x 30 x 1 -> 8 with a 26 x 26
kernel in float64, direct 3.7 against overlap-save 1.1 ms), both bench FFT cases
still sent to FFT. ``--kept`` refit on seed 0 (``LANES_TRANSFORM_COST`` 10,
``LANES_CONTRACT_COST`` 11.3, ``LANES_CALL_COST`` 1e7): 97.5 % there and 97.5 % on
held-out seed 1 (worst 1.5x). 3-D Winograd is 1.48-1.91x faster than the direct
kernel there on the six 3-D layers of the Zen 4 fit (2 threads, median of 9:
2 x 16 x 32^3 with 16 / 32 / 64 channels 6.1 / 13.2 / 62.5 ms direct against 4.1 / 7.9
/ 32.7, 1 x 8 x 16^2 x 64, a 5 x 3 x 3 window, float64), four of which the Zen 5
constant sent to direct; Zen 4's 0.9 sends all six to Winograd (break-even 0.95 on
the 16-channel layer) and changes no 2-D choice.
"""
import functools
import math

from ._kernels.act import DEFERRED, apply_deferred
from ._kernels.tile import VARIANTS, choose_variant, variant_lanes
from ._spec import per_spec
from ._paths import direct, fft, oa, winograd

#: public ``method=`` string -> the path's ``run(spec, x5, w5, b, out5)``
METHODS = {"direct": direct.run, "fft": fft.run, "oa": oa.run, "winograd": winograd.run}
#: the methods whose arithmetic runs in SciPy transforms (``numconv._shares``)
TRANSFORM_METHODS = frozenset({"fft", "oa"})

#: LLVM CPU names of AVX-512 cores whose FMA units are 256 bits wide
HALF_WIDTH_CPUS = frozenset({"znver4"})


def fma_bytes(cpu_name=None, features=None):
    """Bytes one FMA unit of this CPU handles per pass: 64 on AVX-512 cores with
    full-width units, 32 on Zen 4 (LLVM's ``znver4``, AVX-512 split into two
    256-bit passes) and on CPUs without AVX-512. ``cpu_name`` and ``features`` (an
    LLVM host CPU name and its feature string) default to this machine's."""
    if cpu_name is None or features is None:
        from llvmlite import binding
        cpu_name = binding.get_host_cpu_name() if cpu_name is None else cpu_name
        features = binding.get_host_cpu_features().flatten() if features is None else features
    if "+avx512f" not in features.split(","):
        return 32
    return 32 if cpu_name in HALF_WIDTH_CPUS else 64


def machine_class(cpu_name=None, features=None):
    """The class of this CPU whose fitted constants ``auto`` weighs with
    (``FITTED_CONSTANTS``; arguments as ``fma_bytes``): ``"half"`` where one FMA
    pass handles 32 bytes (Zen 4, CPUs without AVX-512; fitted on a Zen 4),
    ``"intel"`` for Intel's AVX-512 cores (LLVM names other than AMD's ``znver*``;
    fitted on an Emerald Rapids), ``"full"`` for the rest (AMD's full-width
    AVX-512 cores; fitted on a Zen 5)."""
    if cpu_name is None:
        from llvmlite import binding
        cpu_name = binding.get_host_cpu_name()
    if fma_bytes(cpu_name, features) == 32:
        return "half"
    return "full" if cpu_name.startswith("znver") else "intel"


#: the fitted constants per machine class (``machine_class``; see the module
#: docstring): "full" fitted on Zen 5, "half" on Zen 4, "intel" on Emerald Rapids
FITTED_CONSTANTS = {
    "full": {"FFT_TRANSFORM_COST": 10.0, "FFT_CONTRACT_COST": 256.0, "FFT_CALL_COST": 3e7, "DIRECT_TAP_COST": 0.0,
             "WINOGRAD_3D_MAC_COST": 1.8,
             "LANES_TRANSFORM_COST": 10.0, "LANES_CONTRACT_COST": 256.0, "LANES_CALL_COST": 3e7},
    "half": {"FFT_TRANSFORM_COST": 7.93, "FFT_CONTRACT_COST": 128.0, "FFT_CALL_COST": 3e6, "DIRECT_TAP_COST": 0.0,
             "WINOGRAD_3D_MAC_COST": 0.9,
             "LANES_TRANSFORM_COST": 6.32, "LANES_CONTRACT_COST": 16.0, "LANES_CALL_COST": 1e7},
    "intel": {"FFT_TRANSFORM_COST": 6.3, "FFT_CONTRACT_COST": 256.0, "FFT_CALL_COST": 3e7, "DIRECT_TAP_COST": 100.0,
              "WINOGRAD_3D_MAC_COST": 0.9,
              "LANES_TRANSFORM_COST": 10.0, "LANES_CONTRACT_COST": 11.3, "LANES_CALL_COST": 1e7},
}
_THIS_MACHINE = FITTED_CONSTANTS[machine_class()]
FFT_TRANSFORM_COST = _THIS_MACHINE["FFT_TRANSFORM_COST"]
FFT_CONTRACT_COST = _THIS_MACHINE["FFT_CONTRACT_COST"]
FFT_CALL_COST = _THIS_MACHINE["FFT_CALL_COST"]
DIRECT_TAP_COST = _THIS_MACHINE["DIRECT_TAP_COST"]
WINOGRAD_3D_MAC_COST = _THIS_MACHINE["WINOGRAD_3D_MAC_COST"]
LANES_TRANSFORM_COST = _THIS_MACHINE["LANES_TRANSFORM_COST"]
LANES_CONTRACT_COST = _THIS_MACHINE["LANES_CONTRACT_COST"]
LANES_CALL_COST = _THIS_MACHINE["LANES_CALL_COST"]
#: Refit 2026-11-25 on 72 seeded depthwise layers (ranks 1-3, 4-256 channels,
#: kernels 3 to 255 taps / 31^2 / 9^3, dilation 1-2, float32, 2 threads, best of 3,
#: every call transforming its kernel): the value 10 dated from slower depthwise
#: kernels and sent 30 of the 72 to FFT or overlap-save, up to 17x slower than
#: direct (2 x 56 x 56 x 128, 7 x 7: direct 0.62 ms, FFT 9.0; 4 x 16000 x 96, 31
#: taps: direct 6.3, overlap-save 32.6). Implied per layer: 0.5-4 (above that, tiny
#: layers whose fixed costs dominate); 2 puts auto within 1.2x of the fastest on
#: 69 of 72 (misses: 3-D layers with 7^3 and 9^3 kernels, FFT 1.6-1.9x slower), 10 on 42.
DEPTHWISE_COST = 2.0
WINOGRAD_TRANSFORM_COST = 13.0
WINOGRAD_TILE_COST = 2700.0
WINOGRAD_WEIGHT_COST = 16.0

#: cost term -> name of its constant in this module (None: the unit itself)
CONSTANTS = {"direct_mac": None, "direct_tap": "DIRECT_TAP_COST", "depthwise_mac": "DEPTHWISE_COST",
             "fft_transform": "FFT_TRANSFORM_COST", "fft_contract": "FFT_CONTRACT_COST",
             "fft_call": "FFT_CALL_COST", "lanes_transform": "LANES_TRANSFORM_COST",
             "lanes_contract": "LANES_CONTRACT_COST", "lanes_call": "LANES_CALL_COST",
             "winograd_mac": None, "winograd_mac_3d": "WINOGRAD_3D_MAC_COST",
             "winograd_transform": "WINOGRAD_TRANSFORM_COST",
             "winograd_tile": "WINOGRAD_TILE_COST", "winograd_weight": "WINOGRAD_WEIGHT_COST"}


#: a dot-kernel lane-slot multiply-add in tile-kernel ones: it loads an input
#: vector per FMA (the tile kernel broadcasts one value to a row of filters), and
#: ran at 2.5-4.5 cycles per 512-bit FMA on 1 thread against the tile kernel's ~1
#: (8 x 58 x 58 x 16-256 channels -> 1-4, 3 x 3 and 1 x 1, 2026-11-24)
DOT_MAC_COST = 3


def _direct_terms(spec):
    """The direct kernel's work: lane-slot multiply-adds (filters padded to whole
    tile rows, output pixels to whole tiles along W) and tile-taps (one per tile,
    filter block and inner loop over channels: per kernel tap, or per kernel row
    where the kernel merges a row's taps into one loop; the overhead that
    dominates when a tap has few channels). Depthwise: its own multiply-adds, or
    the narrow kernel's tiles per group where it computes the layer (not where
    the row-run kernel does)."""
    cg = spec.channels // spec.groups
    taps = math.prod(spec.kernel_spatial)
    narrow_depthwise = direct.is_narrow_depthwise(spec) and not direct.rows_depthwise(spec)
    if direct.is_depthwise(spec) and not narrow_depthwise:  # (the row-run kernel: every lane a useful value)
        return {"depthwise_mac": spec.batch * math.prod(spec.out_spatial) * spec.filters * taps * cg}
    if direct.is_narrow(spec) or narrow_depthwise:
        # the narrow kernel: lanes are output pixels along W, rows (filter, output row) pairs
        rows, lanes = VARIANTS[direct.NARROW_VARIANT][0], direct.narrow_lanes(spec)
        per_weight = direct.narrow_rows_per_weight(spec)
        od, oh, ow = spec.out_spatial
        if oh < per_weight:  # rows of a weight on consecutive runs along W (1-D signals)
            tiles = spec.batch * spec.groups * od * oh * -(-ow // (lanes * per_weight))
        else:
            tiles = spec.batch * spec.groups * od * -(-oh // per_weight) * -(-ow // lanes)
        return {"direct_mac": tiles * rows * lanes * taps * cg, "direct_tap": tiles * taps * cg}
    kg = spec.filters // spec.groups
    if direct.is_dot(spec):
        # the dot kernel: lanes are channels, rows output pixels along W, one loop per (tile, filter, tap)
        rows, lanes = VARIANTS[direct.DOT_VARIANT][0], variant_lanes(direct.DOT_VARIANT, spec.dtype)
        od, oh, ow = spec.out_spatial
        tiles = spec.batch * od * oh * -(-ow // rows) * spec.filters
        return {"direct_mac": DOT_MAC_COST * tiles * rows * taps * -(-cg // lanes) * lanes,
                "direct_tap": tiles * taps}
    variant = direct.terms_variant(spec)
    if variant == 4:  # modelled as the 8 x 16 tile it replaced (the fit's), ~15-20 % slower
        variant = 3
    rows, lanes = VARIANTS[variant][0], variant_lanes(variant, spec.dtype)
    blocks = spec.groups * -(-kg // lanes)
    od, oh, ow = spec.out_spatial
    tiles = spec.batch * od * oh * -(-ow // rows) * blocks
    merged = spec.groups == 1 and spec.dilations[2] == 1 and cg < 16  # conv_direct_kernel's `merge`
    loops = taps // spec.kernel_spatial[2] if merged else taps
    return {"direct_mac": tiles * rows * lanes * taps * cg, "direct_tap": tiles * loops}


def _fft_terms(spec):
    """One transform per input image and channel, per output image and filter and
    per kernel slice (``n log2 n`` operations each), and the frequency-domain
    channel contraction (complex multiply-adds). The layers ``fft.lanes_apply``
    sends to numconv's own transforms are weighed apart (``_lanes_terms``)."""
    if fft.lanes_apply(spec):
        return _lanes_terms(spec)
    n = math.prod(fft.fft_shape(spec))
    cg = spec.channels // spec.groups
    transforms = spec.batch * (spec.channels + spec.filters) + cg * spec.filters
    freqs = n if spec.dtype.kind == "c" else n // 2 + 1
    return {"fft_transform": transforms * n * max(math.log2(n), 1.0),
            "fft_contract": spec.batch * freqs * cg * spec.filters, "fft_call": 1}


def _lanes_terms(spec):
    """``_fft_terms`` for ``fft.run_lanes``: its transforms (one per input image and
    channel, per output image and filter; ``n log2 n`` each) and contraction, with
    constants of their own. No kernel transforms: the path runs only where the
    kernel's spectrum is kept, so a layer called again with the same weights
    (what these terms model) reuses it."""
    n = math.prod(fft.lanes_geometry(spec)[0])
    freqs = n // 2 + 1
    return {"lanes_transform": spec.batch * (spec.channels + spec.filters) * n * math.log2(n),
            "lanes_contract": spec.batch * freqs * (spec.channels // spec.groups) * spec.filters, "lanes_call": 1}


def _oa_terms(spec):
    """The FFT path's terms for the stacked blocks overlap-save runs."""
    p = oa.plan(spec)
    return _fft_terms(spec if p is None else p[-1])


def _winograd_terms(spec):
    """The contraction's 16 multiply-adds per 2 x 2 tile (at the direct tile's lane
    efficiency), the transformed input and output values, the tile passes and the
    transformed weights; None where the path does not apply."""
    if not winograd.applies(spec):
        return None
    kd = spec.kernel_spatial[0]
    tiles = winograd.tile_count(spec)
    cg = spec.channels // spec.groups
    kg = spec.filters // spec.groups
    lanes = variant_lanes(choose_variant(kg, spec.dtype), spec.dtype)
    blocks = spec.groups * -(-kg // lanes)  # the kernel's (group, filter block) passes over each tile
    # 3-D windows: each output tile's contraction runs once per depth tap
    return {"winograd_mac" if kd == 1 else "winograd_mac_3d": tiles * 16 * kd * cg * blocks * lanes,
            "winograd_transform": tiles * 16 * (kd * spec.channels + spec.filters),
            "winograd_tile": tiles * blocks, "winograd_weight": 16 * kd * cg * spec.filters}


def cost_terms(spec):
    """{method: {term: amount}} for the methods ``auto`` chooses among (those that
    apply to ``spec``); a method's cost is the sum of each amount times its
    constant (``CONSTANTS``)."""
    terms = {"direct": _direct_terms(spec), "fft": _fft_terms(spec), "oa": _oa_terms(spec)}
    w = _winograd_terms(spec)
    if w is not None:
        terms["winograd"] = w
    return terms


def weigh(terms, constants=None):
    """A method's cost: ``terms`` weighted by ``constants`` ({constant name: value},
    defaulting to this module's values)."""
    total = 0.0
    for term, amount in terms.items():
        name = CONSTANTS[term]
        if name is None:
            total += amount
        else:
            total += amount * (constants[name] if constants and name in constants else globals()[name])
    return total


def choose_conv_method(spec, constants=None):
    """The method ``method="auto"`` runs for ``spec``: the cheapest of direct, FFT,
    overlap-save and Winograd by the cost model above (ties: that order) (``constants`` override the
    module's, for fitting); never FFT, overlap-save or Winograd when every input
    was integer-valued (bool/int dtypes), whose exact results their rounding could change."""
    if spec.integer_inputs:
        return "direct"
    if constants is None:
        # The model costs ~20 us of Python per call (a quarter of a small layer's
        # overhead, paid twice on some paths): remember it per spec and constants,
        # on the spec object (no hashing) and by value (the sub-specs that the
        # transposed conv's phases and the gradients build anew on every call).
        try:  # (whether spectra are kept decides whether the lanes terms apply)
            return _remembered(spec, tuple(map(globals().__getitem__, _CONSTANT_NAMES)) +
                               (fft.SPECTRUM_CACHE_BYTES > 0,))
        except TypeError:  # an unhashable field (a callable activation object)
            pass
    return _cheapest(spec, constants)


#: the module globals that hold the constants (their current values key ``_remembered``)
_CONSTANT_NAMES = tuple(name for name in CONSTANTS.values() if name is not None)


def _cheapest(spec, constants=None):
    costs = {m: weigh(t, constants) for m, t in cost_terms(spec).items()}
    return min(costs, key=costs.get)


@per_spec
def _remembered(spec, values):
    """``_cheapest(spec)`` under this module's constants, whose current ``values`` key the cache."""
    return _remembered_by_value(spec, values)


@functools.lru_cache(maxsize=1024)
def _remembered_by_value(spec, values):
    return _cheapest(spec)


def candidates(spec):
    """The registered methods that compute ``spec`` on a path of their own (for
    timing them): every method but ``"winograd"`` where it would run the direct kernel."""
    return [m for m in METHODS if m != "winograd" or winograd.applies(spec)]


def resolve(spec):
    """The path ``spec`` runs on: its ``method``, or the dispatcher's choice for ``"auto"``."""
    return choose_conv_method(spec) if spec.method == "auto" else spec.method


def run(spec, x5, w5, b, out5):
    """Compute ``out5`` on the resolved path; activations the kernels do not fuse
    (``act.DEFERRED``) are applied here, vectorised, after it."""
    METHODS[resolve(spec)](spec, x5, w5, b, out5)
    return finish(spec, out5)


def finish(spec, out):
    """Apply ``spec``'s activation if the kernels deferred it (``act.DEFERRED``) to
    the C-contiguous result ``out``; return ``out``."""
    if isinstance(spec.activation, int) and spec.activation in DEFERRED:
        apply_deferred(out, spec.activation)
    return out
