"""Graceful stops: a signal asks a run to stop at its next epoch boundary, with a checkpoint.

Ctrl-C (SIGINT), SIGTERM and SIGUSR1 (the preemption notice a scheduler sends before its grace
period ends, e.g. SLURM's `--signal=USR1@120`) only set a flag here. A Python exception raised
inside a signal handler can land anywhere, in the middle of an XLA compilation too (where one
ended in a segfault); the flag is read instead at points where stopping is safe:

- at an epoch boundary of a training loop (`mtkd.distill.seed_loop`), which saves a checkpoint
  first, so the rerun with `--resume` continues from that very epoch;
- between the strategies (or teachers) of a command, after the finished one's results are written.

Either raises `RunStopped`, which derives from BaseException (like KeyboardInterrupt) so that the
per-row `except Exception` of an ablation does not mistake it for a failed row. The command line
prints its one line and exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM). A
second signal stops at once, with the same code.

Only the command line installs the handlers (`handling_stops`); a library caller keeps Python's
own KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGUSR1", None)) if s is not None)

_requested: int | None = None  # the first stop signal received, while the handlers are installed


class RunStopped(BaseException):
    """A run stopped on request at a safe point; `exit_code` is 128 + the signal's number."""

    def __init__(self, signum: int, where: str):
        self.signum, self.where = signum, where
        super().__init__(f"stopped {where}; rerun the same command with --resume")

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)


def requested() -> int | None:
    """The stop signal received (its number), or None."""
    return _requested


def _handle(signum, frame) -> None:
    global _requested
    name = signal.Signals(signum).name
    if _requested is not None:  # the second one: the user does not want to wait
        print(f"mtkd: {name} again: stopping at once (the last checkpoint stays; --resume continues from it)",
              file=sys.stderr, flush=True)
        os._exit(128 + int(signum))
    _requested = signum
    print(f"mtkd: {name} received: stopping at the next epoch boundary, after a checkpoint "
          f"({'Ctrl-C' if signum == signal.SIGINT else name} again stops at once)", file=sys.stderr, flush=True)


@contextlib.contextmanager
def handling_stops():
    """Within it, the stop signals set the flag above (in the main thread only, where Python
    allows handlers); the previous handlers come back on exit."""
    global _requested
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _requested = None


def stop_point(where: str) -> None:
    """Raises `RunStopped` if a stop was asked for (process 0's word, on every process of a
    multi-process run, so that all stop at the same point)."""
    from mtkd.distributed import agree_number

    signum = agree_number(_requested or 0)
    if signum:
        raise RunStopped(signum, where)


__all__ = ["RunStopped", "STOP_SIGNALS", "handling_stops", "requested", "stop_point"]
