# Training image for a rented GPU: the nowcast pipeline (`dvc repro`) on CUDA.
#
#   docker build -t nowcast .
#   docker run --gpus all --shm-size 8g \
#     -v "$PWD/datasets:/workspace/datasets" -v "$PWD/model_output:/workspace/model_output" nowcast
#
# Pre-emption: `docker stop -t 300 <container>` sends SIGTERM to PID 1, which is dumb-init here. It passes
# the signal on to `dvc repro`'s process group as SIGINT (--rewrite 15:2): dvc handles SIGTERM by exiting at once,
# which as PID 1's child would end the container and kill the training process before it saved, but it waits
# for its stage on SIGINT. `nowcast train` writes checkpoints/<phase>_last.pt at the next optimizer step and
# stops, dvc exits, then PID 1. The 300 s cover the worst case (a signal during the end-of-epoch validation and
# its three checkpoint writes) with margin: reports/bench_checkpoint.md. `docker start -a <container>`
# (same container, same checkpoints/) then resumes the phase where it stopped.
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
# dumb-init: PID 1, turns `docker stop`'s SIGTERM into the SIGINT that `dvc repro` waits on (see the top)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pigz git ca-certificates dumb-init \
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

ENTRYPOINT ["/usr/bin/dumb-init", "--rewrite", "15:2", "--"]
CMD ["dvc", "repro"]
