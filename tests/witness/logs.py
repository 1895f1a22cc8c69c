"""Logs built in memory for the witness tests: Merkle trees, signed checkpoints, requests."""

from __future__ import annotations

from federation.keys import NodeKey
from federation.witness_api import AddCheckpointRequest
from infracms.audit.checkpoint import Checkpoint, sign_checkpoint
from infracms.audit.merkle import Hash, consistency_proof, dict_reader, hash_leaf, integrate
from infracms.audit.note import Signer
from infracms.services.witness.decision import Held, Submission

ORIGIN = "a.example"


class Tree:
    """A log's Merkle tree over leaves named ``<tag><n>``."""

    def __init__(self, size: int, tag: str = "e", origin: str = ORIGIN) -> None:
        leaves = [hash_leaf(f"{tag}{i}".encode()) for i in range(size)]
        result = integrate(0, dict_reader({}), leaves)
        self.size, self.root, self.store = size, result.root, dict(result.stored)
        self.origin = origin

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.origin, self.size, self.root)

    def held(self) -> Held:
        return Held(self.size, self.root, f"signed note of size {self.size}")

    def proof_from(self, old: int) -> tuple[Hash, ...]:
        return tuple(consistency_proof(old, self.size, dict_reader(self.store)))

    def submission(self, old: int, proof: tuple[Hash, ...] | None = None) -> Submission:
        proof = self.proof_from(old) if proof is None else proof
        return Submission(old, proof, self.checkpoint(), f"signed note of size {self.size}")

    def signed(self, key: NodeKey) -> str:
        """The checkpoint signed as a C2SP note by `key`, named by the origin."""
        return sign_checkpoint(self.checkpoint(), Signer(self.origin, key.private_key))

    def request(
        self, key: NodeKey, old: int, proof: tuple[Hash, ...] | None = None
    ) -> AddCheckpointRequest:
        """An add-checkpoint request for this checkpoint, from `old`."""
        proof = self.proof_from(old) if proof is None else proof
        return AddCheckpointRequest(old, proof, self.signed(key))
