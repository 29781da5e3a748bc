"""The CLI's one error type: a sentence for stderr and the exit status that goes with it."""

from __future__ import annotations


class CliError(Exception):
    """A failure to report as `proxyd: <message>` on stderr, exiting with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
