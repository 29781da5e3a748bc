"""The `proxyd` console script and `python -m proxyd`.

`proxyd serve` is started without importing the command modules (and their HTTP client), so a
worker supervisor stays small in memory; every other command goes to proxyd.cli.main.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["serve"]:
        from proxyd.cli.serve import serve

        return serve()
    from proxyd.cli.main import main as cli_main

    return cli_main(args)
