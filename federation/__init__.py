"""The node-to-node protocol of infracms, as a library (wire models, signed messages, catalogs).

It imports nothing from infracms' database, API, web or services; ``PROTOCOL.md``
beside it is the spec, and ``vectors/`` holds signed examples made from fixed keys.

Where things are:

- ``keys``: ``NodeKey`` (this node's Ed25519 key), ``TrustedKey`` (a pinned peer key),
  ``KeyResolver`` (the node's peers table implements it), ``key_id_of``.
- ``httpsig``: ``sign_request``/``verify_request`` and ``sign_response``/
  ``verify_response`` (RFC 9421 with Ed25519, RFC 9530 Content-Digest).
- ``nonces``: the ``NonceStore`` protocol for replay protection, ``MemoryNonceStore``.
- ``messages``: ``HttpRequest``/``HttpResponse``, framework-neutral messages.
- ``models``: the versioned wire documents, including the Open Service Broker shapes.
- ``catalogs``: ``sign_catalog``, ``verify_catalog``, ``check_catalog_progress``.
- ``peering`` and ``invitee``: invitations, ``open_peering_request``, ``accept_invitation``.
- ``rotation``: ``rotate_key``, ``verify_key_rotation``.
- ``witness`` and ``witness_api``: C2SP tlog-cosignature v1 and tlog-witness formats.
- ``broker``: the catalog as ``GET /v2/catalog``, OSB headers and paths.
- ``client``: ``PeerClient``, every call a node makes to a peer.
- ``errors``: the exception tree, ``http_status`` and ``error_body``.
"""

PROTOCOL_VERSION = 1
"""The major version of the protocol this library speaks (PROTOCOL.md section 9)."""
