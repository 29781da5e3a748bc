"""Keeping child processes from outliving proxyd.

Workers run in their own session (so a terminal's Ctrl-C reaches only the supervisor, which stops
them in order), so a signal to the supervisor's process group misses them, and Linux's
PR_SET_PDEATHSIG cannot help: trio starts processes from a worker thread, and the death signal
follows that thread, not the process. So a worker watches its parent instead: when it is
re-parented (the supervisor died, even by SIGKILL) it drains and exits like on SIGTERM.
"""

from __future__ import annotations

import logging
import os

import trio

log = logging.getLogger("proxyd.workers")


async def watch_parent(shutdown: trio.Event, interval: float = 1.0) -> None:
    """Set shutdown once our parent process is gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        await trio.sleep(interval)
    log.warning("the supervisor (pid %d) is gone: draining and exiting", parent)
    shutdown.set()
