#!/bin/sh
# Managed by infracms (module nginx_site).
# Check one site file with `nginx -t` inside a minimal configuration that loads the
# host's modules, mime types and infracms' http settings, before it replaces the old one.
set -eu
site=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/nginx.conf" <<CONF
include /etc/nginx/modules-enabled/*.conf;
error_log stderr;
pid $dir/nginx.pid;
events {}
http {
    include /etc/nginx/mime.types;
    include /etc/nginx/conf.d/infracms.conf;
    include $site;
}
CONF
exec nginx -t -q -c "$dir/nginx.conf"
