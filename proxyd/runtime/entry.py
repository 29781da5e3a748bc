"""`proxyd serve` entry point: picks the worker supervisor (WORKERS > 1) or a single serving
process, and turns startup errors into one line on stderr and exit code 1.

The supervisor path imports only what supervising needs, so it stays small in memory; the
application (API, OAuth, TLS, edge) is loaded by the workers.
"""

from __future__ import annotations

import logging
import resource
import sys

import trio

from proxyd.config import Settings
from proxyd.runtime.errors import StartupError, find_exception

log = logging.getLogger("proxyd")


def raise_open_file_limit() -> None:
    """Every proxied connection needs two descriptors: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)


def run(settings: Settings) -> int:
    """Run proxyd in this process; returns the exit code (errors become one line on stderr)."""
    from proxyd.runtime.workers import ListenError, is_worker
    from proxyd.store.embedded import EmbeddedRedisError

    raise_open_file_limit()
    if settings.workers > 1 and not is_worker():
        from proxyd.runtime.workers import supervise_workers as main
    else:
        from proxyd.runtime.service import serve as main
    try:
        trio.run(main, settings)
    except BaseException as exc:
        problem = find_exception(exc, (StartupError, EmbeddedRedisError, ListenError))
        if problem is not None:
            print(f"proxyd: {problem}", file=sys.stderr)
            return 1
        if find_exception(exc, (KeyboardInterrupt,)) is not None:
            return 0
        raise
    return 0
