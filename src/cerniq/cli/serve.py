"""``cerniq api``, ``cerniq worker`` and ``cerniq run``: the processes of DESIGN §3."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from cerniq.config import Settings, get_settings
from cerniq.logging import configure_logging, get_logger


def _install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is optional off Linux
        pass


async def serve_api(settings: Settings) -> None:
    import uvicorn

    from cerniq.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    await server.serve()


def _quiet_server_class() -> type:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """A uvicorn server that leaves signal handling to us (API and worker stop together)."""

        def install_signal_handlers(self) -> None:
            return None

    return QuietServer


async def serve_all(settings: Settings, *, queues: list[str] | None = None) -> None:
    """API and worker in one process, stopped together by SIGTERM/SIGINT."""
    import signal

    import uvicorn

    from cerniq.app import create_app
    from cerniq.worker.runner import WorkerProcess

    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = _quiet_server_class()(config)
    worker = WorkerProcess(settings, queues=queues)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.should_exit = True
        worker.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    await worker.start()
    api_task = asyncio.create_task(server.serve())
    await worker.wait()
    server.should_exit = True
    await worker.stop()
    await api_task


def register(root: typer.Typer) -> None:
    @root.command()
    def api(
        host: Annotated[str | None, typer.Option(help="Bind address (CERNIQ_API_HOST)")] = None,
        port: Annotated[int | None, typer.Option(help="Port (CERNIQ_API_PORT, default 64000)")] = None,
    ) -> None:
        """Serve the HTTP API, webhooks, console and /metrics."""
        settings = get_settings()
        if host or port:
            settings = settings.model_copy(
                update={k: v for k, v in {"api_host": host, "api_port": port}.items() if v}
            )
        configure_logging(settings)
        _install_uvloop()
        asyncio.run(serve_api(settings))

    @root.command()
    def worker(
        queues: Annotated[
            str | None,
            typer.Option(
                help="Comma-separated queue names to consume (default: all; 'phones' = every phone queue)"
            ),
        ] = None,
        grace: Annotated[float, typer.Option(help="Seconds in-flight jobs get to finish on SIGTERM")] = 25.0,
        lock_duration_ms: Annotated[
            int, typer.Option(help="Job lock (ms); a dead worker's job is recovered after it expires")
        ] = 30000,
        stalled_interval_ms: Annotated[
            int, typer.Option(help="How often (ms) stalled jobs are looked for and returned to the queue")
        ] = 30000,
    ) -> None:
        """Consume the queues and run the scheduler. Run as many as you like, on any host."""
        from cerniq.kit.db import set_pre_ping
        from cerniq.worker.runner import run_worker

        settings = get_settings()
        configure_logging(settings)
        _install_uvloop()
        set_pre_ping(False)  # a job that meets a dropped connection is retried
        names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
        get_logger("cerniq.worker").info("worker.starting", queues=names or "all")
        asyncio.run(
            run_worker(
                settings,
                queues=names,
                grace_seconds=grace,
                lock_duration_ms=lock_duration_ms,
                stalled_interval_ms=stalled_interval_ms,
            )
        )

    @root.command("run")
    def run_cmd() -> None:
        """API and worker together, for one-machine installs (embedded stores when none answers)."""
        from pathlib import Path

        from cerniq.kit.embedded import ensure_stores
        from cerniq.kit.migrate import ensure_database_exists, upgrade_database

        stores = ensure_stores(Path(get_settings().data_dir))
        get_settings.cache_clear()
        settings = get_settings()
        if stores.env:
            ensure_database_exists(settings.database_url)
            upgrade_database(settings.database_url)
        configure_logging(settings)
        _install_uvloop()
        asyncio.run(serve_all(settings))
