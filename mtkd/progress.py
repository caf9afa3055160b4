"""Progress lines for people: one place, on stderr (stdout stays for results tables)."""

from __future__ import annotations

import sys


def stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


__all__ = ["stderr_line"]
