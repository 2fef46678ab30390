"""``python -m numconv bench --dask``: ``numconv.dask`` on a ``LocalCluster`` of worker
processes against the in-memory op on the same data.

The workload (``CASE``) is a 2-D float32 convolution larger than any single
chunk: x of shape (64, 256, 256, 16) (256 MiB) -> 16 filters, 3x3, "same".
The input is generated on the workers and persisted there once per chunking
(not timed), as data a cluster loads itself would be; each timed run computes the
result on the workers and keeps it there (``persist`` + ``wait``), so the time
is the computation plus the halo exchange, not the transfer of the result to
the client (a column reports that too). Chunkings:

* ``batch``: (8, 256, 256, 16), 8 blocks, no halo;
* ``spatial``: (16, 128, 128, 16), 16 blocks, each reading a 1-pixel halo from
  up to 8 neighbours.

The in-memory baseline is ``numconv.conv2d`` in this process with ``--threads``
threads (default 2). The cluster has ``WORKERS`` processes with
``THREADS_PER_WORKER`` thread each (Dask's default thread budget per task
applies: numconv runs 1 Numba thread per task). Medians of ``--repeat`` runs
after one warm-up run.
"""
import statistics
import sys
import time

import numpy as np

#: (x shape, kernel shape, conv keyword arguments); float32
CASE = ((64, 256, 256, 16), (3, 3, 16, 16), {"padding": "same"})
#: name -> chunks of x
CHUNKINGS = {"batch": (8, 256, 256, 16), "spatial": (16, 128, 128, 16)}
WORKERS = 2
THREADS_PER_WORKER = 1


def kernel(seed=0):
    """The seeded float32 kernel of ``CASE``."""
    kshape = CASE[1]
    return (np.random.default_rng(seed).standard_normal(kshape) / 12).astype(np.float32)


def start_cluster(workers=WORKERS, threads_per_worker=THREADS_PER_WORKER):
    """A ``LocalCluster`` of worker processes and its ``Client``."""
    import logging

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                           dashboard_address=None, silence_logs=logging.ERROR)
    return cluster, Client(cluster)


def load_on_workers(client, seed=0, names=None):
    """``CASE``'s input generated on the workers, persisted there once per chunking
    (``names``, default all): ``{chunking: dask array}``, the same values in each."""
    import dask.array as da
    from distributed import wait

    first = next(iter(CHUNKINGS.values()))
    if hasattr(da.random, "default_rng"):
        x = da.random.default_rng(seed).standard_normal(CASE[0], chunks=first, dtype=np.float32)
    else:  # dask < 2023.2
        x = da.random.RandomState(seed).standard_normal(CASE[0], chunks=first).astype(np.float32)
    arrays = {name: client.persist(x.rechunk(CHUNKINGS[name])) for name in (names or CHUNKINGS)}
    wait(list(arrays.values()))
    return arrays


def _idle(client, keep):
    """Wait until the scheduler holds only ``keep`` tasks (results of a timed run
    released), so the next run recomputes rather than reuses them."""
    for _ in range(1000):
        if client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) <= keep:
            return
        time.sleep(0.01)


def time_persist(client, make, repeat):
    """Median seconds of computing ``make()`` on the cluster and keeping it there
    (each run from scratch: the previous run's results are released first)."""
    from distributed import wait

    keep = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
    samples = []
    for i in range(repeat + 1):
        y = make()
        t0 = time.perf_counter()
        y = client.persist(y)
        wait(y)
        if i:  # the first run is a warm-up (worker-side JIT cache loads)
            samples.append(time.perf_counter() - t0)
        del y
        _idle(client, keep)
    return statistics.median(samples)


def time_in_memory(fn, repeat):
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def run(args):
    """Print the table; returns 0 (or 1 without Dask)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("python -m numconv bench --dask needs Dask: pip install 'numconv[dask]'", file=sys.stderr)
        return 1
    import numba

    import numconv
    import numconv.dask

    repeat = max(1, args.repeat)
    threads = args.threads if args.threads is not None else min(2, numba.config.NUMBA_NUM_THREADS)
    w, kwargs = kernel(), dict(CASE[2])
    cluster, client = start_cluster()
    rows = []
    try:
        arrays = load_on_workers(client)
        x = client.compute(next(iter(arrays.values())), sync=True)
        numconv.set_num_threads(threads)
        want = numconv.conv2d(x, w, **kwargs)
        t_mem = time_in_memory(lambda: numconv.conv2d(x, w, **kwargs), repeat)
        flops = 2 * want.size * w[..., 0].size
        print(f"numconv.dask: conv2d {x.shape} float32 ({x.nbytes / 2**20:.0f} MiB) -> {w.shape[-1]} filters, "
              f"{w.shape[0]}x{w.shape[1]}, {kwargs}")
        print(f"in-memory numconv.conv2d, {threads} threads: {t_mem * 1e3:.1f} ms "
              f"({flops / t_mem / 1e9:.0f} GFLOP/s)")
        print(f"LocalCluster: {WORKERS} worker processes x {THREADS_PER_WORKER} thread; medians of {repeat} "
              "after a warm-up; persist = computed and kept on the workers, +gather = also sent back here")
        for name, xd in arrays.items():
            make = lambda: numconv.dask.conv2d(xd, w, **kwargs)  # noqa: E731
            y = make()
            t_dask = time_persist(client, make, repeat)
            t0 = time.perf_counter()
            got = client.compute(y, sync=True)
            t_gather = time.perf_counter() - t0
            err = float(np.abs(got - want).max() / np.abs(want).max())
            rows.append((name, str(CHUNKINGS[name]), y.npartitions, t_dask, t_gather, t_mem / t_dask, err))
            del got
    finally:
        client.close()
        cluster.close()
    head = ("chunking", "chunks", "blocks", "persist ms", "+gather ms", "in-memory / dask", "max rel err")
    widths = [max(len(h), 10) for h in head]
    widths[1] = max(widths[1], max(len(r[1]) for r in rows))
    print("  ".join(h.rjust(n) for h, n in zip(head, widths)))
    for name, chunks, blocks, t_dask, t_gather, ratio, err in rows:
        cells = (name, chunks, str(blocks), f"{t_dask * 1e3:.1f}", f"{t_gather * 1e3:.1f}", f"{ratio:.2f}x",
                 f"{err:.1e}")
        print("  ".join(c.rjust(n) for c, n in zip(cells, widths)))
    return 0
