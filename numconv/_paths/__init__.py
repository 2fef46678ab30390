"""Execution paths: each ``run(spec, x5, w5, b, out5)`` allocates scratch, pads,
tiles and calls kernels for one method. Registered in ``numconv._dispatch.METHODS``."""
