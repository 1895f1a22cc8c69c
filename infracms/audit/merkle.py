"""RFC 9162 Merkle tree hashing, proofs from stored subtree hashes, and their verification.

Hashing is RFC 9162 section 2.1.1: a leaf is ``SHA-256(0x00 || data)``, an interior
node ``SHA-256(0x01 || left || right)``, and the tree over ``n`` leaves splits at the
largest power of two smaller than ``n``. The empty tree's root is ``SHA-256()``.

Storage layout. The log stores the hash of every *complete* subtree, named by
``NodeId(level, number)``: the subtree over leaves ``[number * 2**level, (number + 1)
* 2**level)``. Level 0 holds the leaf hashes. These are the coordinates of C2SP
tlog-tiles (a tile at level L packs 256 consecutive such hashes of one level) and the
``(level, n)`` of Go's ``golang.org/x/mod/sumdb/tlog`` before ``StoredHashIndex``
linearises them; :func:`stored_hash_index` gives that linear index for stores that
want a single integer key. Appending ``n`` leaves writes ``2n - popcount(n)`` hashes,
just under two per leaf, and no hash is ever rewritten.

A :class:`HashReader` returns stored hashes for a batch of node ids. Every function
here reads at most ``2 * log2(size)`` of them, in one call, so a proof or a root costs
one database query whatever the size of the log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, NewType, Protocol

from infracms.audit.errors import AuditVerificationError

Hash = NewType("Hash", bytes)
"""A 32-byte SHA-256 Merkle tree hash of any node."""
LeafHash = NewType("LeafHash", Hash)
"""The hash of one leaf: ``SHA-256(0x00 || data)``."""
RootHash = NewType("RootHash", Hash)
"""The Merkle Tree Hash of a whole tree of a given size."""

HASH_SIZE = 32
EMPTY_ROOT = RootHash(Hash(hashlib.sha256(b"").digest()))
"""RFC 9162 section 2.1.1: the hash of an empty list is the hash of an empty string."""


class NodeId(NamedTuple):
    """The ``number``-th complete subtree of a level: leaves ``[number, number + 1) * 2**level``."""

    level: int
    number: int


class HashReader(Protocol):
    """Reads stored hashes of complete subtrees, one per requested node, in order."""

    def __call__(self, nodes: Sequence[NodeId], /) -> Sequence[Hash]:
        """Return the stored hash of each node; raise if one is missing."""
        ...


@dataclass(frozen=True)
class Integration:
    """What appending leaves produced: the new size and root, and the hashes to store."""

    size: int
    root: RootHash
    stored: list[tuple[NodeId, Hash]]


def hash_leaf(data: bytes) -> LeafHash:
    """RFC 9162 section 2.1.1: the leaf hash ``SHA-256(0x00 || data)``."""
    return LeafHash(Hash(hashlib.sha256(b"\x00" + data).digest()))


def hash_children(left: Hash, right: Hash) -> Hash:
    """RFC 9162 section 2.1.1: the interior node hash ``SHA-256(0x01 || left || right)``."""
    return Hash(hashlib.sha256(b"\x01" + left + right).digest())


def dict_reader(store: Mapping[NodeId, Hash]) -> HashReader:
    """A :class:`HashReader` over an in-memory mapping (tests, benchmarks)."""

    def read(nodes: Sequence[NodeId], /) -> Sequence[Hash]:
        return [store[node] for node in nodes]

    return read


def stored_hash_index(node: NodeId) -> int:
    """Go tlog's ``StoredHashIndex(level, n)``: the node's position in a linear store."""
    if node.level < 0 or node.number < 0:
        raise ValueError(f"node {node} has a negative coordinate")
    last_leaf = ((node.number + 1) << node.level) - 1
    return 2 * last_leaf - last_leaf.bit_count() + node.level


def range_nodes(begin: int, end: int) -> list[NodeId]:
    """The complete subtrees that tile leaves ``[begin, end)``, left to right, largest first.

    For the ranges RFC 9162 section 2.1.1's recursion produces (``begin`` aligned to a
    power of two at least ``end - begin``), folding their hashes right to left gives
    the Merkle Tree Hash of the range.
    """
    nodes: list[NodeId] = []
    while begin < end:
        level = (end - begin).bit_length() - 1
        if begin:
            level = min(level, (begin & -begin).bit_length() - 1)
        nodes.append(NodeId(level, begin >> level))
        begin += 1 << level
    return nodes


def _fold(hashes: Sequence[Hash]) -> Hash:
    """Combine the hashes of a :func:`range_nodes` tiling into the range's hash."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = hash_children(left, result)
    return result


def _largest_power_of_two_below(n: int) -> int:
    """RFC 9162's ``k``: the largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _read(read: HashReader, nodes: Sequence[NodeId]) -> Sequence[Hash]:
    """Read ``nodes`` in one call and check the reader kept its contract."""
    if not nodes:
        return []
    hashes = read(nodes)
    if len(hashes) != len(nodes):
        raise LookupError(f"hash reader returned {len(hashes)} hashes for {len(nodes)} nodes")
    return hashes


def _run_plan(plan: Sequence[Sequence[NodeId]], read: HashReader) -> list[Hash]:
    """Read every node of ``plan`` at once and fold each group into one proof hash."""
    hashes = iter(_read(read, [node for group in plan for node in group]))
    return [_fold([next(hashes) for _ in group]) for group in plan]


def tree_root(size: int, read: HashReader) -> RootHash:
    """RFC 9162 section 2.1.1: the Merkle Tree Hash of the first ``size`` leaves."""
    if size < 0:
        raise ValueError(f"tree size must be at least 0, got {size}")
    if size == 0:
        return EMPTY_ROOT
    return RootHash(_fold(_read(read, range_nodes(0, size))))


def root_of(leaves: Sequence[LeafHash]) -> RootHash:
    """RFC 9162 section 2.1.1: the Merkle Tree Hash of a list of leaf hashes."""
    return integrate(0, dict_reader({}), leaves).root


class CompactRange:
    """RFC 9162 section 2.1.1 hashing fed one leaf at a time: the root of every prefix.

    Holds the ``popcount(size)`` complete subtrees that tile the leaves so far, so a
    whole log is rehashed in one pass and ``log2(size)`` memory (the node's self check).
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, Hash]] = []

    def append(self, leaf: LeafHash) -> None:
        """Add the next leaf, merging the complete subtrees it finishes."""
        level, value = 0, Hash(leaf)
        while self._stack and self._stack[-1][0] == level:
            value = hash_children(self._stack.pop()[1], value)
            level += 1
        self._stack.append((level, value))
        self.size += 1

    def root(self) -> RootHash:
        """The Merkle Tree Hash of the leaves appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        return RootHash(_fold([value for _, value in self._stack]))


def _inclusion_plan(index: int, size: int) -> list[list[NodeId]]:
    """The subtrees whose hashes make up RFC 9162 section 2.1.3.1's ``PATH(index, D[size])``."""
    plan: list[list[NodeId]] = []
    low, high = 0, size
    while high - low > 1:
        k = _largest_power_of_two_below(high - low)
        if index < low + k:
            plan.append(range_nodes(low + k, high))
            high = low + k
        else:
            plan.append(range_nodes(low, low + k))
            low += k
    plan.reverse()
    return plan


def inclusion_proof(index: int, size: int, read: HashReader) -> list[Hash]:
    """RFC 9162 section 2.1.3.1: the inclusion proof of leaf ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index must be in [0, {size}), got {index}")
    return _run_plan(_inclusion_plan(index, size), read)


def _consistency_plan(old_size: int, new_size: int) -> list[list[NodeId]]:
    """The subtrees of RFC 9162 section 2.1.4.1's ``PROOF(old_size, D[new_size])``."""
    plan: list[list[NodeId]] = []
    low, high, old_is_whole_subtree = 0, new_size, True
    while old_size != high:
        k = _largest_power_of_two_below(high - low)
        if old_size <= low + k:
            plan.append(range_nodes(low + k, high))
            high = low + k
        else:
            plan.append(range_nodes(low, low + k))
            low += k
            old_is_whole_subtree = False
    if not old_is_whole_subtree:
        plan.append(range_nodes(low, high))
    plan.reverse()
    return plan


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[Hash]:
    """RFC 9162 section 2.1.4.1: the proof that tree ``old_size`` is a prefix of ``new_size``.

    The proof is empty when ``old_size`` is 0 or equals ``new_size``.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"need 0 <= old_size <= new_size, got {old_size} and {new_size}")
    if old_size in (0, new_size):
        return []
    return _run_plan(_consistency_plan(old_size, new_size), read)


def integrate(size: int, read: HashReader, leaves: Iterable[LeafHash]) -> Integration:
    """Append ``leaves`` to a tree of ``size``: the new root and the new hashes to store.

    Reads the ``popcount(size)`` subtrees that tile the current tree (its compact range)
    in one call, then returns every complete subtree the new leaves finish (RFC 9162
    section 2.1.1 hashing), each exactly once.
    """
    if size < 0:
        raise ValueError(f"tree size must be at least 0, got {size}")
    frontier = range_nodes(0, size)
    stack = list(zip(frontier, _read(read, frontier), strict=True))
    stored: list[tuple[NodeId, Hash]] = []
    new_size = size
    for position, leaf in enumerate(leaves, start=size):
        new_size = position + 1
        node, value = NodeId(0, position), Hash(leaf)
        stored.append((node, value))
        while stack and stack[-1][0].level == node.level:
            _, left = stack.pop()
            node, value = NodeId(node.level + 1, node.number >> 1), hash_children(left, value)
            stored.append((node, value))
        stack.append((node, value))
    root = RootHash(_fold([value for _, value in stack])) if stack else EMPTY_ROOT
    return Integration(size=new_size, root=root, stored=stored)


def _expect_hash(what: str, value: bytes) -> None:
    """Refuse a value that is not a 32-byte hash."""
    if len(value) != HASH_SIZE:
        raise AuditVerificationError(f"{what} is {len(value)} bytes, expected {HASH_SIZE}")


def _inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes an RFC 9162 inclusion proof of ``index`` in ``size`` holds."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion_proof(
    leaf_hash: LeafHash, index: int, size: int, proof: Sequence[Hash]
) -> RootHash:
    """RFC 9162 section 2.1.3.2: the root an inclusion proof implies for ``leaf_hash``."""
    if not 0 <= index < size:
        raise AuditVerificationError(f"leaf index must be in [0, {size}), got {index}")
    want = _inclusion_proof_length(index, size)
    if len(proof) != want:
        raise AuditVerificationError(
            f"inclusion proof of leaf {index} in tree {size} has {len(proof)} hashes, "
            f"expected {want}"
        )
    _expect_hash("leaf hash", leaf_hash)
    fn, sn, result = index, size - 1, Hash(leaf_hash)
    for number, sibling in enumerate(proof):
        _expect_hash(f"inclusion proof hash {number}", sibling)
        if sn == 0:
            raise AuditVerificationError(f"inclusion proof of leaf {index} is too long")
        if fn & 1 or fn == sn:
            result = hash_children(sibling, result)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = hash_children(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    return RootHash(result)


def verify_inclusion(
    leaf_hash: LeafHash, index: int, size: int, proof: Sequence[Hash], root: RootHash
) -> None:
    """RFC 9162 section 2.1.3.2: check that leaf ``index`` of tree ``size`` is ``leaf_hash``."""
    _expect_hash("root hash", root)
    got = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if got != root:
        raise AuditVerificationError(
            f"inclusion proof of leaf {index} in tree {size} gives root {got.hex()}, "
            f"expected {root.hex()}"
        )


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    """How many hashes an RFC 9162 consistency proof from ``old_size`` to ``new_size`` holds."""
    return len(_consistency_plan(old_size, new_size))


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: RootHash,
    new_root: RootHash,
    proof: Sequence[Hash],
) -> None:
    """RFC 9162 section 2.1.4.2: check that tree ``old_size`` is a prefix of ``new_size``."""
    _expect_hash("old root hash", old_root)
    _expect_hash("new root hash", new_root)
    if not 0 <= old_size <= new_size:
        raise AuditVerificationError(
            f"need 0 <= old size <= new size, got {old_size} and {new_size}"
        )
    if old_size in (0, new_size):
        _verify_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return
    want = _consistency_proof_length(old_size, new_size)
    if len(proof) != want:
        raise AuditVerificationError(
            f"consistency proof from {old_size} to {new_size} has {len(proof)} hashes, "
            f"expected {want}"
        )
    got_old, got_new = _run_consistency_proof(old_size, new_size, old_root, proof)
    for label, got, want_root in (("old", got_old, old_root), ("new", got_new, new_root)):
        if got != want_root:
            raise AuditVerificationError(
                f"consistency proof from {old_size} to {new_size} gives {label} root "
                f"{got.hex()}, expected {want_root.hex()}"
            )


def _verify_trivial_consistency(
    old_size: int, new_size: int, old_root: RootHash, new_root: RootHash, proof: Sequence[Hash]
) -> None:
    """The cases RFC 9162 leaves implicit: from the empty tree, or to the same size."""
    if proof:
        raise AuditVerificationError(
            f"consistency proof from {old_size} to {new_size} has {len(proof)} hashes, expected 0"
        )
    want = EMPTY_ROOT if old_size == 0 else new_root
    if old_root != want:
        raise AuditVerificationError(
            f"old root of tree {old_size} is {old_root.hex()}, expected {want.hex()}"
        )


def _run_consistency_proof(
    old_size: int, new_size: int, old_root: RootHash, proof: Sequence[Hash]
) -> tuple[Hash, Hash]:
    """RFC 9162 section 2.1.4.2 steps 2-7: the old and new roots the proof implies."""
    path = list(proof)
    for number, value in enumerate(path):
        _expect_hash(f"consistency proof hash {number}", value)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_result = new_result = path[0]
    for value in path[1:]:
        if sn == 0:
            raise AuditVerificationError(
                f"consistency proof from {old_size} to {new_size} is longer than the tree"
            )
        if fn & 1 or fn == sn:
            old_result = hash_children(value, old_result)
            new_result = hash_children(value, new_result)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_result = hash_children(new_result, value)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise AuditVerificationError(
            f"consistency proof from {old_size} to {new_size} is shorter than the tree"
        )
    return old_result, new_result
