"""Which TCP ports a set of processes listens on, read from /proc: holds us to loopback."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    pid: int
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        ip = ipaddress.ip_address(self.address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return ip.is_loopback

    def line(self) -> str:
        return f"pid {self.pid} listens on {self.address}:{self.port}"


def parse_proc_address(hex_address: str) -> tuple[str, int]:
    """``0100007F:1F90`` -> ("127.0.0.1", 8080); IPv6 in /proc is four little-endian words."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        address = str(ipaddress.IPv4Address(raw[::-1]))
    else:
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        address = str(ipaddress.IPv6Address(words))
    return address, int(port, 16)


def listening_inodes(proc: Path = Path("/proc")) -> dict[str, tuple[str, int]]:
    """Socket inode -> (address, port) for every listening TCP socket of this network namespace."""
    found: dict[str, tuple[str, int]] = {}
    for table in ("net/tcp", "net/tcp6"):
        with contextlib.suppress(OSError), open(proc / table) as handle:
            for line in handle.readlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[3] == LISTEN:
                    found[parts[9]] = parse_proc_address(parts[1])
    return found


def listeners(pids: Iterable[int], proc: Path = Path("/proc")) -> list[Listener]:
    """Every listening TCP socket held by one of ``pids``."""
    inodes = listening_inodes(proc)
    result: set[Listener] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in (proc / str(pid) / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        address, port = inodes[target[8:-1]]
                        result.add(Listener(pid, address, port))
    return sorted(result, key=lambda x: (x.port, x.pid))
