"""What a forked helper process (the ingest parse worker, a template render) calls first: die
with its parent, and stay within a memory and CPU budget.

A child that outlives its parent holds the parent's inherited files (the catalog, the caller's
stdout) and may loop forever on hostile input. So, in the child:

- :func:`die_with_parent`: on Linux the kernel sends ``SIGKILL`` when the thread that started
  the child exits, whatever killed it (``kill -9`` included; ``PR_SET_PDEATHSIG`` through
  ``prctl``); elsewhere the child's own reads see EOF once the parent's pipe end is closed,
  which is why the child also closes its copy of that end (:func:`close_inherited`);
- :func:`limit_memory`: ``RLIMIT_AS`` at the current size plus a budget (Linux): an allocation
  past it is a ``MemoryError`` instead of the machine swapping;
- :func:`limit_cpu`: ``RLIMIT_CPU``: the kernel ends a child that computes for longer, even with
  no parent left to do it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

_MB = 1024 * 1024
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent exits (Linux); exit now when the
    parent ``parent_pid`` is already gone (it died before the request took effect)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no libc prctl: the pipe's EOF still ends the child
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def close_inherited(*fds: int) -> None:
    """Close the parent's ends of pipes this forked child inherited (so that it sees EOF when the
    parent is gone)."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def limit_memory(memory_mb: int) -> None:
    """Cap the address space at its current size plus ``memory_mb`` (Linux; elsewhere, and for
    ``memory_mb <= 0``, nothing)."""
    if memory_mb <= 0:
        return
    try:
        import resource

        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return
    limit = current + memory_mb * _MB
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def limit_cpu(seconds: int) -> None:
    """End this process (``SIGXCPU``, then ``SIGKILL``) after ``seconds`` more of CPU time (POSIX)."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime)
        _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        limit = used + max(1, seconds)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))
    except (ImportError, OSError, ValueError):
        return
