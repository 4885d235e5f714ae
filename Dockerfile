# Training image for a rented GPU: the nowcast pipeline (`dvc repro`) on CUDA.
#
#   docker build -t nowcast .
#   docker run --gpus all --shm-size 8g \
#     -v "$PWD/datasets:/workspace/datasets" -v "$PWD/model_output:/workspace/model_output" nowcast
#
# Pre-emption: `docker stop -t 300 <container>` sends SIGTERM to PID 1, dumb-init, which hands it on to the
# process group of `dvc repro` as SIGINT (--rewrite 15:2). On SIGTERM dvc would exit at once, PID 1 with it, and
# the kernel would kill the training process before it saved; on SIGINT dvc waits for its stage. So
# `nowcast train` writes checkpoints/<phase>_last.pt at the next optimizer step, exits, then dvc and PID 1 do;
# `docker start -a <container>` resumes the phase (tests/test_preemption.py runs ENTRYPOINT + CMD this way).
# The grace: a full-scale checkpoint (3.6 MB AdvectionNet, 31 MB ConvLSTM3D_Enhanced, with AdamW's state) is
# written in under 0.2 s (reports/bench_checkpoint.md); the 300 s are for the optimizer step in progress or an
# end-of-epoch validation pass, not measured on the H200 (no GPU where the benchmark ran), with ample margin.
#
# The CPU float path: every `nowcast` command that runs a model pins it (nowcast.floatpath: ATen AVX2, oneDNN up to
# AVX2, MKL's COMPATIBLE branch, 2 threads), here as on a laptop, so CPU work in the image adds up as the committed
# run did; `docker run -e NOWCAST_FLOAT_PATH=native ...` takes the machine's fastest path instead. CUDA is its own path.
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
