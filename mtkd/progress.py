"""Progress for people: one place, on stderr (stdout stays for results tables). On a terminal a
run's epochs are a tqdm bar with the latest numbers beside it; elsewhere (a log file, a pipe, a
scheduler's output) about five plain lines per run, which read well after the fact."""

from __future__ import annotations

import os
import sys
from typing import Callable

# MTKD_PROGRESS=lines keeps plain lines on a terminal too.
PROGRESS_ENV = "MTKD_PROGRESS"


# The bar being drawn, if any: a line printed meanwhile (a stop, a failed row, the next row's
# news) first closes it where it stands, so the line starts on a line of its own.
_open_bar = None


def stderr_line(line: str) -> None:
    close_bar()
    print(line, file=sys.stderr, flush=True)


def close_bar() -> None:
    global _open_bar
    if _open_bar is not None:
        _open_bar.close()
        _open_bar = None


def reports_epoch(epoch: int, epochs: int) -> bool:
    """Whether epoch `epoch` (1-based) of `epochs` gets a progress line: about five per run, every
    fifth of the epochs, and the last."""
    return epoch % max(1, epochs // 5) == 0 or epoch == epochs


def shows_bars() -> bool:
    """Bars only where a person watches: stderr is a terminal and not turned off."""
    return sys.stderr.isatty() and os.environ.get(PROGRESS_ENV, "").lower() != "lines"


def epoch_reporter(name: str, epochs: int, log: Callable[[str], None],
                   describe: Callable[[dict], str]) -> Callable[[dict], None]:
    """The `on_epoch` callback of one row: `describe(record)` (e.g. "mean val accuracy 0.912")
    beside a bar of the row's epochs on a terminal, or in a line about every fifth of the run.
    A bar needs the default log (`stderr_line`); another `log` (a test's, a caller's) gets lines.
    A resumed run's bar starts at the epoch it resumed from."""
    bar = None

    def report(record: dict) -> None:
        nonlocal bar
        global _open_bar
        epoch = int(record["epoch"])
        if log is stderr_line and shows_bars():
            from tqdm import tqdm

            if bar is None or bar is not _open_bar:  # first epoch, or a line closed it: a new bar from here
                close_bar()
                bar = tqdm(total=epochs, initial=epoch - 1, desc=f"  {name}", unit="epoch", file=sys.stderr,
                           dynamic_ncols=True, leave=True)
                _open_bar = bar
            bar.set_postfix_str(describe(record), refresh=False)
            bar.update(epoch - bar.n)
            if epoch >= epochs:
                close_bar()
        elif reports_epoch(epoch, epochs):
            log(f"  {name}: epoch {epoch}/{epochs}, {describe(record)}")

    return report


__all__ = ["PROGRESS_ENV", "close_bar", "epoch_reporter", "reports_epoch", "shows_bars", "stderr_line"]
