# Convenience wrapper around CMake. `make` builds build/dojo and libdojo;
# `make test` runs the test suite; `make asan` runs it under ASan+UBSan.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
WERROR ?= OFF
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all setup build test asan run bench exhaustive clean

all: build

setup:
	@bash tools/setup.sh

build: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DDOJO_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@bash tools/setup.sh dataset-fashion-mnist
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

asan:
	$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DDOJO_SANITIZE=ON $(CMAKE_FLAGS)"

# The main job: train the classic CNN on Fashion-MNIST (Debian's
# dataset-fashion-mnist, installed if missing), 5 epochs with the model's
# defaults, into runs/fmnist-cnn/. MODEL=... picks another spec.
MODEL ?= models/fmnist-cnn.json
run: build
	@bash tools/setup.sh dataset-fashion-mnist
	./$(BUILD_DIR)/dojo train --model $(MODEL)

bench: build
	./$(BUILD_DIR)/dojo bench cfloat

# Fast path against the reference over all 2^32 float32 inputs (not in CI).
exhaustive: build
	./$(BUILD_DIR)/tests/cfloat_exhaustive

clean:
	rm -rf build build-asan
