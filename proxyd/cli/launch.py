"""The `proxyd` console script and `python -m proxyd`.

`proxyd serve` is started without importing the command modules (and their HTTP client), so a
worker supervisor stays small in memory; every other command goes to proxyd.cli.main.
"""

from __future__ import annotations

import sys


def serve() -> int:
    """`proxyd serve`: run proxyd with the settings from the environment and .env."""
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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["serve"]:
        return serve()
    from proxyd.cli.main import main as cli_main

    return cli_main(args)
