"""Polling with a deadline: the one way tests wait for something to become true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it is truthy and return its value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """The same inside an event loop: the loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


async def wait_while_progressing(predicate: Callable[[], Any], progress: Callable[[], Any],
                                 stall: float, what: str, cap: float = 600.0) -> Any:
    """:func:`wait_until` for long work on a shared machine: poll ``predicate`` and fail only
    when ``progress()`` (a count of work done) has not moved for ``stall`` s, or after ``cap``
    s in all. A wall bound on the whole work failed at load 10-14 while the work went on; a
    stall still fails in ``stall`` s, and ``cap`` bounds a crawl."""
    start = last_move = time.monotonic()
    seen = progress()
    while True:
        value = predicate()
        if value:
            return value
        now = time.monotonic()
        current = progress()
        if current != seen:
            seen, last_move = current, now
        if now - last_move > stall:
            raise AssertionError(f"no progress for {stall}s waiting for {what} (at {seen})")
        if now - start > cap:
            raise AssertionError(f"still not done after {cap}s waiting for {what} (at {seen})")
        await asyncio.sleep(0.05)
