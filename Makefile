# Two commands on a fresh machine: `make run` and `make test`. Both create and reuse .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
EXAMPLE := examples/greet/package.yaml

export RAY_USAGE_STATS_ENABLED = 0

.PHONY: run test lint types unit integration e2e fault cluster down bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (found: $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/jobico up
	@$(BIN)/jobico show demogo go-demo-job >/dev/null 2>&1 || $(BIN)/jobico deploy $(EXAMPLE)
	@$(BIN)/jobico show demogo go-demo-job
	@echo
	@echo "Try it:"
	@echo "  curl -s -X POST http://127.0.0.1:8000/events/demogo/evgo -H 'content-type: application/json' \\"
	@echo "       -d '{\"data\":[{\"firstName\":\"john\",\"lastName\":\"connor\",\"age\":50}]}'"
	@echo "  $(BIN)/jobico executions --tenant demogo"
	@echo "Stop it with: $(BIN)/jobico down"

test: lint types unit integration e2e fault cluster

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e -q

fault: $(STAMP)
	$(BIN)/pytest tests/fault -q

# A two-node Ray cluster of its own (ray start on 127.0.0.2 and 127.0.0.3), about 2 minutes.
cluster: $(STAMP)
	$(BIN)/pytest tests/cluster -q

down: $(STAMP)
	$(BIN)/jobico down

clean:
	rm -rf $(VENV) .jobico .pytest_cache .mypy_cache .ruff_cache
