"""The hot routes answered before FastAPI's routing: ``POST /score`` and
``GET /accounts/{id}/score``.

:class:`LeanRoutes` is an ASGI middleware inside the in-flight limit. It reads the body from
the ASGI ``receive`` channel and calls the same handlers as the FastAPI routes
(:func:`serving.routes.score_answer`, :func:`serving.routes.account_answer`): the same
validation (the champion's pydantic model, from the bytes), the same answers and the same
errors, without the router's walk over every route, FastAPI's dependency solving and the
request object (docs/serving.md, "Where the time goes"). The FastAPI routes stay declared, so
``/openapi.json`` and ``/docs`` describe these two operations as before; a request this
middleware does not take (another path or method, an account id that is not 1 to
``MAX_ACCOUNT_ID`` characters, which FastAPI answers with its 422) goes on to FastAPI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from serving.online import OnlineStore
from serving.routes import account_answer, score_answer
from serving.service import MAX_ACCOUNT_ID, ChampionHolder

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]

ACCOUNTS = "/accounts/"
SCORE = "/score"


def account_id_of(path: str) -> str | None:
    """The id in ``/accounts/{id}/score`` when it is one this path answers (1 to
    ``MAX_ACCOUNT_ID`` characters, no ``/``), else None."""
    if not (path.startswith(ACCOUNTS) and path.endswith(SCORE)):
        return None
    account_id = path[len(ACCOUNTS) : -len(SCORE)]
    if not 1 <= len(account_id) <= MAX_ACCOUNT_ID or "/" in account_id:
        return None
    return account_id


def content_length(scope: MutableMapping[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return str(value.decode("latin-1"))
    return None


async def body_chunks(receive: Any) -> AsyncIterator[bytes]:
    """The request body's chunks from the ASGI ``receive`` channel."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class LeanRoutes:
    """ASGI middleware answering the two scoring routes itself (see the module doc)."""

    def __init__(
        self, app: ASGIApp, holder: ChampionHolder, store: OnlineStore, protected: set[str]
    ) -> None:
        self.app = app
        self.holder = holder
        self.store = store
        self.protected = protected

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "POST" and path == SCORE:
                answer = await score_answer(
                    self.holder, self.protected, content_length(scope), body_chunks(receive)
                )
                await answer(scope, receive, send)
                return
            if method == "GET":
                account_id = account_id_of(path)
                if account_id is not None:
                    answer = await account_answer(self.holder, self.store, account_id)
                    await answer(scope, receive, send)
                    return
        await self.app(scope, receive, send)
