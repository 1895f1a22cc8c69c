"""`infracms init`, `serve`, `worker`, `beat`, `db upgrade` and `secrets rotate`."""

from __future__ import annotations

import contextlib
import copy
import gc
import signal
import threading
from typing import Any

import typer

from infracms import db
from infracms.cli.common import engine, require_current_schema, settings
from infracms.services import setup as setup_service

db_app = typer.Typer(help="The database.", no_args_is_help=True)
secrets_app = typer.Typer(help="Secrets at rest.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add these commands to the main app."""
    app.command()(init)
    app.command()(serve)
    app.command()(worker)
    app.command()(beat)
    app.add_typer(db_app, name="db")
    app.add_typer(secrets_app, name="secrets")


def init() -> None:
    """Create the data directory, key files, database and first admin; reuse what exists."""
    current = settings()
    report = setup_service.initialise(current, engine())
    typer.echo(f"data directory: {current.data_dir.resolve()}")
    typer.echo("encryption key: " + ("created" if report.created_keyring else "kept"))
    typer.echo("identity key:   " + ("created" if report.created_identity else "kept"))
    if report.admin_password:
        typer.echo(f"admin account created: user 'admin', password {report.admin_password}")
        typer.echo("(shown once; set INFRACMS_ADMIN_PASSWORD to choose it)")
    elif report.created_admin:
        typer.echo("admin account created: user 'admin' (password from INFRACMS_ADMIN_PASSWORD)")


def serve(
    host: str = typer.Option(None, help="address to listen on (INFRACMS_LISTEN_HOST)"),
    port: int = typer.Option(None, help="port to listen on (INFRACMS_LISTEN_PORT)"),
    workers: int = typer.Option(1, min=1, max=64, help="server processes"),
) -> None:
    """Serve the web UI and API."""
    import uvicorn

    current = settings()
    require_current_schema()
    if current.metrics_listen:
        from infracms.services.metrics import serve_separately

        where = serve_separately(engine=engine(), settings=current)
        if where:
            typer.echo(f"metrics, without authentication: http://{where[0]}:{where[1]}/metrics")
    uvicorn.run(
        "infracms.cli.setup:served_app",
        factory=True,
        workers=workers,
        host=host or current.listen_host,
        port=port or current.listen_port,
        log_level=current.log_level,
        log_config=log_config(current.log_level),
        proxy_headers=False,
        access_log=False,
    )


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, with infracms' and the federation library's loggers on its handler.

    Without this only uvicorn's own loggers reach the console: what the app logs (runs
    failing in the executor, peers refusing a sync) would go to Python's last resort.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name in ("infracms", "federation"):
        config["loggers"][name] = {
            "handlers": ["default"],
            "level": level.upper(),
            "propagate": False,
        }
    return config


def served_app() -> Any:
    """The app as `serve` builds it in each server process: then the GC is quieted."""
    from infracms.app import app_from_environment

    app = app_from_environment()
    quiet_gc()
    return app


GC_THRESHOLDS = (100_000, 50, 1000)


def quiet_gc() -> None:
    """Put what start-up allocated out of the garbage collector's way, and collect less
    often: for server and worker processes, once they have started.

    A started process holds a few hundred thousand long-lived objects (modules, models,
    plugins). With the default thresholds, a request that builds 10,000 hosts' settings
    sets off collections that walk all of them over and over: bench/apply_start.py
    spent half its time there. gc.freeze() keeps the start-up objects out of every
    collection, and a first threshold of 100,000 lets a request's short-lived objects
    go by reference counting first; cycles are still collected, in fewer passes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def worker(
    concurrency: int = typer.Option(2, min=1, max=64, help="runs at once (threads)"),
) -> None:
    """Run a Celery worker for queued runs (needs INFRACMS_BROKER_URL); SIGTERM lets runs end."""
    from infracms.orchestration.worker import run_worker

    require_current_schema()
    run_worker(settings(), concurrency=concurrency, loglevel=settings().log_level, started=quiet_gc)


def beat(
    reap_seconds: float = typer.Option(
        15.0, min=0.1, help="how often to fail runs whose worker was lost"
    ),
) -> None:
    """Run the periodic jobs: fail runs of lost workers, resend lost runs (needs a broker)."""
    from infracms.orchestration.beat import run_beat

    require_current_schema()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(f"beat: reaping lost runs every {reap_seconds:g} s. Ctrl-C to stop.")
    with contextlib.suppress(KeyboardInterrupt):
        run_beat(settings(), stop, reap_seconds=reap_seconds)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply database migrations."""
    db.upgrade(settings(), revision)
    typer.echo(f"database at {revision}")


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every secret under a new key; the old key file is kept as *.previous."""
    report = setup_service.rotate_secrets(settings(), engine())
    typer.echo(
        f"re-encrypted {report.resealed} secret(s) under key {report.new_key} "
        f"(was {', '.join(report.old_keys)})"
    )
