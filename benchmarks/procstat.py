"""Per-process CPU time, RSS and CPU pinning read from ``/proc`` (Linux only, no psutil needed).

Why whole process trees: ``routeiq serve`` may run its worker under a supervisor (gunicorn) or
exec uvicorn directly; summing CPU over the tree and taking the largest RSS in it gives "the
gateway's CPU" and "RSS per worker" either way.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants (scans /proc once)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if (PROC / str(pid)).exists():
            tree.append(pid)
            todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    # After the command name: state(0) ppid(1) ... utime(11) stime(12) in clock ticks.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of a whole process tree."""
    return sum(cpu_seconds(pid) for pid in process_tree(root))


def rss_bytes(pid: int) -> int:
    """VmRSS of one process in bytes (0 if it is gone)."""
    with contextlib.suppress(OSError):
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def worker_rss_bytes(root: int) -> int:
    """The largest RSS in the tree: the worker, whether or not a supervisor sits above it."""
    return max((rss_bytes(pid) for pid in process_tree(root)), default=0)


def pin_tree(root: int, cpus: set[int]) -> bool:
    """Pin every thread of every process in the tree; new threads inherit the mask."""
    pinned = False
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            for task in (PROC / str(pid) / "task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)
                    pinned = True
    return pinned
