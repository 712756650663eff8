"""``cerniq sandbox``: serve the fake vendors (TimelinesAI, Slack, ...) on one port."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(root: typer.Typer) -> None:
    """Add the top-level ``sandbox`` command to the ``cerniq`` CLI."""

    @root.command("sandbox")
    def sandbox(
        port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 64100,
        host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
        accounts: Annotated[int, typer.Option(help="TimelinesAI accounts +40700000001...")] = 20,
        seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 1,
        reply_probability: Annotated[float, typer.Option(help="Chance a contact replies.")] = 0.3,
        reply_delay: Annotated[float, typer.Option(help="Seconds before a contact replies.")] = 2.0,
        reply_mix: Annotated[
            str | None,
            typer.Option(help='Reply kind weights as JSON, e.g. \'{"positive": 1, "opt_out": 1}\'.'),
        ] = None,
        time_scale: Annotated[float, typer.Option(help="Multiplies every simulated delay.")] = 1.0,
        token: Annotated[str | None, typer.Option(help="TimelinesAI API token accepted.")] = None,
        invalid_phone_pattern: Annotated[
            str, typer.Option(help="Regex of recipients not on WhatsApp (accepted, then Failed).")
        ] = r"0000$",
        rate_limit: Annotated[bool, typer.Option(help="Enforce vendor rate limits.")] = True,
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    ) -> None:
        """Serve the provider sandbox: TimelinesAI at /timelinesai, Slack at /slack, controls at /_control."""
        from cerniq.sandbox.server import serve_sandbox
        from cerniq.sandbox.state import SandboxOptions

        values: dict[str, object] = {
            "accounts": accounts,
            "seed": seed,
            "reply_probability": reply_probability,
            "reply_delay": reply_delay,
            "time_scale": time_scale,
            "invalid_phone_pattern": invalid_phone_pattern,
            "rate_limit_enabled": rate_limit,
        }
        if token:
            values["timelinesai_token"] = token
        if reply_mix:
            try:
                values["reply_mix"] = json.loads(reply_mix)
            except ValueError as exc:
                raise typer.BadParameter(f"--reply-mix is not JSON: {exc}") from exc
        options = SandboxOptions.model_validate(values)
        typer.echo(
            f"Sandbox on http://{host}:{port}  (TimelinesAI base URL http://{host}:{port}/timelinesai, "
            f"token {options.timelinesai_token}; controls at /_control; OpenAPI at /docs)"
        )
        serve_sandbox(options, host=host, port=port, log_level=log_level)
