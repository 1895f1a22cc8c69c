"""The node side of federation: every state change between nodes goes through here.

- ``node``: ``FederationContext`` (this node's key, identity, keyring, peer clients).
- ``nonces``: ``DatabaseNonceStore``, the replay cache every process shares.
- ``peers``: ``PeerKeys`` (the ``KeyResolver`` over the peer table) and look-ups.
- ``peering``: invitations, accepting one, answering a peering request, suspend,
  resume, revoke; ``rotation``: key rotations, ours and our peers'.
- ``offerings``: what an organisation publishes to peers; ``catalog``: this node's
  signed catalog; ``sync``: fetching peers' catalogs; ``directory``: searching them.
- ``provisioning``: provision requests from peers and OSB platforms, with consent;
  ``instances``: their state, bindings and deprovisioning; ``usage``: usage records.
- ``broker_clients``: the credentials OSB platforms call ``/v2`` with.
- ``consumer``: services our organisations request from peers.
- ``jobs``: what runs periodically (catalog sync, polling, pruning nonces).
"""
