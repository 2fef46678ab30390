"""Thread counts, concurrent callers, JIT options and specialisation counts."""
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest

import numconv
from numconv import _config
from numconv._kernels.conv import conv_direct_kernel
from numconv._kernels.separable import separable_cf_kernel, separable_kernel
from numconv._kernels.short import long_kernel, pointwise_kernel, short_kernel
from numconv._kernels.depthwise import depthwise_kernel
from numconv._kernels.fold import fold_columns_kernel


def _case(seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 17, 19, 24)).astype(dtype)
    w = rng.standard_normal((3, 3, 24, 40)).astype(dtype)
    return x, w


def test_results_bit_identical_for_any_thread_count():
    x, w = _case(0)
    old = numconv.get_num_threads()
    try:
        outs = []
        for n in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numconv.set_num_threads(n)
            assert numconv.get_num_threads() == n
            outs.append(numconv.conv2d(x, w, strides=(1, 2), padding="same", dilation_rate=(2, 1)))
    finally:
        numconv.set_num_threads(old)
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])


def test_transposed_conv_bit_identical_for_any_thread_count(adjoint_form):
    """Both forms of the adjoint (stride phases; columns folded per output) too."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 9, 7, 5)).astype(np.float32)
    w = rng.standard_normal((3, 4, 6, 5)).astype(np.float32)  # (*k, filters, in_channels)
    old = numconv.get_num_threads()
    try:
        outs = []
        for n in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numconv.set_num_threads(n)
            outs.append(numconv.conv_transpose(x, w, strides=(2, 3), padding="same", dilation_rate=1))
    finally:
        numconv.set_num_threads(old)
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])
    assert len(adjoint_form[1]) == (adjoint_form[0] == "columns") * len(outs)


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match=r"set_num_threads: n must be between 1 and"):
        numconv.set_num_threads(0)
    with pytest.raises(TypeError, match=r"n must be an int"):
        numconv.set_num_threads(1.5)


def test_concurrent_calls_from_python_threads_are_correct():
    cases = [_case(s, dt) for s in range(6) for dt in (np.float32, np.float64)]
    expected = [numconv.conv2d(x, w, padding="same", padding_mode="reflect") for x, w in cases]

    def work(i):
        x, w = cases[i % len(cases)]
        return i % len(cases), numconv.conv2d(x, w, padding="same", padding_mode="reflect")

    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, y in pool.map(work, range(48)):
            assert np.array_equal(y, expected[i])


def test_threading_layer_is_thread_safe_or_guarded():
    numconv.conv1d(np.ones((1, 8, 1)), np.ones((3, 1, 1)))
    layer = numba.threading_layer()
    lock = _config.kernel_lock()
    if layer == "workqueue":
        assert lock is _config._LOCK
    else:
        assert layer in ("omp", "tbb") and lock is _config._NO_LOCK


def _forked_conv(queue, x, w):
    y = numconv.conv2d(x, w, padding="same", padding_mode="reflect")
    queue.put((_config.in_forked_child(), y))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork()")
def test_a_forked_child_computes_after_the_parent_used_the_kernels():
    """GNU OpenMP is not fork-safe: Numba killed a child forked after the parent's
    first parallel launch (exit code -15, a ``multiprocessing.Pool`` left waiting).
    There the kernels run as their serial twins, with the same bits."""
    import multiprocessing
    import queue as queue_module

    x, w = _case(3, np.float32)
    expected = numconv.conv2d(x, w, padding="same", padding_mode="reflect")  # the parent uses its kernels
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_forked_conv, args=(queue, x, w))
    child.start()
    for _ in range(300):  # the result before join: it is larger than the pipe's buffer
        try:
            serial, y = queue.get(timeout=1)
            break
        except queue_module.Empty:
            assert child.is_alive(), f"the child exited with code {child.exitcode}"
    child.join(60)
    assert child.exitcode == 0
    assert np.array_equal(y, expected)
    assert serial == (numba.threading_layer() == "omp")  # GNU OpenMP (this machine's layer)


def test_kernel_caches_are_stamped_with_every_kernel_source(tmp_path, monkeypatch):
    """numba#1833: a cached kernel is checked against its own file only, so an
    edit to a helper in another module left it running old code. numconv's
    kernels carry a fingerprint of all the modules Numba compiles code from,
    which any change to one of them changes."""
    import os
    import shutil

    assert _config.STAMPED_CACHES
    locator = conv_direct_kernel.dispatcher._cache._impl.locator
    own, shared = locator.get_source_stamp()
    assert shared == _config.kernel_sources_fingerprint()
    assert {path for path, _, _ in shared} >= {os.path.join("_kernels", "act.py"), "_config.py", "_memory.py"}

    @numba.njit(cache=True)
    def elsewhere(v):  # a function outside numconv keeps Numba's own stamp
        return v + 1
    stamp = elsewhere._cache._impl.locator.get_source_stamp()
    assert not (isinstance(stamp, tuple) and len(stamp) == 2 and stamp[1] == shared)

    copy = tmp_path / "numconv"
    shutil.copytree(os.path.dirname(_config.__file__), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(_config, "_PACKAGE", str(copy))
    before = _config.kernel_sources_fingerprint.__wrapped__()
    act = copy / "_kernels" / "act.py"
    os.utime(act, ns=(act.stat().st_atime_ns, act.stat().st_mtime_ns + 10 ** 9))
    assert _config.kernel_sources_fingerprint.__wrapped__() != before


@pytest.mark.skipif(not _config.LOCKED_CACHES, reason="no fcntl (Windows)")
def test_kernel_cache_saves_are_one_at_a_time(tmp_path, monkeypatch):
    """numba#4807 / #10128: two processes saving two signatures of one kernel at
    once both took the first free data file name, and the index sent one
    signature to the other's code (two xdist workers on a cold cache: "can't
    unbox array"). numconv's kernel caches save under an exclusive file lock:
    two saves racing here (two threads, two lock descriptors, a slow index
    update) leave an index with both signatures, each on its own data; a cache
    of another library keeps Numba's unlocked save, and loses one."""
    import threading
    import time

    from numba.core import caching

    real = caching.IndexDataCacheFile._save_index

    def slow(self, overloads):  # the window between reading the index and writing it back
        time.sleep(0.3)
        real(self, overloads)
    monkeypatch.setattr(caching.IndexDataCacheFile, "_save_index", slow)

    def race(stamp):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        files = [caching.IndexDataCacheFile(str(folder), "kernel-1.py311", stamp) for _ in range(2)]
        saves = [threading.Thread(target=f.save, args=(key, key * 1000)) for f, key in zip(files, ("a", "b"))]
        for t in saves:
            t.start()
            time.sleep(0.05)  # (the second reads the index before the first writes it back)
        for t in saves:
            t.join()
        return {key: files[0].load(key) for key in ("a", "b")}

    assert race(((0, 0), _config.kernel_sources_fingerprint())) == {"a": "a" * 1000, "b": "b" * 1000}
    mixed = race((0, 0))  # (Numba's own behaviour: the race this lock closes)
    assert mixed != {"a": "a" * 1000, "b": "b" * 1000}


def test_fastmath_never_assumes_finite_values():
    for opts in (_config.PARALLEL, _config.SERIAL):
        fm = opts.get("fastmath", False)
        if fm is True:
            pytest.fail("fastmath=True enables nnan/ninf")
        if fm:
            assert not {"nnan", "ninf", "fast"} & set(fm)


def test_specialisations_stay_few():
    """Only the dtype and the tile variant (3 register-tile shapes, and for the
    term kernels in float32 a fourth, 256-bit one) reach the kernels' signatures, and for the term kernels the
    result's layout (a channels_first result is stored transposed in a specialisation of its own, in place or
    staged, compiled on its first use: 1.1 s cold for the short kernel): input layouts,
    read-only-ness, ranks, strides, padding and activations are all runtime values."""
    rng = np.random.default_rng(1)
    dtypes = [np.float32, np.float64, np.complex64, np.complex128]
    for dt in dtypes:
        for rank in (1, 2, 3):
            x = rng.standard_normal((2,) + (6,) * rank + (4,)).astype(dt)
            w = rng.standard_normal((3,) * rank + (2, 6)).astype(dt)
            xf = np.asfortranarray(x)
            xr = x[:, ::-1]
            x.setflags(write=False)
            for xx in (x, xf, xr):
                numconv.conv(xx, w, np.ones(6, dt), strides=2, padding="same", groups=2,
                             padding_mode="reflect", activation=None if dt in dtypes[2:] else "relu")
                numconv.conv(xx.tolist(), w, dilation_rate=2, padding="full", data_format="channels_last")
                numconv.conv(np.moveaxis(xx, -1, 1), w, data_format="channels_first")
                numconv.conv(xx, np.ones((2,) * rank + (1, 8), dt), strides=(1,) * (rank - 1) + (2,))
                numconv.conv(xx, np.ones((5,) * rank + (4, 9), dt), padding="same")  # long reductions
                numconv.conv_transpose(xx, np.ones((3,) * rank + (5, 4), dt), strides=2)  # its column form
    assert len(conv_direct_kernel.signatures) <= 3 * len(dtypes)
    # x 3 result layouts: channels-last, channels-first in place, channels-first staged
    assert len(short_kernel.signatures) <= (3 * len(dtypes) + 1) * 3
    assert len(long_kernel.signatures) <= (3 * 2 + 1) * 2 * 3  # single precision only; x 2 tilings (rows, flat)
    assert len(pointwise_kernel.signatures) <= 4 * 2  # float32 only, one per tile variant, x 2: results streamed or not
    assert len(separable_kernel.signatures) <= 9 * 4 * 2  # float32, one tile pair: taps x stride along W x streamed
    assert len(separable_cf_kernel.signatures) <= 10 * 2  # float32, one tile pair: window rows (0-9) x stride along H
    assert len(depthwise_kernel.signatures) <= 3 * len(dtypes)
    assert 1 <= len(fold_columns_kernel.signatures) <= len(dtypes)


def _run_python(code, env=None):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_an_install_without_a_writable_cache_folder_imports_and_computes():
    """A read-only install run by a user without a writable home (a service
    account, a read-only container) has no folder Numba can cache in: ``import
    numconv`` failed with Numba's "cannot cache function ...: no locator
    available". It now compiles without caching and says how to keep the kernels
    (NUMBA_CACHE_DIR). Simulated by emptying Numba's list of cache locators."""
    done = _run_python(
        "import warnings, numpy as np\n"
        "import numba.core.caching as caching\n"
        "caching.CacheImpl._locator_classes = []\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        "    import numconv\n"
        "assert any('NUMBA_CACHE_DIR' in str(w.message) for w in seen), [str(w.message) for w in seen]\n"
        "assert numconv._config.SERIAL['cache'] is False and numconv._config.PARALLEL['cache'] is False\n"
        "x = np.arange(12.0).reshape(1, 6, 2)\n"
        "assert np.array_equal(numconv.max_pool(x, 2), x.reshape(1, 3, 2, 2).max(axis=2))\n"
        "print('ok')\n")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_disabling_the_jit_is_a_clear_import_error():
    """NUMBA_DISABLE_JIT=1 (Numba's debugging switch) crashed the import with an
    AttributeError from inside numconv; its kernels are LLVM intrinsics with no
    Python form, so the import now says so."""
    done = _run_python("import numconv", env={"NUMBA_DISABLE_JIT": "1"})
    assert done.returncode != 0
    assert "ImportError: numconv: NUMBA_DISABLE_JIT is set" in done.stderr, done.stderr[-2000:]
