# vlp — build, test and demo.
#
#   make demo    install what is missing, build, and run the demo
#   make test    install what is missing, build, check formatting/vet, run every test
#   make finetune-learn  the fine-tuning learning tests, from make demo's checkpoint (~25 min)
#   make chaos   every integration scenario and a seeded 10-minute chaos run (root; docs/reliability.md)
#   make image   the control-plane container image, build/image/vlp-control.tar (no Docker daemon)
#
# LIBTORCH points at a LibTorch installation: Debian's libtorch-dev by default
# (headers under /usr/include, libraries under /usr/lib/x86_64-linux-gnu), or a
# PyTorch package's torch/ folder (headers in include/, libraries in lib/).

SHELL := /bin/bash
GO ?= go
BUILD := build
LIBTORCH ?= /usr
PYTHON ?= /usr/bin/python3

ifeq ($(LIBTORCH),/usr)
TORCH_INC := -I/usr/include -I/usr/include/torch/csrc/api/include
TORCH_LIBDIR := /usr/lib/x86_64-linux-gnu
else
TORCH_INC := -I$(LIBTORCH)/include -I$(LIBTORCH)/include/torch/csrc/api/include
TORCH_LIBDIR := $(LIBTORCH)/lib
endif

CXX ?= g++
CXXFLAGS ?= -O2 -g0
SHIM_FLAGS := -std=c++17 -fPIC -fvisibility=hidden $(TORCH_INC) -Wall -Wno-unused-parameter
SHIM_SRCS := $(wildcard torch/csrc/*.cpp)
SHIM_OBJS := $(patsubst torch/csrc/%.cpp,$(BUILD)/obj/%.o,$(SHIM_SRCS))
SHIM_HDRS := $(wildcard torch/csrc/*.h)
LIB := $(BUILD)/lib/libvlptorch.so
BIN := $(BUILD)/bin/vlp

# Debian packages the build, the tests and the demo need.
DEB_PKGS := libtorch-dev libopenblas0-pthread python3-torch python3-torchvision python3-scipy python3-nltk g++ make libturbojpeg0

# Packages whose tests run under the race detector (they are concurrent).
RACE_PKGS := ./coordinator/... ./allreduce/... ./worker/...

.PHONY: all build lib bin deps test test-go fmt-check vet demo finetune-learn clean gpu-bundle fuzz chaos image

all: build

build: lib bin

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# The shim's compile units build in parallel (one job per core).
NPROC := $(shell nproc 2>/dev/null || echo 2)
lib:
	@$(MAKE) --no-print-directory -j$(NPROC) $(LIB)

# AdamW's one-pass loop (torch/csrc/adamw_cpu.cpp) vectorises only with these: sqrt without
# errno changes no value.
$(BUILD)/obj/adamw_cpu.o: SHIM_FLAGS += -O3 -fno-math-errno
# The small matrix products' row loop (torch/csrc/small_matmul.cpp) vectorises at -O3.
$(BUILD)/obj/small_matmul.o: SHIM_FLAGS += -O3

$(BUILD)/obj/%.o: torch/csrc/%.cpp $(SHIM_HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(SHIM_FLAGS) -c $< -o $@

$(LIB): $(SHIM_OBJS)
	@mkdir -p $(dir $@)
	$(CXX) -shared -o $@ $(SHIM_OBJS) -L$(TORCH_LIBDIR) -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10 -Wl,--as-needed -Wl,-rpath,$(TORCH_LIBDIR)

bin:
	@mkdir -p $(BUILD)/bin
	$(GO) build -o $(BIN) ./cmd/vlp

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The torch-backed tests find the shim through VLP_TORCH_LIB; PYTHON is the
# interpreter with Debian's torch/scipy, used as a test oracle. Every stage
# (gofmt, vet, the plain tests, the race-tested packages) runs even when an
# earlier one fails; scripts/test.sh then lists every failure.
test-go:
	GO=$(GO) LIB=$(CURDIR)/$(LIB) BIN=$(CURDIR)/$(BIN) PYTHON=$(PYTHON) RACE_PKGS="$(RACE_PKGS)" ./scripts/test.sh

test: deps build test-go

# fuzz runs each fuzz target of the importer for FUZZTIME (default 30s): make fuzz FUZZTIME=2m
fuzz:
	GO=$(GO) FUZZTIME=$(or $(FUZZTIME),30s) ./scripts/fuzz.sh

demo: deps build
	./scripts/demo.sh

# finetune-learn fine-tunes make demo's checkpoint (running the demo first when it has none) on the
# synthetic VQA and NLVR2 and asserts the margins of docs/finetune.md, "Learning tests":
# make finetune-learn FINETUNE_TASKS=caption,retrieval FINETUNE_SEED=2
finetune-learn: deps build
	GO=$(GO) FINETUNE_TASKS=$(FINETUNE_TASKS) FINETUNE_SEED=$(FINETUNE_SEED) FINETUNE_STEPS=$(FINETUNE_STEPS) ./scripts/finetune-learn.sh

# chaos runs every integration scenario (real processes in network namespaces; needs root),
# then a seeded random sequence of faults for CHAOS_TIME (default 10m) and prints its table:
# make chaos SEED=7 CHAOS_TIME=3m
chaos: bin
	VLP_BIN=$(CURDIR)/$(BIN) VLP_CHAOS_SEED=$(or $(SEED),1) VLP_CHAOS_TIME=$(or $(CHAOS_TIME),10m) \
		$(GO) test -count=1 -timeout 60m -v ./integration/

# image writes the control-plane image (coordinators, the chart's submit Job and helm test) as a
# tarball with Go code, no Docker daemon: vlp built with CGO_ENABLED=0 and the few shared
# libraries purego still links (package image), then reads it back and runs its checks
# (docker load -i, kind load image-archive or crane push take the tarball). The GPU worker image
# is helm/images/worker.Dockerfile.
IMAGE_REPO ?= ghcr.io/e2evlp/vlp-control
image:
	@mkdir -p $(BUILD)/image
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BUILD)/image/vlp ./cmd/vlp
	$(GO) run ./cmd/vlp-image --binary $(BUILD)/image/vlp --out $(BUILD)/image/vlp-control.tar \
		--repository $(IMAGE_REPO) --revision "$$(git rev-parse HEAD 2>/dev/null)"
	VLP_IMAGE=$(CURDIR)/$(BUILD)/image/vlp-control.tar \
		VLP_IMAGE_TAG=$(IMAGE_REPO):$$($(BUILD)/image/vlp version | cut -d' ' -f2) \
		$(GO) test -count=1 -run 'TestImageFile' -v ./image/

# gpu-bundle fills the git-ignored gpu/ with what a GPU host (no Go, no network) needs to build
# the shim against its own PyTorch and run the binding's tests there: scripts/gpu-check.sh.
gpu-bundle:
	rm -rf gpu && mkdir -p gpu/csrc
	$(GO) build -ldflags "-s -w" -o gpu/vlp ./cmd/vlp
	$(GO) test -c -ldflags "-s -w" -o gpu/torch.test ./torch
	cp torch/csrc/*.cpp torch/csrc/*.h gpu/csrc/
	cp scripts/gpu-check.sh gpu/
	@du -sh gpu

clean:
	rm -rf $(BUILD)
