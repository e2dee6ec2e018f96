"""Interrupts of a planflow command: Ctrl-C, SIGTERM and SIGHUP all end it the same way.

`timeout`, systemd, docker and CI stop a process with SIGTERM, a closed terminal sends SIGHUP;
Python's default for both is to die on the spot, skipping every `finally`, so a run's workers
would run on and its keys and embedded server stay. `install_handlers()` (the CLI calls it) turns
both into `Terminated`, a `KeyboardInterrupt`, so every clean-up path that handles Ctrl-C -
stopping the run's workers, deleting its keys, stopping the embedded Redis - handles them too;
the CLI then exits 128 + the signal's number (130, 143, 129).

Clean-up itself must not be cut short by the next signal (an impatient second Ctrl-C, a
supervisor repeating SIGTERM): inside `deferred_interrupts()` these signals are noted and
logged, not raised.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

log = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""The signals that interrupt a command."""


class Terminated(KeyboardInterrupt):
    """The command was asked to stop by a signal (`signum`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def install_handlers() -> None:
    """SIGTERM and SIGHUP raise `Terminated` in the main thread (Ctrl-C keeps raising
    KeyboardInterrupt). A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise)


def exit_code_of(err: KeyboardInterrupt) -> int:
    """What a command interrupted by `err` exits with: 128 + the signal (130 for Ctrl-C)."""
    return err.exit_code if isinstance(err, Terminated) else 128 + signal.SIGINT


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block without being interrupted by HANDLED signals (noted and logged; the
    interrupt being handled is re-raised by the caller anyway). A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    def note(signum: int, frame: FrameType | None) -> None:
        log.warning("%s received while cleaning up; finishing the clean-up first",
                    signal.Signals(signum).name)

    previous = {s: signal.signal(s, note) for s in HANDLED}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
