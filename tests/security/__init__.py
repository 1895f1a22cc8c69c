"""Attacks on infracms, one test each, made as an editor, an operator, a peer or a host would.

Every test here performs the attack against the real thing (test hosts over SSH, served
nodes, the real CLI) and asserts that it fails and that nothing leaked or changed.
"""
