# Convenience wrapper around CMake. `make` builds build/dojo and libdojo;
# `make test` runs the test suite; `make asan` runs it under ASan+UBSan.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
WERROR ?= OFF
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all setup build test asan run bench exhaustive fuzz clean

all: build

setup:
	@bash tools/setup.sh

build: setup
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DDOJO_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

asan:
	$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_FLAGS="-DDOJO_SANITIZE=ON $(CMAKE_FLAGS)"

# The main job on the bundled default data (until training exists: the
# CFloat8 1-4-3 code table at its default bias, then the format summary).
run: build
	./$(BUILD_DIR)/dojo cfloat info --format cfloat8_1_4_3
	./$(BUILD_DIR)/dojo cfloat table --format cfloat8_1_4_3 --bias 7

bench: build
	./$(BUILD_DIR)/dojo bench cfloat

# Fast path against the reference over all 2^32 float32 inputs (not in CI).
exhaustive: build
	./$(BUILD_DIR)/tests/cfloat_exhaustive

clean:
	rm -rf build build-asan
