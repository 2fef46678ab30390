"""conv's method="auto": what it chooses, and that every choice gives the same answer."""
import numpy as np
import pytest

import numconv
from numconv import _dispatch
from reference import ref_conv
from specs import spec_of


def _pick(x_shape, w_shape, dtype=np.float32, **kw):
    return numconv.choose_conv_method(np.zeros(x_shape, dtype), np.zeros(w_shape, dtype), **kw)


@pytest.mark.parametrize("x_shape, w_shape, expected", [
    ((8, 56, 56, 64), (3, 3, 64, 64), "winograd"),     # resnet layer: direct ~15x faster than FFT,
                                                       # Winograd ~1.6x faster than direct
    ((8, 28, 28, 128), (3, 3, 128, 128), "winograd"),
    ((8, 56, 56, 16), (3, 3, 16, 16), "direct"),       # few channels: the transforms outweigh the saving
    ((8, 56, 56, 64), (3, 3, 16, 64), "direct"),       # groups 4: 16 channels per group
    ((1, 224, 224, 8), (3, 3, 8, 16), "direct"),
    ((8, 56, 56, 64), (5, 5, 64, 64), "direct"),       # Winograd is 3x3 only
    ((8, 56, 56, 128), (3, 3, 1, 128), "direct"),      # depthwise
    # depthwise with larger windows (DEPTHWISE_COST): ConvNeXt's 7 x 7 direct 1.95
    # vs FFT 17.8 ms; 31 taps 6.3 vs overlap-save 32.6; a 9^3 window on 8 channels
    # FFT 4.3 vs direct 14.7
    ((8, 56, 56, 128), (7, 7, 1, 128), "direct"),
    ((4, 16000, 96), (31, 1, 96), "direct"),
    ((1, 32, 32, 32, 8), (9, 9, 9, 1, 8), ("fft", "oa")),
    # one channel, one filter: the narrow direct kernel (7 x 7: direct 4.0, FFT
    # 29 ms; 31 x 31: 25 vs 28 ms, a tie; 63 x 63: transforms win)
    ((1, 1024, 1024, 1), (3, 3, 1, 1), "direct"),
    ((1, 1024, 1024, 1), (7, 7, 1, 1), "direct"),
    ((1, 1024, 1024, 1), (63, 63, 1, 1), ("fft", "oa")),
    ((4, 256, 256, 8), (25, 25, 8, 8), "fft"),         # measured 47 vs 195 ms
    ((8, 65536, 4), (1025, 4, 4), ("fft", "oa")),      # measured 21 (FFT) vs 308 ms (direct)
])
def test_choices(x_shape, w_shape, expected):
    assert _pick(x_shape, w_shape, padding="same") in ((expected,) if isinstance(expected, str) else expected)


@pytest.mark.parametrize("machine, x_shape, w_shape, expected", [
    # 3-D 3x3x3: Winograd's contraction runs per depth tap. Zen 5 (full-width FMA):
    # direct 3.9-4.1 vs Winograd 5.1-5.4 ms at 32 channels, 14.5 vs 14.4 ms at 64.
    ("full", (2, 16, 32, 32, 32), (3, 3, 3, 32, 32), "direct"),
    ("full", (2, 16, 32, 32, 64), (3, 3, 3, 64, 64), ("direct", "winograd")),
    # Zen 4 (each 512-bit FMA in two passes): direct 9.3-11.4 vs Winograd 5.9-6.3 ms
    # at 32 channels, 2.5 vs 1.7-1.8 at 16, 33.7 vs 19.9-20.9 at 64
    ("half", (2, 16, 32, 32, 16), (3, 3, 3, 16, 16), "winograd"),
    ("half", (2, 16, 32, 32, 32), (3, 3, 3, 32, 32), "winograd"),
    ("half", (2, 16, 32, 32, 64), (3, 3, 3, 64, 64), "winograd"),
    ("half", (2, 16, 32, 32, 32), (5, 3, 3, 32, 32), "winograd"),
    ("half", (8, 56, 56, 16), (3, 3, 16, 16), "direct"),       # 2-D choices stay as they are
    ("half", (8, 56, 56, 64), (3, 3, 16, 64), "direct"),
    # Emerald Rapids (2 threads, median of 9): direct 6.1 / 13.2 / 62.5 ms against
    # Winograd 4.1 / 7.9 / 32.7 at 16 / 32 / 64 channels, 27.7 vs 15.9 with a 5 x 3 x
    # 3 window, 4.2 vs 2.5 on 1 x 8 x 16^2 x 64; 2-D: 8 x 56 x 56 x 32 -> 32 3.4 vs 2.5
    ("intel", (2, 16, 32, 32, 16), (3, 3, 3, 16, 16), "winograd"),
    ("intel", (2, 16, 32, 32, 32), (3, 3, 3, 32, 32), "winograd"),
    ("intel", (2, 16, 32, 32, 64), (3, 3, 3, 64, 64), "winograd"),
    ("intel", (2, 16, 32, 32, 32), (5, 3, 3, 32, 32), "winograd"),
    ("intel", (1, 8, 16, 16, 64), (3, 3, 3, 64, 64), "winograd"),
    ("intel", (8, 56, 56, 32), (3, 3, 32, 32), "winograd"),
    ("intel", (8, 56, 56, 64), (3, 3, 16, 64), "direct"),
])
def test_choice_follows_the_machine_class(monkeypatch, machine, x_shape, w_shape, expected):
    for name, value in _dispatch.FITTED_CONSTANTS[machine].items():
        monkeypatch.setattr(_dispatch, name, value)
    assert _pick(x_shape, w_shape, padding="same") in ((expected,) if isinstance(expected, str) else expected)


@pytest.mark.parametrize("cpu, features, expected, machine", [
    ("znver5", "+avx2,+avx512f,+fma", 64, "full"),
    ("sapphirerapids", "+avx2,+avx512f,+fma", 64, "intel"),
    ("emeraldrapids", "+avx2,+avx512f,+fma", 64, "intel"),
    ("skylake-avx512", "+avx2,+avx512f,+fma", 64, "intel"),
    ("znver4", "+avx2,+avx512f,+fma", 32, "half"),      # AVX-512 in two 256-bit passes
    ("znver3", "+avx2,-avx512f,+fma", 32, "half"),      # no AVX-512
    ("alderlake", "+avx2,-avx512f,+fma", 32, "half"),
    ("generic", "", 32, "half"),
])
def test_fma_bytes_classifies_the_machine(cpu, features, expected, machine):
    assert _dispatch.fma_bytes(cpu, features) == expected
    assert _dispatch.machine_class(cpu, features) == machine


def test_the_constants_are_this_machines_class():
    assert set(_dispatch.FITTED_CONSTANTS) == {"full", "half", "intel"}
    for name, value in _dispatch.FITTED_CONSTANTS[_dispatch.machine_class()].items():
        assert getattr(_dispatch, name) == value


def test_winograd_needs_stride_1_and_real_floats():
    assert _pick((8, 56, 56, 64), (3, 3, 64, 64), padding="same", strides=2) == "direct"
    assert _pick((8, 56, 56, 64), (3, 3, 64, 64), np.complex64, padding="same") == "direct"
    assert _pick((8, 56, 56, 64), (3, 3, 64, 64), np.float64, padding="same") == "winograd"
    assert _pick((8, 56, 56, 64), (3, 3, 64, 64), np.int32, padding="same") == "direct"  # exact integers


def test_integer_inputs_never_go_to_fft():
    x, w = np.ones((1, 300, 300, 1), np.int64), np.ones((61, 61, 1, 1), np.int64)
    assert numconv.choose_conv_method(x, w) == "direct"
    assert numconv.choose_conv_method(x.tolist(), w) == "direct"
    assert numconv.choose_conv_method(x.astype(np.float64), w) == "fft"  # float data: no exactness to keep
    y = numconv.conv2d(x, w)
    assert np.array_equal(y, np.full(y.shape, 61.0 * 61.0))


def test_auto_choosing_fft_matches_the_reference():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 96, 90, 1))
    w = rng.standard_normal((31, 29, 1, 2))
    kw = dict(padding="same", strides=(1, 2))
    spec = spec_of(x, w, padding="same")
    assert _dispatch.choose_conv_method(spec) in _dispatch.METHODS
    got = numconv.conv2d(x, w, **kw)
    ref = ref_conv(x, w, **kw)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_measure_times_every_method():
    best, times = numconv.choose_conv_method(np.ones((1, 20, 20, 2)), np.ones((3, 3, 2, 4)), measure=True)
    assert set(times) == set(_dispatch.METHODS) and best in times
    assert all(t > 0 for t in times.values())
    # a 5x5 window: "winograd" would run the direct kernel again, so it is not a candidate
    best, times = numconv.choose_conv_method(np.ones((1, 20, 20, 2)), np.ones((5, 5, 2, 4)), measure=True)
    assert set(times) == set(_dispatch.METHODS) - {"winograd"} and best in times


def test_measure_never_picks_a_transform_for_integer_inputs():
    """With ``measure=True`` the pick stays among what "auto" may run: for integer
    inputs "direct" (the transforms round exact sums past 2**52), whatever the
    timings; it had returned "fft" where FFT timed fastest."""
    x, w = np.ones((1, 64, 64, 2), np.int64), np.ones((15, 15, 2, 2), np.int64)
    best, times = numconv.choose_conv_method(x, w, measure=True)
    assert best == "direct" and "fft" in times
    assert numconv.choose_conv_method(x, w) == "direct"


def test_cost_model_is_monotone_in_kernel_size():
    """Growing the kernel never moves the choice from a transform (FFT or
    overlap-save) back to direct."""
    picks = [_pick((1, 512, 512, 1), (k, k, 1, 1), padding="same") for k in range(1, 40, 2)]
    assert picks[0] == "direct"
    first = next(i for i, p in enumerate(picks) if p != "direct")
    assert all(p in ("fft", "oa") for p in picks[first:]), picks


def test_fft_path_bounds_spectrum_memory_by_batch_chunks(monkeypatch):
    import tracemalloc

    from numconv import _memory
    from numconv._paths import fft

    rng = np.random.default_rng(4)
    x = rng.standard_normal((12, 40, 40, 3))
    w = rng.standard_normal((9, 9, 3, 5))
    b = rng.standard_normal(5)
    whole = numconv.conv2d(x, w, b, padding="same", activation="tanh", method="fft")

    def peak():
        _memory.release_scratch()  # the pooled buffers a call borrows count as its own
        tracemalloc.start()
        y = numconv.conv2d(x, w, b, padding="same", activation="tanh", method="fft")
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return y, used

    _, unbounded = peak()
    monkeypatch.setattr(fft, "CHUNK_BYTES", 1 << 16)  # one image per chunk
    chunked, bounded = peak()
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-12)
    assert bounded < unbounded / 2, (bounded, unbounded)


def test_auto_can_choose_overlap_save_and_it_matches_direct():
    """A long signal with a moderately long kernel goes to overlap-save (its cost is
    the FFT path's on the stacked blocks, ``oa.plan``), with direct's results."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2 ** 19, 1))  # measured: overlap-save 24, direct 34, FFT 35 ms
    w = rng.standard_normal((2049, 1, 1))
    assert numconv.choose_conv_method(x, w, padding="same") == "oa"
    np.testing.assert_allclose(numconv.conv1d(x, w, padding="same"),
                               numconv.conv1d(x, w, padding="same", method="direct"), rtol=1e-9, atol=1e-9)


def test_cost_terms_cover_the_choice():
    """Every method auto can choose has cost terms; Winograd only where it applies."""
    spec = spec_of(np.zeros((1, 20, 20, 8)), np.zeros((3, 3, 8, 8)), padding="same")
    assert set(_dispatch.cost_terms(spec)) == {"direct", "fft", "oa", "winograd"}
    strided = spec_of(np.zeros((1, 20, 20, 8)), np.zeros((3, 3, 8, 8)), strides=2, padding="same")
    assert set(_dispatch.cost_terms(strided)) == {"direct", "fft", "oa"}
    for terms in _dispatch.cost_terms(spec).values():
        assert set(terms) <= set(_dispatch.CONSTANTS) and _dispatch.weigh(terms) > 0


def test_choice_is_remembered_for_equal_specs_built_anew(monkeypatch):
    """The transposed conv's phases and the gradients build their sub-specs anew
    on every call (``dataclasses.replace``): ``auto``'s choice for a spec equal to
    one seen before comes from the cache, not from the cost model again."""
    import dataclasses

    spec = spec_of(np.zeros((1, 30, 30, 8)), np.zeros((2, 2, 8, 8)), padding="same")
    _dispatch._remembered_by_value.cache_clear()
    seen = []
    cheapest = _dispatch._cheapest
    monkeypatch.setattr(_dispatch, "_cheapest", lambda s, *a: seen.append(s) or cheapest(s, *a))
    first = _dispatch.choose_conv_method(dataclasses.replace(spec, pads=((0, 0), (1, 1), (1, 1))))
    again = _dispatch.choose_conv_method(dataclasses.replace(spec, pads=((0, 0), (1, 1), (1, 1))))
    assert first == again and len(seen) == 1


def test_remembered_choice_follows_the_constants(monkeypatch):
    """``auto``'s choice is cached per spec (the model costs ~20 us of Python per
    call), keyed on the constants too: changing one changes the next choice."""
    # float64: float32 would go to the lanes path, whose constants are others (next test)
    x, w = np.zeros((1, 256, 256, 8)), np.zeros((25, 25, 8, 8))
    first = numconv.choose_conv_method(x, w, padding="same")
    assert first in ("fft", "oa")
    assert numconv.choose_conv_method(x, w, padding="same") == first  # from the cache
    monkeypatch.setattr(_dispatch, "FFT_TRANSFORM_COST", 1e9)
    assert numconv.choose_conv_method(x, w, padding="same") not in ("fft", "oa")
    monkeypatch.undo()
    assert numconv.choose_conv_method(x, w, padding="same") == first


def test_lanes_layers_are_weighed_with_their_own_terms_where_the_path_runs(monkeypatch):
    """Float32 2-D layers that ``run_lanes`` computes (spectra kept) have the
    ``lanes_*`` terms; within ``spectra_not_kept`` (the path not taken) the
    pocketfft path's. The remembered choice is keyed on that regime: with the
    lanes path made free, auto picks FFT there and direct for the same layer
    when every call transforms its kernel, in either order."""
    from numconv._paths import fft

    x, w = np.zeros((1, 40, 40, 8), np.float32), np.zeros((3, 5, 8, 8), np.float32)
    spec = spec_of(x, w, padding="same")
    assert fft.lanes_apply(spec)
    assert set(_dispatch.cost_terms(spec)["fft"]) == {"lanes_transform", "lanes_contract", "lanes_call"}
    with fft.spectra_not_kept():
        assert set(_dispatch.cost_terms(spec)["fft"]) == {"fft_transform", "fft_contract", "fft_call"}
    float64 = spec_of(x.astype(np.float64), w.astype(np.float64), padding="same")
    assert set(_dispatch.cost_terms(float64)["fft"]) == {"fft_transform", "fft_contract", "fft_call"}
    for name in ("LANES_TRANSFORM_COST", "LANES_CONTRACT_COST", "LANES_CALL_COST"):
        monkeypatch.setattr(_dispatch, name, 0.0)
    for _ in range(2):
        assert numconv.choose_conv_method(x, w, padding="same") == "fft"
        with fft.spectra_not_kept():
            assert numconv.choose_conv_method(x, w, padding="same") == "direct"


def test_lanes_grid_and_kept_timings():
    """``_cases.lanes_grid`` (the ``--kept`` fit's layers) draws only layers the
    lanes path computes, the same ones per seed; ``time_methods(kept=True)``
    times each method with spectra kept and reports the choice auto makes then."""
    from numconv import _cases
    from numconv._paths import fft

    grid = _cases.lanes_grid(6, seed=3)
    assert grid == _cases.lanes_grid(6, seed=3) and len(grid) == 6
    for xs, ws, kw, dt in grid:
        assert fft.lanes_apply(spec_of(np.zeros(xs, dt), np.zeros(ws, dt), **kw))
    times, auto = _cases.time_methods((1, 24, 24, 4), (5, 5, 4, 4), {"padding": "same"}, "float32", repeat=2,
                                      kept=True)
    assert set(times) >= {"direct", "fft"} and all(0 < t < 10 for t in times.values())
    spec = spec_of(np.zeros((1, 24, 24, 4), np.float32), np.zeros((5, 5, 4, 4), np.float32), padding="same")
    assert auto == _dispatch._cheapest(spec)
    with fft.spectra_not_kept():
        assert _cases.time_methods((1, 24, 24, 4), (5, 5, 4, 4), {"padding": "same"}, "float32",
                                   repeat=2)[1] == _dispatch._cheapest(spec)
