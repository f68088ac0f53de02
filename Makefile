# The two commands: `make demo` and `make test`. Both create .venv on first use.
# `make demo` installs only secagg and its runtime dependencies; the test tools and the torch
# extra (pinned to the CPU build, torch==2.13.0, so the PyTorch example runs in tests) and
# the plot extra (matplotlib, for the emoji example's chart in tests) and the metrics extra
# (prometheus_client, grpcio-health-checking: the operator tests) are
# installed by the targets that use them. Each install has its own stamp.
# The flower extra (flwr[simulation] 1.42, with Ray) lets tests/flower run in `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint typecheck unit test-floor test-coinstall bench clean proto

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $(DEMO_STAMP)

$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test,torch,plot,metrics,flower,ray]'
	touch $(TEST_STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m secagg.cli.demo

# Regenerate the committed gRPC/protobuf modules from src/secagg/transport/secagg.proto with the
# exactly pinned generator in its own environment (tools/proto-requirements.txt), never the
# project venv's: its gencode (protobuf 6.30) is what lets secagg run on protobuf 6.30+ and 7.x.
PROTO_VENV := .proto-venv
PROTO_STAMP := $(PROTO_VENV)/.installed

$(PROTO_STAMP): tools/proto-requirements.txt
	rm -rf $(PROTO_VENV)
	$(PYTHON) -m venv $(PROTO_VENV)
	$(PROTO_VENV)/bin/python -m pip install --quiet -r tools/proto-requirements.txt
	touch $(PROTO_STAMP)

proto: $(PROTO_STAMP)
	$(PROTO_VENV)/bin/python -m grpc_tools.protoc -I src --python_out=src --pyi_out=src \
		--grpc_python_out=src src/secagg/transport/secagg.proto

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy

# The suite runs in parallel worker processes (pytest-xdist), one per core, at most 4: the
# tests are safe in parallel (tmp dirs, ports from below the ephemeral range, no shared files).
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

unit: $(TEST_STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS)

# The transport/codec tests and real network rounds again, in a second environment holding the
# oldest protobuf and grpcio that pyproject.toml admits (read from it by tools/floors.py).
FLOOR_VENV := .venv-floor
FLOOR_STAMP := $(FLOOR_VENV)/.installed
FLOOR_TESTS := tests/transport/test_codec.py tests/transport/test_gencode_version.py \
	tests/transport/test_network.py::test_exact_sum_without_dropouts \
	tests/transport/test_api.py::test_submit_returns_included_outcomes

$(FLOOR_STAMP): pyproject.toml tools/floors.py
	rm -rf $(FLOOR_VENV)
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) tools/floors.py requirements > $(FLOOR_VENV)/floors.txt
	$(FLOOR_VENV)/bin/python -m pip install --quiet -e . pytest hypothesis \
		-c $(FLOOR_VENV)/floors.txt
	touch $(FLOOR_STAMP)

test-floor: $(FLOOR_STAMP)
	$(FLOOR_VENV)/bin/python tools/floors.py check
	$(FLOOR_VENV)/bin/python -m pytest -q -p no:cacheprovider $(FLOOR_TESTS)

# pip resolves secagg together with flwr[simulation]==1.42.* (dry run: metadata only, no wheels;
# needs PyPI, as the installs above do).
test-coinstall: $(TEST_STAMP)
	$(PY) tools/check_coinstall.py

test: lint typecheck unit test-floor test-coinstall

# Benchmarks run in benchmarks/.venv: secagg, matplotlib and Flower (the peer compared side by
# side) in one environment, since secagg's gencode runs on Flower's protobuf 6.x.
BENCH_VENV := benchmarks/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml benchmarks/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . -r benchmarks/requirements.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(FLOOR_VENV) $(PROTO_VENV) .mypy_cache .pytest_cache .ruff_cache
