"""Is a process still there? Shared by the local server manager and the job recovery."""

from __future__ import annotations

import os

__all__ = ["process_alive"]


def process_alive(pid: int) -> bool:
    """True when ``pid`` is a live process; an exited child of ours is reaped first, so a
    zombie does not count as alive."""
    try:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False  # our child, just exited: now reaped
    except ChildProcessError:
        pass  # not our child: fine
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
