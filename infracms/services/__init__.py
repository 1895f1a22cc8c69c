"""The only code that changes state.

Every public function here is one transaction: it authorises the actor, validates,
writes, appends the audit entry of the change in the same transaction, and commits.
The API, the web pages and the CLI call these functions and nothing else to change
anything.
"""
