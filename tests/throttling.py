"""A real cloud client that answers "slow down" first: how the tests throttle a consumer."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


class Throttled:
    """A real client whose first ``times`` calls to ``operation`` are refused with the error
    ``code`` (HTTP ``status``), as AWS throttles; every other call goes through."""

    def __init__(
        self, client: Any, operation: str, code: str, times: int, status: int = 400
    ) -> None:
        self._client, self._operation, self._code, self._status = client, operation, code, status
        self.left = times

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)
        if name != self._operation:
            return real

        def call(**kwargs: Any) -> Any:
            if self.left > 0:
                self.left -= 1
                raise ClientError(
                    {
                        "Error": {"Code": self._code, "Message": "slow down"},
                        "ResponseMetadata": {"HTTPStatusCode": self._status},
                    },
                    self._operation,
                )
            return real(**kwargs)

        return call
