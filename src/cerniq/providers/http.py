"""The HTTP connection pool every vendor client is built on: one ``httpx.AsyncClient`` with
bearer authentication and JSON, closed by ``aclose()`` or by leaving ``async with``."""

from __future__ import annotations

import ssl
from functools import cache
from types import TracebackType
from typing import Self

import httpx


@cache
def _ssl_context(trust_env: bool) -> ssl.SSLContext:
    """One verifying TLS context per process (loading the CA bundle costs about 18 ms, and the
    send path opens a client per phone)."""
    return httpx.create_ssl_context(trust_env=trust_env)


class BearerApiClient:
    """Base of the vendor clients: ``self._http`` sends every request under ``base_url`` +
    ``api_prefix`` with ``Authorization: Bearer <secret>``."""

    def __init__(
        self,
        *,
        secret: str,
        missing_secret: str,
        base_url: str,
        api_prefix: str = "",
        timeout: float | httpx.Timeout,
        max_connections: int,
        user_agent: str,
        trust_env: bool = False,
    ) -> None:
        if not secret:
            raise ValueError(missing_secret)
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url + api_prefix + "/",
            headers={
                "Authorization": f"Bearer {secret}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            trust_env=trust_env,
            verify=_ssl_context(trust_env),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. The client is unusable afterwards."""
        await self._http.aclose()
