"""Bookkeeping of produced records: which are acknowledged, which failed, without callbacks.

In at-least-once mode a commit has three steps that must happen in order for each *window* (the
records processed between two commits): (1) every prediction and dead letter of the window is
acknowledged by the broker, (2) then the window's changelog (the window state as of its last
offsets, captured when it closed) is written and acknowledged, (3) then its offsets are committed.
Waiting for each step inside the loop stalls input for a few round trips every commit; instead
closed windows queue here and advance as acknowledgements arrive, oldest first. In exactly-once
mode the open window's ``outputs`` are checked for failures before the transaction commits.

Acknowledgements are read off the producer's futures when the loop asks (``Sent.settled``), a
few tens of nanoseconds per record, instead of a callback and an errback per record (about a
microsecond: two registrations in the loop, a call under the GIL in the producer's I/O thread).

Pure: futures are anything with ``is_done`` and ``exception`` (kafka-python's
``FutureRecordMetadata`` fits); the processor does the Kafka calls.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

OUTPUTS_IN_FLIGHT = 0
CHANGELOG_IN_FLIGHT = 1


class SendFuture(Protocol):
    """What is read of a produced record's future (written by the producer's I/O thread)."""

    is_done: bool
    exception: BaseException | None


class Sent:
    """Futures of produced records, checked in send order; done ones are let go.

    Holding a window's worth of futures (tens of thousands, a second) costs the producer
    measurably more per send than letting each go once done, as a plain producer does; so only
    futures not yet known to be done are kept.
    """

    __slots__ = ("_futures", "_checked", "_count", "failure")

    def __init__(self) -> None:
        self._futures: list[SendFuture] = []
        self._checked = 0  # futures before this index are done
        self._count = 0  # futures ever added
        self.failure: BaseException | None = None  # the first failure seen

    def add(self, futures: list[SendFuture]) -> None:
        self._futures.extend(futures)
        self._count += len(futures)

    def __len__(self) -> int:
        """How many records were added (done or not)."""
        return self._count

    def settled(self) -> bool:
        """True once every future added so far is done; records the first failure seen.

        Stops at the first future not done: later ones are looked at again on the next call,
        so each is read about once however often this is asked.
        """
        futures = self._futures
        i, n = self._checked, len(futures)
        while i < n:
            fut = futures[i]
            if not fut.is_done:
                break
            if fut.exception is not None and self.failure is None:
                self.failure = fut.exception
            i += 1
        if i >= 1024 or i == n:
            del futures[:i]
            i = 0
        self._checked = i
        return i == len(futures)


@dataclass(eq=False)
class AckWindow:
    """Records processed between two commits, and the futures of what they produced."""

    offsets: dict[int, int] = field(default_factory=dict)  # partition -> NEXT offset to read
    changelog: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)
    predictions: int = 0
    outputs: Sent = field(default_factory=Sent)  # predictions and dead letters
    changelog_sent: int = 0  # how many of ``changelog`` are handed to the producer
    changelog_futures: Sent = field(default_factory=Sent)
    stage: int = OUTPUTS_IN_FLIGHT


class AckQueue:
    """The open window being filled, and closed windows waiting for acknowledgements."""

    def __init__(self) -> None:
        self.open = AckWindow()
        self.closed: deque[AckWindow] = deque()

    def close(
        self,
        offsets: dict[int, int],
        changelog: list[tuple[int, bytes, bytes | None]],
        predictions: int,
    ) -> None:
        win = self.open
        win.offsets = dict(offsets)
        win.changelog = changelog
        win.predictions = predictions
        self.closed.append(win)
        self.open = AckWindow()

    def clear(self) -> None:
        """Forget every window (after a failure the processor rewinds to the last commit)."""
        self.open = AckWindow()
        self.closed.clear()
