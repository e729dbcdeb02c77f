"""Large CPU buffers are reused from the heap once glibc's thresholds are raised."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from asdxai import _allocator

# Allocates and frees a 64 MiB buffer 10 times, after 20 times to let the heap settle (the
# first few requests grow it: torch's aligned requests may not fit the hole the last one
# left), and prints the page faults the 10 took.
_PROBE = """
import resource, sys, torch
from asdxai._allocator import keep_large_buffers
applied = keep_large_buffers() if sys.argv[1] == "tuned" else False
for _ in range(20):
    torch.ones(2**23, dtype=torch.float64).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.ones(2**23, dtype=torch.float64).sum()  # 64 MiB of float64, freed at once
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
_PAGES = 2**26 // 4096  # the pages of one buffer


def _probe(mode: str, **env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items() if k not in _allocator.USER_SETTINGS}
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_buffers_are_reused_instead_of_mapped_again():
    applied, tuned = _probe("tuned")
    _, default = _probe("default")
    assert applied
    assert default > 8 * _PAGES  # by default each of the 10 buffers is fresh, zero-filled pages
    assert tuned < 2 * _PAGES  # tuned: the settled heap's pages are reused


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_a_users_own_threshold_wins():
    applied, faults = _probe("tuned", MALLOC_MMAP_THRESHOLD_="131072")
    assert not applied and faults > 8 * _PAGES
