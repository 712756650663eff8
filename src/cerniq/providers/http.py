"""The HTTP connection pool every vendor client is built on: one ``httpx.AsyncClient`` with
bearer authentication and JSON, closed by ``aclose()`` or by leaving ``async with``.

Requests go through :meth:`BearerApiClient._send`. When no proxy from the environment applies,
it hands a ready request to the client's transport (the connection pool) itself: the client's
own layers (URL merging, cookies, auth and redirect flows) cost about a quarter of a request's
CPU, about 0.1 ms, and a WhatsApp send is one request. Through a proxy, the client sends it.
"""

from __future__ import annotations

import ssl
import urllib.request
from functools import cache
from types import TracebackType
from typing import Any, Self

import httpx


@cache
def _ssl_context(trust_env: bool) -> ssl.SSLContext:
    """One verifying TLS context per process (loading the CA bundle costs about 18 ms, and the
    send path opens a client per phone)."""
    return httpx.create_ssl_context(trust_env=trust_env)


_URL_CACHE = 256


def _environment_proxies() -> bool:
    """Whether ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` (or their lower-case forms) are set."""
    return any(scheme in urllib.request.getproxies() for scheme in ("http", "https", "all"))


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
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        # A client given a transport ignores the environment's proxies: only build one without them.
        proxied = trust_env and _environment_proxies()
        self._transport = (
            None
            if proxied
            else httpx.AsyncHTTPTransport(verify=_ssl_context(trust_env), limits=limits, trust_env=trust_env)
        )
        self._http = httpx.AsyncClient(
            base_url=self.base_url + api_prefix + "/",
            headers={
                "Authorization": f"Bearer {secret}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            timeout=timeout,
            limits=limits,
            verify=_ssl_context(trust_env),
            transport=self._transport,
            trust_env=trust_env,
        )
        self._extensions = {"timeout": self._http.timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request to ``path`` under the API root, its body read; raises what httpx raises."""
        if self._transport is None:
            return await self._http.request(method, path, params=params, json=json, headers=headers)
        request = httpx.Request(
            method,
            self._url(path),
            params=params,
            json=json,
            headers=self._headers(headers),
            extensions=dict(self._extensions),  # a request's own: the pool may add to it
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    def _headers(self, extra: dict[str, str] | None) -> httpx.Headers:
        if not extra:
            return self._http.headers
        merged = self._http.headers.copy()
        merged.update(extra)
        return merged

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of ``path``, merged under the API root as the client merges it
        (parsing one costs about 20 µs, and the paths repeat)."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(path)
            if url.is_relative_url:
                base = self._http.base_url
                url = base.copy_with(raw_path=base.raw_path + url.raw_path.lstrip(b"/"))
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            self._urls[path] = url
        return url

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
