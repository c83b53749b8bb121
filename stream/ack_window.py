"""Bookkeeping for at-least-once commits that do not stall the loop.

In at-least-once mode a commit has three steps that must happen in order for each *window* (the
records processed between two commits): (1) every prediction and dead letter of the window is
acknowledged by the broker, (2) then the window's changelog (the window state as of its last
offsets, captured when it closed) is written and acknowledged, (3) then its offsets are committed.
Waiting for each step inside the loop stalls input for a few round trips every commit; instead
closed windows queue here and advance as the producer's acknowledgements arrive, oldest first.

Pure: callbacks count acknowledgements; the processor does the Kafka calls.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

OUTPUTS_IN_FLIGHT = 0
CHANGELOG_IN_FLIGHT = 1


@dataclass(eq=False)
class AckWindow:
    """Records processed between two commits, and how many of their outputs are acknowledged.

    ``acked`` and ``changelog_acked`` are written only by the producer's I/O thread (via the
    ``ack`` callbacks) and read by the loop; a single writer needs no lock.
    """

    offsets: dict[int, int] = field(default_factory=dict)  # partition -> NEXT offset to read
    changelog: list[tuple[int, str, bytes | None]] = field(default_factory=list)
    predictions: int = 0
    sent: int = 0
    acked: int = 0
    changelog_sent: int = 0
    changelog_acked: int = 0
    stage: int = OUTPUTS_IN_FLIGHT

    def ack(self, _metadata: object) -> None:
        self.acked += 1

    def ack_changelog(self, _metadata: object) -> None:
        self.changelog_acked += 1

    @property
    def outputs_done(self) -> bool:
        return self.acked >= self.sent

    @property
    def changelog_done(self) -> bool:
        return self.changelog_acked >= self.changelog_sent


class AckQueue:
    """The open window being filled, and closed windows waiting for acknowledgements."""

    def __init__(self) -> None:
        self.open = AckWindow()
        self.closed: deque[AckWindow] = deque()

    def close(
        self,
        offsets: dict[int, int],
        changelog: list[tuple[int, str, bytes | None]],
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
