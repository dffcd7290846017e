"""Shared test helpers."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest


class Hang(Exception):
    """A bounded call ran past its time limit."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def time_limit() -> Callable[[float], AbstractContextManager[None]]:
    """``with time_limit(2): ...`` raises ``Hang`` in the block once it runs past 2 s (main thread only)."""
    return _time_limit
