# Two commands set everything up on a machine with Python >= 3.10 and make:
#   make demo   runs the main job
#   make test   lint + tests
# torch is pinned to the CPU build that installs quickly here; on a GPU machine pick yours, e.g.
#   make TORCH=torch==2.13.0 demo    (or TORCH='torch --index-url https://download.pytorch.org/whl/cu128')
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[test,teacher]"
	$(BIN)/python -m pip install -q --no-deps kobert-transformers==0.6.0 textpruner==1.1.post2
	$(BIN)/python tests/transformers_suite.py
	touch $@

# The whole recipe on the bundled Korean reviews: tokenizer, teacher, distilled student, baseline, NSMC, release.
# Re-running skips the stages that are done; PRESET=smoke runs every stage in about a minute.
PRESET ?= mini
demo: $(STAMP)
	$(BIN)/python -m reproduce --preset $(PRESET) --output_dir runs/$(PRESET)

# The suite on every core: each test file runs whole in one worker (the README walk is in order).
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m benchmarks.tokenizer_speed
	$(BIN)/python -m benchmarks.inference_speed
	$(BIN)/python -m benchmarks.distill_speed
	$(BIN)/python -m benchmarks.pretrain_throughput
	$(BIN)/python -m benchmarks.distill_speedup
	$(BIN)/python -m benchmarks.prepare_throughput
	$(BIN)/python -m benchmarks.e5_parity
	$(BIN)/python -m benchmarks.startup
	$(BIN)/python -m benchmarks.service_faults
	$(BIN)/python -m benchmarks.training_faults
	$(BIN)/python -m benchmarks.trainer_resume

clean:
	rm -rf runs .pytest_cache .ruff_cache .hypothesis
