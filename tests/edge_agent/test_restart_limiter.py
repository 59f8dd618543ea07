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


def test_a_healthy_run_forgets_its_history() -> None:
    """A camera that drops out for 5 s now and then comes back as fast the tenth time."""
    lim = RestartLimiter(initial_s=1, max_s=60, limit=10, window_s=300)
    for outage in range(10):
        t0 = outage * 30.0
        delays = [lim.next_delay(t0 + k) for k in range(4)]  # four failed connects
        assert delays == [1, 2, 4, 8]
        lim.forget()  # then it recorded for a while
    assert not lim.too_fast


def test_failed_connects_back_off_but_do_not_count_as_restarts() -> None:
    lim = RestartLimiter(initial_s=1, max_s=60, limit=3, window_s=300)
    delays = [lim.next_delay(t, restart=False) for t in range(8)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert not lim.too_fast
