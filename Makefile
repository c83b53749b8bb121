# xorstream: the two commands a fresh machine needs are `make demo` and `make test`.
# Everything else here is a step of those two, or a benchmark.
VENV ?= .venv
PY := $(VENV)/bin/python
DURATION ?= 30

.PHONY: setup demo test test-unit kafka-up kafka-down prometheus lint format bench bench-model \
        bench-pipeline bench-eos bench-replay robustness clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

## demo: venv, broker, producer + processor for DURATION seconds with a live summary, then clean up
demo: setup
	$(PY) -m stream.demo --duration-s $(DURATION)

## test: venv, broker, Prometheus, then every test (unit + integration); stops what it started
test: setup
	bash scripts/run-tests.sh

test-unit: setup
	$(PY) -m pytest tests/unit -q

kafka-up: setup
	$(PY) -m stream.broker up

kafka-down:
	$(PY) -m stream.broker down

prometheus:
	sh deploy/prometheus/install.sh

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## benchmarks: commands that print figures and ratios against a baseline measured in the same run
bench: bench-model bench-pipeline

bench-model: setup
	$(PY) benchmarks/bench_model.py

bench-pipeline: setup kafka-up
	$(PY) benchmarks/bench_pipeline.py

bench-eos: setup kafka-up
	$(PY) benchmarks/bench_eos.py

bench-replay: setup kafka-up
	$(PY) benchmarks/bench_replay.py

robustness: setup
	$(PY) benchmarks/robustness.py

clean: kafka-down
	rm -rf $(VENV) deploy/kafka/target .cache
