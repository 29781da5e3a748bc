"""`proxyd serve`: load the settings, configure logging and run proxyd in this process."""

from __future__ import annotations

import sys


def serve() -> int:
    """Run proxyd with the settings from the environment and .env; the exit code."""
    from proxyd.config import SettingsError, load_settings
    from proxyd.runtime.entry import run
    from proxyd.runtime.logging_setup import configure_logging

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"proxyd: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format, settings.app_log_buffer)
    return run(settings)
