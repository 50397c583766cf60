"""The test kit's own promise that parallel workers rely on: a port it hands out is free and
from the asking worker's share, never one the kernel could give another process meanwhile."""

from __future__ import annotations

import socket
from contextlib import ExitStack

import pytest

from tests.support import PORTS, free_port

WORKERS = len(PORTS) // 3


def test_free_port_passes_over_the_taken_ports_of_its_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A share of three ports, two of them listened on (by this test, or already by another
    program): the one left is the answer, every time."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(WORKERS))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    *taken, left = PORTS[5::WORKERS]
    with ExitStack() as held:
        for port in taken:
            listener = held.enter_context(socket.socket())
            try:
                listener.bind(("127.0.0.1", port))
            except OSError:
                continue
            listener.listen()

        answers = {free_port() for _ in range(20)}

    assert answers == {left}
