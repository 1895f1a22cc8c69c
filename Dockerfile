# infracms: one image for web, worker, beat and migrate (see docker-compose.yml).
#
#   docker build -t infracms:local .
#
# Build stage: a virtual environment with the package (from this repository) and
# Ansible; the runtime stage copies it, so pip's caches and the source tree's
# build leftovers stay behind.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Exactly the versions in requirements.lock (with their hashes), as `make run` installs them;
# then the package itself, which adds nothing the lock does not have.
COPY . /src
RUN python -m venv /opt/infracms \
    && /opt/infracms/bin/pip install --require-hashes -r /src/requirements.lock \
    && /opt/infracms/bin/pip install --no-deps /src

FROM python:3.11-slim

# openssh-client: Ansible reaches hosts over SSH; sshpass: for password credentials.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openssh-client sshpass \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 infracms \
    && useradd --system --uid 10001 --gid infracms --home-dir /var/lib/infracms \
       --shell /usr/sbin/nologin infracms \
    && mkdir -p /var/lib/infracms \
    && chown infracms:infracms /var/lib/infracms

COPY --from=build /opt/infracms /opt/infracms
# The generic playbooks live beside the package in the repository, not inside it.
COPY --from=build /src /opt/infracms/src

ENV PATH=/opt/infracms/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/infracms \
    INFRACMS_ENVIRONMENT=production \
    INFRACMS_DATA_DIR=/var/lib/infracms \
    INFRACMS_LISTEN_HOST=0.0.0.0 \
    INFRACMS_LISTEN_PORT=8000

WORKDIR /opt/infracms/src
USER infracms:infracms
VOLUME ["/var/lib/infracms"]
EXPOSE 8000

CMD ["infracms", "serve", "--host", "0.0.0.0", "--port", "8000"]
