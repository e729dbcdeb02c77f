"""Keep large CPU buffers in the heap between batches (glibc's malloc), torch-free.

PyTorch allocates CPU tensors with ``malloc``. glibc serves every request above its mmap
threshold with a fresh ``mmap`` and unmaps it on ``free``; the threshold grows with the
sizes freed but never past 32 MiB. A RISE block of masks or a convolution's activations is
tens of MiB, so every batch maps new pages and the kernel zero-fills them page by page.
Measured with ``asdxai bench rise --frames 92 --bins 513 --width 0.25 --threads 1
--no-naive`` on the 2-core development machine (one other single-thread job running):
914,000 page faults, 1.2 s system time of 5.3 s and 606 masks/s by default; 91,000 faults,
0.18 s and 832 masks/s with the thresholds below. The price is that up to
:data:`TRIM_THRESHOLD_BYTES` of freed memory stays with the process until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

#: Requests up to this size come from the heap and are reused (glibc's M_MMAP_THRESHOLD).
MMAP_THRESHOLD_BYTES = 256 * 2**20
#: Free memory at the heap's top that is kept rather than returned (M_TRIM_THRESHOLD).
TRIM_THRESHOLD_BYTES = 2**30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
#: Environment variables by which a user already sets these thresholds; they win.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_large_buffers() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (module docstring).

    Does nothing on other C libraries, or where the user set a threshold through the
    environment (:data:`USER_SETTINGS`).

    Returns
    -------
    bool
        True when both thresholds were set.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
