"""ack_window.Sent: acknowledgements and failures read off futures, in send order."""

from __future__ import annotations

from dataclasses import dataclass

from stream.ack_window import AckQueue, Sent


@dataclass
class Fut:
    is_done: bool = False
    exception: BaseException | None = None


def test_settled_only_when_every_future_is_done_in_any_completion_order():
    futs = [Fut() for _ in range(4)]
    sent = Sent()
    assert sent.settled()  # nothing sent: nothing to wait for
    sent.add(futs[:3])
    futs[2].is_done = True  # completes out of order
    assert not sent.settled()
    futs[0].is_done = futs[1].is_done = True
    assert sent.settled()
    sent.add(futs[3:])
    assert not sent.settled()
    futs[3].is_done = True
    assert sent.settled() and sent.failure is None and len(sent) == 4


def test_first_failure_is_kept_even_behind_a_pending_future():
    futs = [Fut(), Fut(True, ValueError("first")), Fut(True, ValueError("second"))]
    sent = Sent()
    sent.add(futs)
    assert not sent.settled() and sent.failure is None  # the scan stops at the pending one
    futs[0].is_done = True
    assert sent.settled()
    assert str(sent.failure) == "first"


def test_queue_close_moves_the_open_window_and_clear_forgets_all():
    q = AckQueue()
    q.open.outputs.add([Fut(True)])
    first = q.open
    q.close({0: 10}, [(0, b"s", b"state")], predictions=1)
    assert list(q.closed) == [first] and first.offsets == {0: 10} and q.open is not first
    assert len(q.open.outputs) == 0
    q.clear()
    assert not q.closed


def test_done_futures_are_let_go_and_the_count_stays():
    import gc
    import weakref

    sent = Sent()
    fut = Fut(True)
    ref = weakref.ref(fut)
    sent.add([fut])
    del fut
    assert sent.settled()
    gc.collect()
    assert ref() is None  # a window's worth of done futures is not kept alive
    assert len(sent) == 1
