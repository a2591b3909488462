# syntax=docker/dockerfile:1
# The serving image: `visionloop serve` on ONNX Runtime. It installs the `serve` and `scale` extras
# (FastAPI, uvicorn, onnxruntime, prometheus-client; the PostgreSQL driver and s3fs that the
# VISIONLOOP_DATABASE_URL / VISIONLOOP_BLOB_URL settings need) and never torch.
#
#   docker build -f deploy/docker/serve.Dockerfile -t visionloop-serve .        (from the repository root)
#   docker run --rm -p 8000:8000 -v "$PWD/.visionloop:/workspace" visionloop-serve
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Stage 1: the project's wheel and every wheel it needs for the two extras, in one folder.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[serve,scale]"

# Stage 2: only the installed wheels; no compiler, no build tools, no source tree.
FROM ${PYTHON_IMAGE} AS serve
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VISIONLOOP_WORKSPACE=/workspace
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl
# A fixed numeric uid, so Kubernetes' runAsNonRoot can check it without a runAsUser.
RUN groupadd --system --gid 10001 visionloop \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /workspace \
        --shell /usr/sbin/nologin visionloop \
    && mkdir -p /workspace \
    && chown 10001:10001 /workspace
USER 10001:10001
WORKDIR /workspace
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# uvicorn drains on SIGTERM: no new connections, requests in flight finish (at most
# --graceful-seconds), then the process exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["visionloop", "serve"]
CMD ["--alias", "production", "--host", "0.0.0.0", "--port", "8000", "--graceful-seconds", "20"]
