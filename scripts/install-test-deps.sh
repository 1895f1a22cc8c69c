#!/usr/bin/env bash
# Install the Debian packages that `make test` needs, only those that are missing.
#
# Idempotent and fast when nothing is missing: one dpkg-query for every package,
# no apt-get at all. When something is missing it runs `apt-get update` once and
# installs it non-interactively; it must then run as root.
set -euo pipefail

# Installed with their recommends.
PACKAGES=(
	postgresql      # private clusters for tests (initdb/postgres in /usr/lib/postgresql/*/bin)
	redis-server    # Celery broker for integration tests
	openssh-server  # sshd inside the test hosts' network namespaces
	iproute2        # ip netns, veth
	debootstrap     # the test hosts' root file system
	systemd-container  # systemd-nspawn boots the test hosts with systemd as PID 1
	dpkg-dev        # dpkg-scanpackages indexes the test hosts' local apt repository
	util-linux      # runuser, unshare
	chromium        # the e2e tests' browser, driven by Playwright
	golang-go       # interop checker for checkpoints
	golang-golang-x-mod-dev  # golang.org/x/mod/sumdb/{note,tlog}
	wrk             # HTTP load for bench/api_reads.py
	sshpass         # bootstrapping a host with a one-time password
	nftables        # modules tests: nft -c on the firewall rule set
	nginx           # modules tests: nginx -t on generated sites
	wireguard-tools # modules tests: wireguard role
	restic          # modules tests: backup role against a real repository
)
# Installed without recommends: docker-compose recommends a whole Docker engine.
PACKAGES_NO_RECOMMENDS=(
	docker-compose  # `docker-compose config` validates docker-compose.yml without an engine
)

# Prints the names among "$@" that are not installed, one a line.
missing_packages() {
	local installed
	installed=$(dpkg-query --show --showformat='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true)
	local name
	for name in "$@"; do
		if ! grep -qx "${name} installed" <<<"$installed"; then
			echo "$name"
		fi
	done
}

mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
mapfile -t missing_no_rec < <(missing_packages "${PACKAGES_NO_RECOMMENDS[@]}")
all_missing=("${missing[@]}" "${missing_no_rec[@]}")

if ((${#all_missing[@]} == 0)); then
	echo "install-test-deps: all test packages present"
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "install-test-deps: missing Debian packages: ${all_missing[*]}" >&2
	echo "install-test-deps: run this script as root (sudo $0) or install them with apt-get" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTIONS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

echo "install-test-deps: apt-get update"
apt-get update -q >/dev/null

if ((${#missing[@]} > 0)); then
	echo "install-test-deps: installing ${missing[*]}"
	apt-get install "${APT_OPTIONS[@]}" "${missing[@]}" >/dev/null
fi
if ((${#missing_no_rec[@]} > 0)); then
	echo "install-test-deps: installing (without recommends) ${missing_no_rec[*]}"
	apt-get install "${APT_OPTIONS[@]}" --no-install-recommends "${missing_no_rec[@]}" >/dev/null
fi

mapfile -t still_missing < <(missing_packages "${PACKAGES[@]}" "${PACKAGES_NO_RECOMMENDS[@]}")
if ((${#still_missing[@]} > 0)); then
	echo "install-test-deps: still missing after apt-get install: ${still_missing[*]}" >&2
	exit 1
fi
echo "install-test-deps: installed ${all_missing[*]}"
