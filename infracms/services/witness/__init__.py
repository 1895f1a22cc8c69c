"""Witnessed audit logs (PROTOCOL.md section 7): nodes cosign each other's checkpoints.

- ``peers``: the active peers as witnessing sees them, and the witness key names;
- ``decision``: C2SP tlog-witness's checks, pure: cosign, or refuse and why;
- ``cosign``: this node as a witness: ``add_checkpoint`` answers a peer's request;
- ``gather``: this node as a log: ``gather_cosignatures`` asks every peer to cosign
  the latest checkpoint and keeps what they return beside it;
- ``evidence``: the logs this node witnesses and the checkpoints it refused.
"""

from infracms.services.witness.cosign import Submitter, WitnessAnswer, add_checkpoint
from infracms.services.witness.evidence import list_conflicts, list_witnessed_logs
from infracms.services.witness.gather import WitnessOutcome, beat_job, gather_cosignatures
from infracms.services.witness.peers import cosigner, witness_name

__all__ = [
    "Submitter",
    "WitnessAnswer",
    "WitnessOutcome",
    "add_checkpoint",
    "beat_job",
    "cosigner",
    "gather_cosignatures",
    "list_conflicts",
    "list_witnessed_logs",
    "witness_name",
]
