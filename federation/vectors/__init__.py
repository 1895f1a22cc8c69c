"""Signed test vectors of the federation protocol, made from fixed keys by ``generate``.

Regenerate with ``python -m federation.vectors.generate``; a test checks that the
committed files are exactly what the generator makes.
"""
