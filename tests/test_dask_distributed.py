"""numconv.dask on a ``distributed`` cluster: a ``LocalCluster`` of 2 worker
processes with 2 threads each, started and shut down by this module.

Each test computes the in-memory reference first, so Numba's on-disk cache is
warm before the worker processes load the same kernels.
"""
import logging
import os

import numba
import numpy as np
import pytest

import numconv

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
nd = pytest.importorskip("numconv.dask")
from numconv import signal as nsignal  # noqa: E402
from numconv.dask import signal as dsignal  # noqa: E402

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _close(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    tol = 1e-5 if want.dtype == np.float32 else 1e-12
    assert np.abs(got - want).max() <= tol * np.abs(want).max()


def test_ops_match_in_memory_on_two_worker_processes(client):
    x = RNG.standard_normal((3, 21, 17, 4))
    xd = da.from_array(x, chunks=(2, 4, 6, 3))   # uneven, channels split, smaller than some halos
    w = RNG.standard_normal((3, 5, 4, 6))
    b = RNG.standard_normal(6)
    wt = RNG.standard_normal((3, 3, 5, 4))
    dk = RNG.standard_normal((3, 3, 4, 2))
    a1 = RNG.standard_normal((4, 300)).astype(np.float32)
    k1 = RNG.standard_normal((1, 31)).astype(np.float32)
    cases = [
        (numconv.conv(x, w, b, padding="same", padding_mode="reflect", dilation_rate=(2, 1), strides=(1, 2)),
         nd.conv(xd, w, b, padding="same", padding_mode="reflect", dilation_rate=(2, 1), strides=(1, 2),
                 filter_chunks=4)),
        (numconv.conv(x, w, padding="full", padding_mode="circular"),
         nd.conv(xd, w, padding="full", padding_mode="circular")),
        (numconv.depthwise_conv(x, dk, padding="same", strides=2),
         nd.depthwise_conv(xd, dk, padding="same", strides=2)),
        (numconv.conv_transpose(x, wt, strides=2, padding="same", activation="relu"),
         nd.conv_transpose(xd, wt, strides=2, padding="same", activation="relu")),
        (numconv.max_pool(x, 3, 2, "same"), nd.max_pool(xd, 3, 2, "same")),
        (numconv.average_pool(x, (2, 3), 1, "same"), nd.average_pool(xd, (2, 3), 1, "same")),
        (nsignal.correlate(a1, k1, "same", axes=1),
         dsignal.correlate(da.from_array(a1, chunks=(3, 20)), k1, "same", axes=1)),
    ]
    results = client.compute([y for _, y in cases], sync=True)
    for (want, _), got in zip(cases, results):
        _close(got, want)


def _threads_seen(y):
    """Activation recording the Numba thread count of the task it runs in."""
    return y * 0 + numba.get_num_threads()


def test_tasks_run_with_the_threads_the_worker_allows(client):
    """distributed sets OMP_NUM_THREADS=1 in worker processes (its thread budget per
    task) but not Numba's count, which starts at every core in each worker thread;
    numconv.dask's tasks follow OMP_NUM_THREADS."""
    envs = client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
    assert len(envs) == 2
    x = da.ones((8, 12, 12, 2), chunks=(1, 6, 6, 2))
    y = nd.conv(x, np.ones((3, 3, 2, 2)), padding="same", activation=_threads_seen)
    seen = client.compute(y, sync=True)
    top = numba.config.NUMBA_NUM_THREADS
    expected = {min(top, int(v)) if v else max(1, top // 2) for v in envs.values()}  # 2 threads per worker
    assert set(np.unique(seen).astype(int).tolist()) == expected
    assert envs == {k: "1" for k in envs}  # distributed's default budget: one thread per task


def test_persisted_blocks_stay_on_workers(client):
    """A persisted input is read block by block where it lives: halo slices travel,
    the result stays lazy until gathered and equals the in-memory op."""
    x = da.from_array(RNG.standard_normal((4, 40, 40, 8)).astype(np.float32), chunks=(2, 20, 20, 8))
    x = client.persist(x)
    w = RNG.standard_normal((3, 3, 8, 8)).astype(np.float32)
    y = nd.conv2d(x, w, padding="same")
    assert y.chunks == x.chunks
    got = client.compute(y, sync=True)
    _close(got, numconv.conv2d(client.compute(x, sync=True), w, padding="same"))
