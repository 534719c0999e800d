"""Deterministic event ids, so replaying a source puts the same ids on the stream. Pure module."""

from __future__ import annotations

import hashlib
import uuid

# Fixed namespace for every riskstream source; the name carries source, account, type and time.
NAMESPACE = uuid.UUID("6f1c3a52-2d1e-4a8e-9f59-3c1f0b7e5a11")


def uuid5_text(name: str, namespace: uuid.UUID = NAMESPACE) -> str:
    """``str(uuid.uuid5(namespace, name))`` without building UUID objects (it runs per event)."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_id(source: str, account_id: str, event_type: str, when: str, index: int = 0) -> str:
    """The id of one event: uuid5 of ``source/account/type/time/index``."""
    return uuid5_text(f"{source}/{account_id}/{event_type}/{when}/{index}")
