# syntax=docker/dockerfile:1
# One image, two workloads: `modelyard operator` (control plane) and `modelyard serve` (proxies); the chart
# picks the subcommand. Also `modelyard simulate` for tests. Build: `docker build -t modelyard:dev .`
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first, so a code change does not reinstall them (every one ships a manylinux wheel).
COPY pyproject.toml README.md ./
RUN python - <<'PY' > /tmp/requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
RUN /opt/venv/bin/pip install --only-binary=:all: -r /tmp/requirements.txt
COPY cli cli
COPY proxy proxy
COPY operator operator
RUN /opt/venv/bin/pip install --no-deps . \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib \
 && /opt/venv/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="modelyard" \
      org.opencontainers.image.description="Kubernetes-native LLM gateway: operator and OpenAI-compatible proxy" \
      org.opencontainers.image.licenses="Apache-2.0"
# Bytecode is compiled at build time: the root filesystem is read-only at run time.
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 modelyard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin modelyard
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
# 8080: the OpenAI-compatible API (proxy) or kopf's liveness endpoint (operator); 8081: the proxy admin port.
EXPOSE 8080 8081
ENTRYPOINT ["modelyard"]
CMD ["--help"]
