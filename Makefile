# The two commands: `make demo` and `make test`. Both create .venv on first use.
# `make demo` installs only secagg and its runtime dependencies; the test tools and the torch
# extra (pinned to the CPU build, torch==2.13.0, so the PyTorch example runs in tests) are
# installed by the targets that use them. Each install has its own stamp.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint typecheck unit bench clean proto

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $(DEMO_STAMP)

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test,torch]'
	touch $(TEST_STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m secagg.demo

# Regenerate the committed gRPC/protobuf modules from src/secagg/transport/secagg.proto.
proto: $(TEST_STAMP)
	$(PY) -m grpc_tools.protoc -I src --python_out=src --pyi_out=src --grpc_python_out=src \
		src/secagg/transport/secagg.proto

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy

unit: $(TEST_STAMP)
	$(PY) -m pytest

test: lint typecheck unit

# Benchmarks run in their own environments: benchmarks/.venv (secagg + matplotlib) and, since
# Flower pins protobuf < 7 and secagg's gRPC code needs >= 7, benchmarks/.venv/flwr (Flower).
BENCH_VENV := benchmarks/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed
FLWR_VENV := $(BENCH_VENV)/flwr
FLWR_STAMP := $(FLWR_VENV)/.installed

$(BENCH_STAMP): pyproject.toml benchmarks/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	touch $(BENCH_STAMP)

$(FLWR_STAMP): benchmarks/requirements-flwr.txt $(BENCH_STAMP)
	test -x $(FLWR_VENV)/bin/python || $(PYTHON) -m venv $(FLWR_VENV)
	$(FLWR_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-flwr.txt
	touch $(FLWR_STAMP)

bench: $(BENCH_STAMP) $(FLWR_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
