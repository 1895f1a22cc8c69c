"""docker-compose.yml and the Dockerfile: their shape, and what docker-compose says of them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
APP_SERVICES = ("web", "worker", "beat")
DATA_MOUNT = "infracms-data:/var/lib/infracms"
REQUIRED_SECRETS = ("INFRACMS_SECRET_KEY", "POSTGRES_PASSWORD")
VALID_ENV = {
    "INFRACMS_SECRET_KEY": "q83vEjRV5m1Dbq3Sx4gkkD3ab0yGnTPrGoq1XQdZ4cY=",
    "POSTGRES_PASSWORD": "0123456789abcdef",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict), f"{COMPOSE_FILE} is not a mapping"
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    return found


def docker_compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose is not installed: `make test` should have installed it with "
            "scripts/install-test-deps.sh (Debian package docker-compose, --no-install-recommends)"
        )
    return found


def run_compose_config(
    tmp_path: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    """Run `docker-compose config` on the repository's file with only `env` set for it."""
    env_file = tmp_path / "empty.env"  # so that a developer's .env does not count
    env_file.write_text("")
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("INFRACMS_", "POSTGRES_", "COMPOSE_", "DOCKER_"))
    }
    command = [
        docker_compose_binary(),
        "--file",
        str(COMPOSE_FILE),
        "--project-directory",
        str(REPO_ROOT),
        "--env-file",
        str(env_file),
        "config",
        *extra,
    ]
    return subprocess.run(
        command, env={**inherited, **env}, capture_output=True, text=True, timeout=60
    )


def test_services_are_the_multi_machine_shape(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"web", "worker", "beat", "migrate", "redis", "postgres"}
    assert "name" not in compose, "top-level name: is rejected by Debian's docker-compose 1.29"


def test_migrate_is_one_shot_and_the_app_waits_for_it(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["infracms", "db", "upgrade"]
    assert migrate.get("restart") == "no", "a one-shot must not be restarted"
    assert "ports" not in migrate
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on.get("migrate") == {"condition": "service_completed_successfully"}, name
        assert depends_on.get("postgres") == {"condition": "service_healthy"}, name
        assert depends_on.get("redis") == {"condition": "service_healthy"}, name


def test_commands_and_web_port(services: dict[str, Any]) -> None:
    assert services["web"]["command"] == [
        "infracms",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert services["worker"]["command"] == ["infracms", "worker"]
    assert services["beat"]["command"] == ["infracms", "beat"]
    ports = services["web"]["ports"]
    assert len(ports) == 1 and str(ports[0]).endswith(":8000"), f"web ports: {ports}"
    for name in ("worker", "beat", "migrate", "redis", "postgres"):
        assert "ports" not in services[name], f"{name} must not publish a port"


def test_health_checks(services: dict[str, Any]) -> None:
    for name in ("web", "redis", "postgres"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    web_test = " ".join(services["web"]["healthcheck"]["test"])
    assert "127.0.0.1:8000/healthz" in web_test, f"web health check: {web_test}"
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_app_environment_points_at_the_other_services(services: dict[str, Any]) -> None:
    for name in (*APP_SERVICES, "migrate"):
        env = services[name]["environment"]
        assert env["INFRACMS_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in env["INFRACMS_DATABASE_URL"], name
        assert env["INFRACMS_BROKER_URL"].startswith("redis://redis:6379"), name
        assert env["INFRACMS_ENVIRONMENT"] == "production", name
        assert env["INFRACMS_DATA_DIR"] == "/var/lib/infracms", name
    assert services["postgres"]["image"] == "postgres:15"


def test_required_secrets_are_guarded() -> None:
    text = COMPOSE_FILE.read_text()
    for variable in REQUIRED_SECRETS:
        uses = re.findall(r"\$\{" + variable + r"([^}]*)\}", text)
        assert uses, f"{variable} is never used in docker-compose.yml"
        unguarded = [use for use in uses if not use.startswith(":?")]
        assert not unguarded, f"{variable} used without :? (would default silently): {unguarded}"


def test_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name in (*APP_SERVICES, "migrate"):
        assert DATA_MOUNT in services[name]["volumes"], f"{name} lacks {DATA_MOUNT}"
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert set(compose["volumes"]) == {"infracms-data", "postgres-data", "redis-data"}


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    done = run_compose_config(tmp_path, VALID_ENV)
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    resolved = yaml.safe_load(done.stdout)["services"]
    url = resolved["web"]["environment"]["INFRACMS_DATABASE_URL"]
    assert url == "postgresql+psycopg://infracms:0123456789abcdef@postgres:5432/infracms"
    assert resolved["worker"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }, "docker-compose resolved the YAML merge differently from PyYAML"
    quiet = run_compose_config(tmp_path, VALID_ENV, "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stderr


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_docker_compose_refuses_a_missing_secret(tmp_path: Path, missing: str) -> None:
    env = {name: value for name, value in VALID_ENV.items() if name != missing}
    done = run_compose_config(tmp_path, env, "--quiet")
    assert done.returncode != 0, f"docker-compose config passed without {missing}"
    last_line = done.stderr.strip().splitlines()[-1]
    assert f"{missing} must be set" in last_line, f"error does not name {missing}:\n{done.stderr}"


def test_dockerfile_shape() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if re.match(r"[A-Z]+ ", line)]
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert froms and all(base.startswith("python:3.11-slim") for base in froms), froms
    users = [rest.strip() for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, f"runs as {users}"
    assert any(
        keyword == "VOLUME" and "/var/lib/infracms" in rest for keyword, rest in instructions
    )
    assert "openssh-client" in text
    assert re.search(r"pip install --no-deps /src\b", text), (
        "the package is not installed from the repository"
    )
    assert "--require-hashes -r /src/requirements.lock" in text, "the image ignores the lock"
    assert "ansible-core" in (DOCKERFILE.parent / "requirements.lock").read_text()


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    missing = {".git", ".venv", ".env", "var", "**/*.db", "**/secret.key"} - patterns
    assert not missing, f".dockerignore lacks {sorted(missing)}"
