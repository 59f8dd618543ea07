"""The restart limiter backs off exponentially and pauses long when restarts come too fast."""

from edge_agent.restart_limiter import RestartLimiter


def test_exponential_then_capped() -> None:
    lim = RestartLimiter(initial_s=1, max_s=10, limit=100, window_s=60)
    assert [lim.next_delay(t) for t in range(6)] == [1, 2, 4, 8, 10, 10]
    lim.reset()
    assert lim.next_delay(7) == 1


def test_too_many_restarts_in_window() -> None:
    lim = RestartLimiter(initial_s=1, max_s=30, limit=3, window_s=60)
    delays = []
    for t in (0, 1, 2, 3):
        lim.reset()  # each run "worked" briefly, so plain back-off stays short
        delays.append(lim.next_delay(t))
    assert delays == [1, 1, 1, 30]
    assert lim.too_fast
    lim.reset()
    assert lim.next_delay(200) == 1  # the old restarts left the window
