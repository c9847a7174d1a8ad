"""GracefulInterrupt: the first SIGINT is a request, the second interrupts at once."""

from __future__ import annotations

import io
import os
import signal
import threading

import pytest

from loopwise.train.fit.interrupt import GracefulInterrupt


def test_first_sigint_sets_the_flag_second_raises_and_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt), GracefulInterrupt(stream=stream) as guard:
        assert guard.active
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.requested  # the loop goes on to finish its step
        assert "finishing the current step and saving a checkpoint" in stream.getvalue()
        os.kill(os.getpid(), signal.SIGINT)  # second Ctrl-C: at once
        pytest.fail("the second SIGINT did not interrupt")
    assert signal.getsignal(signal.SIGINT) is before


def test_off_the_main_thread_it_is_inert() -> None:
    seen: list[bool] = []

    def work() -> None:
        with GracefulInterrupt() as guard:
            seen.append(guard.active)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [False]


def test_broken_stream_does_not_stop_the_request() -> None:
    stream = io.StringIO()
    stream.close()
    with GracefulInterrupt(stream=stream) as guard:
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.requested
