"""A writer process for the concurrency tests: ``python -m tests.audit_store.appender N TAG``.

Reads its settings from ``INFRACMS_*`` variables, then makes N changes (hosts created
in the organisation ``clinic``, each with its entry, and some extra entries in the same
transaction) and integrates after every few, as a web process and a worker would.
"""

from __future__ import annotations

import sys

from infracms.config import Settings
from infracms.db import make_engine, session_scope
from infracms.services import audit, inventory
from tests.helpers import ADMIN


def main(count: int, tag: str) -> None:
    settings = Settings()
    engine = make_engine(settings)
    for number in range(count):
        with session_scope(engine, write=True) as session:
            for extra in range(number % 3):
                audit.record(session, actor=ADMIN, action="test.extra", subject=f"t:{tag}-{extra}")
            inventory.create_host(
                session=session,
                actor=ADMIN,
                organisation="clinic",
                data={"name": f"{tag}-{number}", "address": "10.0.0.1"},
            )
        if number % 4 == 3:
            audit.integrate(engine=engine, settings=settings)
    audit.integrate(engine=engine, settings=settings)
    engine.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
