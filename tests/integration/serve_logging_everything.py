"""``infracms`` with every logger writing at DEBUG level to stderr: the most a server logs.

    python -m tests.integration.serve_logging_everything serve --host ... --port ...

uvicorn replaces the logging configuration when it starts (``dictConfig``, which drops
the root handler), so the root handler goes back right after, and SQLAlchemy's
statements and their parameters are switched on. The secrets test searches all of it.
"""

from __future__ import annotations

import logging
import sys

import uvicorn.config

from infracms.cli import main

FORMAT = "%(levelname)s %(name)s: %(message)s"
_configure_logging = uvicorn.config.Config.configure_logging


def _log_everything(config: uvicorn.config.Config) -> None:
    _configure_logging(config)
    logging.basicConfig(level=logging.DEBUG, format=FORMAT, stream=sys.stderr, force=True)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # statements, parameters


if __name__ == "__main__":
    logging.basicConfig(level=logging.DEBUG, format=FORMAT, stream=sys.stderr)
    uvicorn.config.Config.configure_logging = _log_everything  # type: ignore[method-assign]
    sys.argv[0] = "infracms"
    main()
