"""A witnessed node's backup: the manifest keeps the latest checkpoint its peers
cosigned, and verify shows the restored log extends it, naming the witnesses."""

from __future__ import annotations

from pathlib import Path

from infracms.services import node_backup
from infracms.services.witness import gather_cosignatures
from tests.helpers import ADMIN
from tests.services.backup_node import FAST_KDF, PASSPHRASE
from tests.witness.nodes import Network, pin, started_node


def test_the_latest_cosigned_checkpoint_is_kept_and_proved(tmp_path: Path) -> None:
    network = Network()
    with (
        started_node(tmp_path, "a.example", network) as a,
        started_node(tmp_path, "b.example", network) as b,
    ):
        pin(a, b)
        pin(b, a)
        a.append(5)
        assert all(o.ok for o in gather_cosignatures(engine=a.engine, ctx=a.ctx))
        a.append(3)  # entries after the cosigned checkpoint: the backup's own is later
        made = node_backup.create(
            settings=a.settings,
            engine=a.engine,
            actor=ADMIN,
            to=tmp_path / "backups",
            passphrase=PASSPHRASE,
            kdf_log2_n=FAST_KDF,
        )
        assert made.cosigned_size is not None and made.cosigned_size < made.audit_size
        report = node_backup.verify(archive=made.path, passphrase=PASSPHRASE, settings=a.settings)
    assert report.audit.cosigned_size == made.cosigned_size
    assert report.audit.witnesses == ("b.example/witness",)
    assert report.audit.size >= report.audit.manifest_size == made.audit_size
