#!/usr/bin/env bash
# Build (or find) the test hosts' cached Debian root and local apt repository.
#
# The first test that asks for hosts does this too; running it ahead of the tests
# takes the minutes of the first debootstrap out of a test's time. Needs root and
# the packages of scripts/install-test-deps.sh. The cache is /var/cache/infracms-tests
# (INFRACMS_TEST_CACHE overrides it); see tests/support/hosts_image.py. With --prune
# it also removes cached roots that an older package list or build made.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
exec "$PYTHON" -m tests.support.hosts_image "$@"
