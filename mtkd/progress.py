"""Progress lines for people: one place, on stderr (stdout stays for results tables)."""

from __future__ import annotations

import sys


def stderr_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def reports_epoch(epoch: int, epochs: int) -> bool:
    """Whether epoch `epoch` (1-based) of `epochs` gets a progress line: about five per run, every
    fifth of the epochs, and the last."""
    return epoch % max(1, epochs // 5) == 0 or epoch == epochs


__all__ = ["reports_epoch", "stderr_line"]
