# The GPU worker image of the chart (workerImage): vlp and the LibTorch shim (libvlptorch.so)
# built against the CUDA PyTorch of the base image, as scripts/gpu-check.sh builds it on a GPU
# host. It cannot be built on the project's development machines (no network to a registry, no
# GPU); build it where both are:
#
#   docker build -f helm/images/worker.Dockerfile -t ghcr.io/e2evlp/vlp-worker:0.1.0-dev .
#   docker run --rm --gpus 1 ghcr.io/e2evlp/vlp-worker:0.1.0-dev torch check --device cuda:0
#
# PYTORCH picks the base (a devel tag to build the shim, the runtime tag of the same release to
# run it); the shim's C++ source builds against LibTorch 1.13 and 2.x (docs/torch-binding.md).
ARG PYTORCH=2.5.1-cuda12.4-cudnn9
ARG GO_VERSION=1.26

# vlp itself: pure Go. CGO_ENABLED=0 as for the control-plane image (make image); it loads the
# shim at run time (purego), so it does not link LibTorch.
FROM golang:${GO_VERSION}-bookworm AS vlp
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/vlp ./cmd/vlp

# The shim, against the base image's torch package (headers in include/, libraries in lib/),
# with its C++ ABI and the CUDA runtime headers (VLP_WITH_CUDA: memory statistics, device names).
FROM pytorch/pytorch:${PYTORCH}-devel AS shim
WORKDIR /src
COPY torch/csrc/ csrc/
RUN set -eux; \
    T="$(python -c 'import torch, os; print(os.path.dirname(torch.__file__))')"; \
    ABI="$(python -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')"; \
    mkdir -p obj /out; \
    for f in csrc/*.cpp; do \
        g++ -O2 -g0 -std=c++17 -fPIC -fvisibility=hidden -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
            -I"$T/include" -I"$T/include/torch/csrc/api/include" -DVLP_WITH_CUDA -I/usr/local/cuda/include \
            -Wall -Wno-unused-parameter -c "$f" -o "obj/$(basename "$f" .cpp).o" & \
    done; \
    wait; \
    g++ -shared -o /out/libvlptorch.so obj/*.o -L"$T/lib" -Wl,--no-as-needed \
        -ltorch -ltorch_cpu -lc10 -ltorch_cuda -lc10_cuda -Wl,--as-needed -Wl,-rpath,"$T/lib"; \
    echo "$T/lib" > /out/torch-lib-dir

FROM pytorch/pytorch:${PYTORCH}-runtime
COPY --from=vlp /out/vlp /usr/local/bin/vlp
# ../lib from the binary is where vlp looks for the shim; VLP_TORCH_LIB says it too.
COPY --from=shim /out/libvlptorch.so /usr/local/lib/libvlptorch.so
COPY --from=shim /out/torch-lib-dir /usr/local/lib/vlp-torch-lib-dir
RUN set -eux; \
    test "$(cat /usr/local/lib/vlp-torch-lib-dir)" = "$(python -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib"; \
    groupadd --gid 65532 nonroot; \
    useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin nonroot
ENV VLP_TORCH_LIB=/usr/local/lib/libvlptorch.so \
    HOME=/tmp
LABEL org.opencontainers.image.title="vlp-worker" \
      org.opencontainers.image.description="vlp GPU worker: vlp and its LibTorch shim on a CUDA PyTorch" \
      org.opencontainers.image.source="https://github.com/e2evlp/vlp"
# The chart runs it as 65532 with a read-only root filesystem: /tmp (HOME, CUDA's caches),
# /dev/shm and the shared volume are its writable places.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/vlp"]
CMD ["--help"]
