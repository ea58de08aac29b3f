# syntax=docker/dockerfile:1
# The RouteIQ gateway image.
#
#   docker build -t routeiq .
#   docker run --rm -p 4000:4000 routeiq                  # serves the bundled demo config (mock models)
#   docker run --rm -p 4000:4000 -v "$PWD/my.yaml:/etc/routeiq/config.yaml:ro" \
#       -e ROUTEIQ_MASTER_KEY -e OPENAI_API_KEY routeiq     # your config, secrets from the environment
#
# No container daemon exists where RouteIQ is developed, so the build itself is not run in the tests:
# tests/deploy/test_dockerfile.py lints this file with hadolint, then runs the build stage's RUN
# commands and the final stage's ENTRYPOINT and HEALTHCHECK in a fresh venv (see docs/deploy.md).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the project's wheel and every dependency, in a venv the final stage copies as is ----
FROM ${PYTHON_IMAGE} AS build
ARG WHEELS=/tmp/wheels
ENV VENV=/opt/routeiq \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY routeiq ./routeiq
# Binary wheels only: the slim base has no compiler, and a dependency that would need one must fail
# the build here rather than pull a toolchain into the image.
RUN python -m venv "$VENV" \
    && "$VENV/bin/pip" wheel --no-cache-dir --no-deps --wheel-dir "$WHEELS" . \
    && "$VENV/bin/pip" install --no-cache-dir --only-binary=:all: "$WHEELS"/routeiq-*.whl \
    && "$VENV/bin/routeiq" version

# ---- runtime: the venv, the classifier data and a non-root user; no compilers, no build files ----
FROM ${PYTHON_IMAGE} AS runtime
ENV VENV=/opt/routeiq \
    PATH=/opt/routeiq/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ROUTEIQ_CONFIG=/etc/routeiq/config.yaml \
    ROUTEIQ_CLASSIFIER_DIR=/app/data/classifier \
    ROUTEIQ_DATA_DIR=/var/lib/routeiq
# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without resolving a name.
RUN groupadd --system --gid 10001 routeiq \
    && useradd --system --uid 10001 --gid routeiq --home-dir /var/lib/routeiq --shell /usr/sbin/nologin routeiq \
    && mkdir -p /var/lib/routeiq \
    && chown routeiq:routeiq /var/lib/routeiq
COPY --from=build /opt/routeiq /opt/routeiq
# The shipped classifier (encoder, prototypes, centroids, sha256 metadata); it lives beside the
# package in the source tree, so the image points ROUTEIQ_CLASSIFIER_DIR at its copy.
COPY data/classifier /app/data/classifier
# The demo config (mock deployments, no keys) until a real one is mounted over it.
COPY config/demo.yaml /etc/routeiq/config.yaml
COPY deploy/docker/healthcheck.py /app/healthcheck.py
WORKDIR /app
USER 10001:10001
EXPOSE 4000
VOLUME ["/var/lib/routeiq"]
# Exec form everywhere: routeiq is PID 1 and gets SIGTERM itself, so the drain
# (drain_timeout_seconds) runs; give `docker stop -t` / the pod's grace period more than that.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["python", "/app/healthcheck.py"]
ENTRYPOINT ["routeiq", "serve"]
