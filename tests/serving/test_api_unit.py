"""The API's pieces that need no server: the in-flight limit and the online-table rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from serving.api import InFlightLimit
from serving.online import decode, latest_per_account, to_items

pytestmark = pytest.mark.unit


def test_overload_gives_503_with_retry_after_not_a_queue() -> None:
    import httpx

    release = asyncio.Event()

    async def slow(request: object) -> PlainTextResponse:
        await release.wait()
        return PlainTextResponse("done")

    async def health(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/score", slow), Route("/health", health)])
    limited = InFlightLimit(inner, limit=2)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = asyncio.create_task(client.get("/score"))
            second = asyncio.create_task(client.get("/score"))
            for _ in range(100):  # bounded: until both are in flight
                if limited.in_flight == 2:
                    break
                await asyncio.sleep(0)
            third = await client.get("/score")
            health_resp = await client.get("/health")  # exempt: answers while overloaded
            release.set()
            return [await first, await second, third, health_resp]

    first, second, third, health_resp = asyncio.run(scenario())
    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 503
    assert third.headers["retry-after"] == "1"
    assert "limit 2" in third.json()["detail"]
    assert health_resp.status_code == 200
    assert limited.in_flight == 0 and limited.rejected == 1


def test_latest_row_per_account_goes_online_without_the_label() -> None:
    frame = pd.DataFrame(
        {
            "account_id": ["a", "b", "a"],
            "obs_date": [dt.date(2026, 1, 31), dt.date(2026, 1, 31), dt.date(2026, 2, 28)],
            "label": [0, 1, 1],
            "credit_limit": [100.0, 200.0, np.nan],
            "education": ["university", None, "other"],
            "repayment_status_m1": np.array([1, 2, 3], dtype=np.int64),
        }
    )
    latest = latest_per_account(frame)
    assert list(latest["account_id"]) == ["a", "b"]
    items = list(to_items(latest))
    assert [i["account_id"]["S"] for i in items] == ["a", "b"]
    assert items[0]["obs_date"]["S"] == "2026-02-28"
    assert json.loads(items[0]["features"]["S"]) == {
        "credit_limit": None,
        "education": "other",
        "repayment_status_m1": 3,
    }
    assert decode(items[1]) == {
        "credit_limit": 200.0,
        "education": None,
        "repayment_status_m1": 2,
        "obs_date": "2026-01-31",
    }


def test_after_a_load_the_heap_is_frozen_and_new_garbage_still_collected() -> None:
    import gc
    import weakref

    from serving.service import settle_heap

    class Node(list):  # type: ignore[type-arg]
        """Holds itself: a cycle, which only the collector frees."""

        def __init__(self) -> None:
            super().__init__()
            self.append(self)

    loaded = [Node() for _ in range(3)]  # what a champion's load leaves alive
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(node) in tracked for node in loaded)  # full collections skip it
        garbage = weakref.ref(Node())  # a request's cyclic garbage after the load
        gc.collect()
        assert garbage() is None
    finally:
        gc.unfreeze()
