# One image, two workloads: `modelyard operator` (control plane) and `modelyard serve` (proxies); the chart
# picks the subcommand. Also `modelyard simulate` for tests. Build: `make image` (`docker build -t modelyard:dev .`).
#
# Plain Dockerfile syntax (no frontend directive, no heredocs): the classic builder, BuildKit and buildah all
# build it. BASE_IMAGE is any Debian-based image with Python 3.11+ and its venv module: the official python
# image (Python in /usr/local) or a mirrored one, or Debian's own python3 in /usr/bin (tools/debian_base.sh,
# `make base-image`, for machines that reach no registry). Both stages use it, so the venv's interpreter path
# is the same at build and at run time.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never UV_PYTHON_PREFERENCE=only-system UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# PEM certificates the build trusts besides the public ones when it fetches packages: the CA of a
# TLS-intercepting proxy, if any (tools/build_image.sh passes BUILD_CA's). Not part of the final image.
ARG EXTRA_CA_CERTS=""
ENV PIP_CERT=/opt/tools/ca.pem SSL_CERT_FILE=/opt/tools/ca.pem
# uv and the build backend, pinned with their hashes: the only packages not installed from uv.lock.
COPY tools/uv-requirements.txt tools/build-requirements.txt tools/
RUN python3 -m venv /opt/tools \
 && /opt/tools/bin/python -c 'import pip._vendor.certifi as c; print(open(c.where()).read())' > /opt/tools/ca.pem \
 && printf '%s\n' "$EXTRA_CA_CERTS" >> /opt/tools/ca.pem \
 && /opt/tools/bin/pip install --quiet --require-hashes --no-deps --only-binary :all: \
        -r tools/uv-requirements.txt -r tools/build-requirements.txt
# The runtime dependencies exactly as uv.lock pins them, hashes verified; no dependency group, no pip, no
# setuptools. Before the code, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/tools/bin/uv venv --python python3 /opt/venv \
 && /opt/tools/bin/uv sync --frozen --no-default-groups --no-install-project --python /opt/venv/bin/python
# The project itself, as a wheel built offline by the pinned backend. The venv's bytecode is checked against
# nothing at run time (unchecked-hash): the venv never changes after this, and some builders (buildah) give
# the files COPY --from copies new modification times, which would make timestamp-checked .pyc files stale.
COPY cli cli
COPY contract contract
COPY proxy proxy
COPY operator operator
RUN /opt/tools/bin/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
 && /opt/tools/bin/uv pip install --no-deps --python /opt/venv/bin/python /tmp/dist/*.whl \
 && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="modelyard" \
      org.opencontainers.image.description="Kubernetes-native LLM gateway: operator and OpenAI-compatible proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
# The root filesystem is read-only at run time, so bytecode is compiled here or on every start: the venv in
# the builder, the standard library (which the official python images ship without .pyc files) here.
RUN python3 -m compileall -q -j 0 "$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')" \
 && groupadd --gid 10001 modelyard \
 && useradd --no-log-init --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin modelyard
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
# 8080: the OpenAI-compatible API (proxy) or the operator's health endpoints; 8081: the proxy admin port.
EXPOSE 8080 8081
ENTRYPOINT ["modelyard"]
CMD ["--help"]
