# syntax=docker/dockerfile:1
# The training image: `visionloop agent` (the default command) and `visionloop run`, with the
# `train` and `scale` extras and the CPU build of PyTorch.
#
#   docker build -f deploy/docker/trainer.Dockerfile -t visionloop-trainer .    (from the repository root)
#   docker run --rm --init -v "$PWD/.visionloop:/workspace" visionloop-trainer          # the agent
#   docker run --rm --init -v "$PWD/.visionloop:/workspace" visionloop-trainer run      # one pipeline run
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Stage 1: every wheel. torch and torchvision come from PyTorch's CPU index first (a few hundred MB
# instead of the CUDA build's gigabytes); the project's `train` extra pins the same versions.
FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN pip wheel --no-cache-dir --wheel-dir /wheels --index-url "${TORCH_INDEX}" \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels --find-links /wheels ".[train,scale]"

# Stage 2: the installed wheels only.
FROM ${PYTHON_IMAGE} AS trainer
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VISIONLOOP_WORKSPACE=/workspace \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl
RUN groupadd --system --gid 10001 visionloop \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /workspace \
        --shell /usr/sbin/nologin visionloop \
    && mkdir -p /workspace \
    && chown 10001:10001 /workspace
USER 10001:10001
WORKDIR /workspace
# The agent stops on SIGTERM at the next step boundary (training checks between batches); the run
# is recorded as interrupted and resumed by the next agent.
STOPSIGNAL SIGTERM
ENTRYPOINT ["visionloop"]
CMD ["agent"]
