"""The nginx_site module: one site per definition, TLS and HSTS, checked by nginx -t."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infracms.modules.nginx_site.module import NginxSite, NginxSiteSettings
from infracms.modules.targets import Target
from infracms.plugins import Registry
from tests.modules.ansible import render
from tests.modules.conftest import errors_of, refused_field
from tests.modules.samples import role_variables

ROLE = Path(NginxSite.role)
SNAKEOIL = {
    "tls_certificate_path": "/etc/ssl/certs/ssl-cert-snakeoil.pem",
    "tls_key_path": "/etc/ssl/private/ssl-cert-snakeoil.key",
}


def site(**fields: Any) -> dict[str, Any]:
    return {"name": "blog", "server_names": ["blog.example.org"], "root": "/srv/www/blog"} | fields


def test_defaults() -> None:
    settings = NginxSiteSettings.model_validate(site())
    assert (settings.http_port, settings.tls, settings.hsts) == (80, False, False)
    assert settings.client_max_body_size == "10m"


def test_server_names_are_lower_cased() -> None:
    settings = NginxSiteSettings.model_validate(
        site(server_names=["Blog.Example.ORG", "*.example.org"])
    )
    assert settings.server_names == ["blog.example.org", "*.example.org"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "my site"}, "name"),
        ({"server_names": []}, "server_names"),
        ({"server_names": ["exa mple.org"]}, "server_names"),
        ({"server_names": ["a.org", "a.org"]}, "server_names"),
        ({"root": "srv/www"}, "root"),
        ({"root": "/srv/../etc"}, "root"),
        ({"proxy_pass": "http://127.0.0.1:8080"}, "proxy_pass"),
        ({"root": None}, "proxy_pass"),
        ({"root": None, "proxy_pass": "http://app;return 200"}, "proxy_pass"),
        ({"root": None, "proxy_pass": "http://$host"}, "proxy_pass"),
        ({"root": None, "proxy_pass": "ftp://files"}, "proxy_pass"),
        ({"tls": True, "tls_certificate_path": "/c.pem"}, "tls_key"),
        ({"tls": True, **SNAKEOIL, "tls_key": {"$credential": "k"}}, "tls_key"),
        ({"tls": True, **SNAKEOIL, "http_port": 443, "https_port": 443}, "https_port"),
        ({"tls": True, "tls_certificate_path": "/c.pem", "tls_key": "-----BEGIN"}, "tls_key"),
        ({"hsts": True}, "hsts"),
        ({"client_max_body_size": "10 MB"}, "client_max_body_size"),
        ({"gzip": True}, "gzip"),
    ],
)
def test_bad_values_are_refused(fields: dict[str, Any], field: str) -> None:
    assert refused_field(NginxSiteSettings, site(**fields)) == field, errors_of(
        NginxSiteSettings, site(**fields)
    )


def test_tls_needs_a_certificate_and_a_key() -> None:
    errors = errors_of(NginxSiteSettings, site(tls=True))
    assert set(errors) == {"tls_certificate_path", "tls_key"}


def test_validate_settings_refuses_swapped_ports(registry: Registry) -> None:
    settings = NginxSiteSettings.model_validate(site(http_port=443))
    target = Target(kind="host", name="web1", organisation="coop")
    found = registry.modules["nginx_site"].validate_settings(settings=settings, target=target)
    assert found == {"http_port": "port 443 is for HTTPS: browsers would speak TLS to it"}


def _site_config(tmp_path: Path, settings: dict[str, Any]) -> str:
    (site_variables,) = role_variables(NginxSite, settings)["nginx_site"]
    return render(ROLE, "site.conf.j2", {"site": site_variables}, tmp_path)


def test_tls_site_redirects_and_sends_hsts(tmp_path: Path) -> None:
    text = _site_config(
        tmp_path,
        site(
            root=None,
            proxy_pass="http://127.0.0.1:8080",
            tls=True,
            https_port=8443,
            hsts=True,
            **SNAKEOIL,
        ),
    )
    assert "return 301 https://$host:8443$request_uri;" in text
    assert "listen 8443 ssl http2;" in text
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in text
    assert "proxy_pass http://127.0.0.1:8080;" in text
    assert "ssl_certificate_key /etc/ssl/private/ssl-cert-snakeoil.key;" in text


def test_key_from_a_secret_lands_in_the_keys_directory(tmp_path: Path) -> None:
    text = _site_config(
        tmp_path, site(tls=True, tls_certificate_path="/c.pem", tls_key={"$credential": "site-key"})
    )
    assert "ssl_certificate_key /etc/nginx/infracms-keys/infracms-blog.key;" in text


def _self_signed(directory: Path) -> dict[str, str]:
    """A certificate and key for blog.example.org, as paths on this machine."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "blog.example.org")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"tls_certificate_path": str(cert_path), "tls_key_path": str(key_path)}


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True])
def test_site_passes_the_role_checker(tmp_path: Path, tls: bool) -> None:
    """The role's own validate script (nginx -t in a minimal configuration) accepts it."""
    settings = site()
    if tls:
        settings = site(root=None, proxy_pass="http://127.0.0.1:8080/app/", tls=True, hsts=True)
        settings |= _self_signed(tmp_path)
    config = tmp_path / "site.conf"
    config.write_text(_site_config(tmp_path, settings))
    http = tmp_path / "http.conf"
    http.write_text(render(ROLE, "infracms-http.conf.j2", {}, tmp_path))
    script = (ROLE / "files/check-site.sh").read_text()
    script = script.replace("/etc/nginx/conf.d/infracms.conf", str(http))
    done = subprocess.run(
        ["sh", "-c", script, "check-site", str(config)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr + config.read_text()
