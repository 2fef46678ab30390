"""Scaling out (numconv.dask): a conv2d larger than one chunk on a ``LocalCluster``
of 2 worker processes x 1 thread against the in-memory op at 2 threads.

The workload and helpers are ``numconv/dask/_bench.py``'s, shared with
``python -m numconv bench --dask``: x (64, 256, 256, 16) float32 (256 MiB) -> 16
filters, 3x3, "same", generated and persisted on the workers (not timed);
chunkings ``batch`` (8 blocks, no halo) and ``spatial`` (16 blocks with halos).
``track_persist_seconds`` is the median time to compute the result on the
cluster and keep it there; ``track_speedup`` is the in-memory time divided by
it (> 1: the cluster is faster). Both are measured by the shared helper (each
run starts from released results), hence ``track_`` rather than ``time_``.

Skipped (``NotImplementedError``) when Dask is not installed
(``pip install 'numconv[dask]'``). Parameter lists are append-only.
"""
from .common import numconv_threads

REPEAT = 3


class DaskConv2D:
    params = [["batch", "spatial"]]
    param_names = ["chunking"]
    timeout = 600
    number = 1
    repeat = 1

    def setup(self, chunking):
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise NotImplementedError("numconv.dask benchmarks need pip install 'numconv[dask]'") from None
        import numconv
        from numconv.dask import _bench

        self.b = _bench
        self.cluster, self.client = _bench.start_cluster()
        self.xd = _bench.load_on_workers(self.client, names=[chunking])[chunking]
        self.w, self.kwargs = _bench.kernel(), dict(_bench.CASE[2])
        self.numconv = numconv

    def teardown(self, chunking):
        self.client.close()
        self.cluster.close()

    def _persist_seconds(self):
        import numconv.dask

        return self.b.time_persist(self.client, lambda: numconv.dask.conv2d(self.xd, self.w, **self.kwargs), REPEAT)

    def track_persist_seconds(self, chunking):
        return self._persist_seconds()

    track_persist_seconds.unit = "seconds"

    def track_speedup(self, chunking):
        x = self.client.compute(self.xd, sync=True)
        self.numconv.set_num_threads(numconv_threads())
        t_mem = self.b.time_in_memory(lambda: self.numconv.conv2d(x, self.w, **self.kwargs), REPEAT)
        return t_mem / self._persist_seconds()

    track_speedup.unit = "in-memory / dask"
