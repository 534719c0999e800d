"""free_port: ports taken in turn from one counter shared by every process, each checked free."""

from __future__ import annotations

import socket
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from infra.services import FREE_PORTS, free_port, port_free

pytestmark = pytest.mark.unit


def _ports(counter: Path, n: int) -> list[int]:
    return [free_port(counter=counter) for _ in range(n)]


def test_ports_come_in_turn_and_a_held_one_is_passed_over(tmp_path: Path) -> None:
    counter = tmp_path / "ports"
    first = free_port(counter=counter)
    assert first in FREE_PORTS
    # the next port that is free and the one after it: the first of them is held by a listener
    ahead = [p for p in range(first + 1, first + 50) if port_free("127.0.0.1", p)][:2]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", ahead[0]))
        holder.listen()
        assert free_port(counter=counter) == ahead[1]
    assert counter.read_text(encoding="ascii") == str(ahead[1])


def test_the_counter_comes_round_at_the_end_of_the_range(tmp_path: Path) -> None:
    counter = tmp_path / "ports"
    counter.write_text(str(FREE_PORTS.stop - 1), encoding="ascii")
    expected = next(p for p in FREE_PORTS if port_free("127.0.0.1", p))
    assert free_port(counter=counter) == expected


def test_processes_asking_at_once_are_never_given_the_same_port(tmp_path: Path) -> None:
    counter = tmp_path / "ports"
    with ProcessPoolExecutor(max_workers=4) as pool:
        handed = [p for batch in pool.map(_ports, [counter] * 4, [25] * 4) for p in batch]
    assert len(handed) == 100
    assert len(set(handed)) == 100, sorted(handed)
    assert all(p in FREE_PORTS for p in handed)
