#!/usr/bin/python3
"""infracms calendars: make Radicale's user file hold exactly the people given, bcrypt-hashed.

Reads {"users": [{"name": ..., "password": ...}, ...]} on standard input (never on the
command line, where `ps` would show it). A stored hash that still matches its password
is kept, so an apply that changes nothing rewrites nothing. Prints "changed" when the
file was rewritten (with --check: when it would be) and writes nothing with --check.
"""

import json
import os
import shutil
import sys
import tempfile

import bcrypt

USERS_FILE = "/etc/radicale/users"


def stored() -> tuple[str, dict[str, str]]:
    try:
        with open(USERS_FILE, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return "", {}
    hashes = {}
    for line in text.splitlines():
        name, _, hashed = line.partition(":")
        if name and hashed:
            hashes[name] = hashed
    return text, hashes


def main() -> None:
    check = "--check" in sys.argv[1:]
    wanted = json.load(sys.stdin)["users"]
    text, hashes = stored()
    lines = []
    for user in wanted:
        password = user["password"].encode()
        old = hashes.get(user["name"], "")
        if old.startswith("$2") and bcrypt.checkpw(password, old.encode()):
            hashed = old
        else:
            hashed = bcrypt.hashpw(password, bcrypt.gensalt(rounds=11)).decode()
        lines.append(f"{user['name']}:{hashed}\n")
    new = "".join(lines)
    if new == text:
        return
    print("changed")
    if check:
        return
    folder = os.path.dirname(USERS_FILE)
    handle, partial = tempfile.mkstemp(dir=folder, prefix=".users.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(new)
        os.chmod(partial, 0o640)
        shutil.chown(partial, "root", "radicale")
        os.replace(partial, USERS_FILE)
    except BaseException:
        os.unlink(partial)
        raise


if __name__ == "__main__":
    main()
