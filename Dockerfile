# Training image for a rented GPU: the nowcast pipeline (`dvc repro`) on CUDA.
#
#   docker build -t nowcast .
#   docker run --gpus all --shm-size 8g \
#     -v "$PWD/datasets:/workspace/datasets" -v "$PWD/model_output:/workspace/model_output" nowcast
#
# Pre-emption: `docker stop -t 120 <container>` sends SIGTERM to PID 1, which is tini here (-g: to the whole
# process group), so `nowcast train` under `dvc repro` gets it, writes checkpoints/<phase>_last.pt and
# stops; the next `docker run` (same volumes) resumes it. Without an init, PID 1 (dvc) would ignore the
# signal and the kill 10 s later would lose the epoch.
#
# The base image's tag carries the same torch version as pyproject's pin (tests/test_dockerfile.py checks
# it); torch is also installed explicitly from PyTorch's CUDA index at that exact version, so a base
# image that drifts can never leave a different torch inside.
ARG TORCH_VERSION=2.13.0
ARG CUDA_VERSION=12.8
ARG BASE_IMAGE=pytorch/pytorch:${TORCH_VERSION}-cuda${CUDA_VERSION}-cudnn9-runtime
FROM ${BASE_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

# pigz: parallel unpacking of the users' tarball (nowcast fetch); git: DVC needs the repository;
# tini: an init that passes `docker stop`'s SIGTERM on to the training process
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pigz git ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /workspace

# The pinned CUDA torch first, then the project with every other dependency from pyproject.toml.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
COPY pyproject.toml README.md ./
COPY nowcast/ nowcast/
# Editable, so that a development container with nbs/ and nowcast/ mounted runs the mounted code.
RUN pip install -e . && python -m ipykernel install --name python3 --display-name "Python 3 (nowcast)"

# The rest of the project (notebooks, pipeline, dvc.yaml, params) for `dvc repro`.
COPY . .

VOLUME ["/workspace/datasets", "/workspace/model_output"]

ENTRYPOINT ["/usr/bin/tini", "-g", "--"]
CMD ["dvc", "repro"]
