"""How many CPUs this process may use (affinity-aware): the one count every thread pool here sizes itself by."""

from __future__ import annotations

import os


def n_cpus() -> int:
    """CPUs this process may use (its affinity mask on Linux, else the machine's count); at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
