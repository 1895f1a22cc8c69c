"""The `nginx_site` module: nginx virtual hosts."""
