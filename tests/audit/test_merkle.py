"""RFC 9162 hashing, proofs from stored hashes, integration and verification."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from infracms.audit.errors import AuditVerificationError
from infracms.audit.merkle import (
    EMPTY_ROOT,
    Hash,
    LeafHash,
    NodeId,
    RootHash,
    consistency_proof,
    dict_reader,
    hash_children,
    hash_leaf,
    inclusion_proof,
    integrate,
    range_nodes,
    root_of,
    stored_hash_index,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency reference inputs and roots (RFC 6962 test data, as
# published with the CT and transparency-dev implementations).
CT_INPUTS = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip
CT_CONSISTENCY = {
    (2, 8): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}  # fmt: skip


def reference_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 MTH, written as the recursion reads."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(
        b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])
    ).digest()


def stored(leaves: Sequence[LeafHash]) -> dict[NodeId, Hash]:
    return dict(integrate(0, dict_reader({}), leaves).stored)


CT_LEAVES = [hash_leaf(data) for data in CT_INPUTS]
CT_STORE = stored(CT_LEAVES)
LEAVES = [hash_leaf(f"leaf {i}".encode()) for i in range(70)]
STORE = stored(LEAVES)
ROOTS = [reference_root(LEAVES[:n]) for n in range(len(LEAVES) + 1)]


def test_leaf_and_node_hashes_use_the_rfc_prefixes() -> None:
    assert hash_leaf(b"") == hashlib.sha256(b"\x00").digest()
    left, right = hash_leaf(b"l"), hash_leaf(b"r")
    assert hash_children(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]


@pytest.mark.parametrize("size", range(len(CT_INPUTS) + 1))
def test_roots_match_the_ct_reference(size: int) -> None:
    assert root_of(CT_LEAVES[:size]).hex() == CT_ROOTS[size]
    assert tree_root(size, dict_reader(CT_STORE)).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size"), CT_INCLUSION)
def test_inclusion_proofs_match_the_ct_reference(index: int, size: int) -> None:
    proof = inclusion_proof(index, size, dict_reader(CT_STORE))
    assert [h.hex() for h in proof] == CT_INCLUSION[index, size]
    verify_inclusion(
        CT_LEAVES[index], index, size, proof, RootHash(Hash(bytes.fromhex(CT_ROOTS[size])))
    )


@pytest.mark.parametrize(("old", "new"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_ct_reference(old: int, new: int) -> None:
    proof = consistency_proof(old, new, dict_reader(CT_STORE))
    assert [h.hex() for h in proof] == CT_CONSISTENCY[old, new]
    old_root, new_root = (RootHash(Hash(bytes.fromhex(CT_ROOTS[s]))) for s in (old, new))
    verify_consistency(old, new, old_root, new_root, proof)


def test_every_proof_in_trees_up_to_70_verifies() -> None:
    read = dict_reader(STORE)
    for size in range(len(LEAVES) + 1):
        root = RootHash(Hash(ROOTS[size]))
        assert tree_root(size, read) == root, f"root of {size}"
        for index in range(size):
            verify_inclusion(LEAVES[index], index, size, inclusion_proof(index, size, read), root)
        for old in range(size + 1):
            proof = consistency_proof(old, size, read)
            verify_consistency(old, size, RootHash(Hash(ROOTS[old])), root, proof)


def test_integrating_in_batches_stores_each_complete_subtree_once() -> None:
    store: dict[NodeId, Hash] = {}
    size = 0
    for batch in (1, 2, 5, 1, 13, 8, 40):
        result = integrate(size, dict_reader(store), LEAVES[size : size + batch])
        assert not set(dict(result.stored)) & set(store), "a stored hash was written twice"
        store.update(result.stored)
        size += batch
        assert (result.size, result.root) == (size, ROOTS[size])
    assert store == STORE
    assert len(store) == 2 * 70 - (70).bit_count()


def test_proofs_read_few_hashes_in_one_call() -> None:
    size = 1_000_003
    requests: list[int] = []

    def counting(nodes: Sequence[NodeId]) -> list[Hash]:
        requests.append(len(nodes))
        return [Hash(bytes(32))] * len(nodes)

    inclusion_proof(123_457, size, counting)
    consistency_proof(999_999, size, counting)
    tree_root(size, counting)
    integrate(size, counting, [LeafHash(Hash(bytes(32)))])
    assert len(requests) == 4
    assert max(requests) <= 2 * size.bit_length(), f"read {requests} hashes per call"


def test_range_nodes_tile_a_range_with_complete_subtrees() -> None:
    assert range_nodes(0, 13) == [NodeId(3, 0), NodeId(2, 2), NodeId(0, 12)]
    assert range_nodes(8, 13) == [NodeId(2, 2), NodeId(0, 12)]
    assert range_nodes(5, 5) == []


def test_stored_hash_index_is_gos_linear_order() -> None:
    # Go's tlog stores leaf n, then the subtrees it completes: 0, 1, (1,0), 2, 3, (1,1), (2,0)...
    order = [NodeId(0, 0), NodeId(0, 1), NodeId(1, 0), NodeId(0, 2), NodeId(0, 3),
             NodeId(1, 1), NodeId(2, 0), NodeId(0, 4)]  # fmt: skip
    assert [stored_hash_index(node) for node in order] == list(range(len(order)))


def test_a_tampered_inclusion_proof_is_refused_with_expected_and_got() -> None:
    read, root = dict_reader(STORE), RootHash(Hash(ROOTS[70]))
    proof = inclusion_proof(17, 70, read)
    bad = [*proof[:2], Hash(bytes(32)), *proof[3:]]
    with pytest.raises(AuditVerificationError, match=r"gives root [0-9a-f]{64}, expected"):
        verify_inclusion(LEAVES[17], 17, 70, bad, root)
    with pytest.raises(AuditVerificationError, match=r"has 6 hashes, expected 7"):
        verify_inclusion(LEAVES[17], 17, 70, proof[:-1], root)
    with pytest.raises(AuditVerificationError, match="gives root"):
        verify_inclusion(LEAVES[18], 17, 70, proof, root)
    with pytest.raises(AuditVerificationError, match=r"must be in \[0, 70\), got 70"):
        verify_inclusion(LEAVES[17], 70, 70, proof, root)
    with pytest.raises(AuditVerificationError, match="is 31 bytes, expected 32"):
        verify_inclusion(LEAVES[17], 17, 70, [Hash(bytes(31)), *proof[1:]], root)


def test_a_tampered_consistency_proof_is_refused() -> None:
    read = dict_reader(STORE)
    old, new = RootHash(Hash(ROOTS[23])), RootHash(Hash(ROOTS[70]))
    proof = consistency_proof(23, 70, read)
    with pytest.raises(AuditVerificationError, match="gives old root"):
        verify_consistency(23, 70, RootHash(Hash(ROOTS[22])), new, proof)
    with pytest.raises(AuditVerificationError, match="gives new root"):
        verify_consistency(23, 70, old, RootHash(Hash(ROOTS[69])), proof)
    with pytest.raises(AuditVerificationError, match=r"has \d+ hashes, expected \d+"):
        verify_consistency(23, 70, old, new, proof[1:])
    with pytest.raises(AuditVerificationError, match="expected 0"):
        verify_consistency(70, 70, new, new, proof)
    with pytest.raises(AuditVerificationError, match="old root of tree 70"):
        verify_consistency(70, 70, old, new, [])
    with pytest.raises(AuditVerificationError, match="old size <= new size"):
        verify_consistency(71, 70, old, new, proof)
    with pytest.raises(AuditVerificationError, match="old root of tree 0"):
        verify_consistency(0, 70, old, new, [])
    verify_consistency(0, 70, EMPTY_ROOT, new, [])


def test_proof_generation_refuses_impossible_requests() -> None:
    read = dict_reader(STORE)
    with pytest.raises(ValueError, match="leaf index"):
        inclusion_proof(5, 5, read)
    with pytest.raises(ValueError, match="old_size <= new_size"):
        consistency_proof(6, 5, read)
    with pytest.raises(KeyError):
        tree_root(71, read)


def test_a_compact_range_gives_the_root_of_every_prefix() -> None:
    from infracms.audit.merkle import CompactRange

    leaves = [hash_leaf(b"%d" % i) for i in range(70)]
    compact = CompactRange()
    assert compact.root() == root_of([])
    for size, leaf in enumerate(leaves, start=1):
        compact.append(leaf)
        assert (compact.size, compact.root()) == (size, root_of(leaves[:size])), size
