"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import ctypes
import signal
import sys
from types import FrameType

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` for Popen: the kernel sends the child SIGTERM when its parent dies.

    Covers a parent killed with SIGKILL, which runs no cleanup code. Linux only; elsewhere the
    parent's own shutdown path is all there is.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks run and children are stopped.

    uvicorn re-raises the signal it caught once it has shut down; with the default handler that
    would end the process before the caller's cleanup.
    """

    def _raise(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)
