"""Numba kernels: ``@njit`` code only. Kernels trust their callers (``numconv._paths``)
to pass canonical, validated, C-contiguous, writable arrays; they do no validation."""
