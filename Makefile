# captionqc — the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV_HOME := .cache/uv-bootstrap
UV := $(UV_HOME)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
# Debian packages: espeak-ng + ffmpeg only feed the sample-clip generator; libgl1 is what opencv needs at import.
APT_PACKAGES := espeak-ng ffmpeg fonts-dejavu-core libgl1 libglib2.0-0
MEMBERS := libs/schemas libs/runtime libs/media services/gateway services/ocr services/asr \
           services/crosscheck services/status tools/pubsub_emulator tools/cli
PYTEST_ARGS ?=

.PHONY: help setup run demo test lint fmt bench lock schemas samples clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[1m%-10s\033[0m %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: requirements.lock.txt $(UV) $(foreach m,$(MEMBERS),$(m)/pyproject.toml)
	@./scripts/apt-install.sh $(APT_PACKAGES)
	UV_PYTHON_DOWNLOADS=never $(UV) venv --allow-existing --python python3.11 $(VENV)
	$(UV) pip sync --python $(PY) requirements.lock.txt
	$(UV) pip install --python $(PY) --no-deps $(foreach m,$(MEMBERS),-e $(m))
	@touch $@

setup: $(VENV)/.installed ## Install Python deps (pinned) and the Debian packages the project needs (idempotent)

lock: $(UV) ## Re-resolve dependencies and rewrite requirements.lock.txt (hash-pinned, no index lines)
	$(UV) lock
	$(UV) export --all-packages --no-emit-workspace --format requirements-txt --quiet -o requirements.lock.txt
	sed -i '2s/.*/#    make lock/' requirements.lock.txt
	UV=$(UV) ./infra/docker/export-requirements.sh

run: setup ## Start the whole system locally and leave it serving (Ctrl-C stops it)
	$(VENV)/bin/captionqc stack run

demo: setup ## Start the system, check a bundled sample clip, print the findings
	$(VENV)/bin/captionqc stack demo

test: setup ## Run every test (unit, integration, end-to-end)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: setup ## ruff check, ruff format --check, mypy strict, hadolint, checkov
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m captionqc.schemas.export --check
	./scripts/lint-infra.sh

fmt: setup ## Format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup ## Run the benchmarks (print ratios; never fail on timing)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

schemas: setup ## Regenerate JSON Schema + AsyncAPI documents from libs/schemas
	$(PY) -m captionqc.schemas.export

samples: setup ## Rebuild the committed sample clips (needs espeak-ng + ffmpeg; tests use the committed files)
	$(PY) tools/make_sample_clip/make_sample_clip.py samples/scripts/*.json --out-dir samples
	$(PY) tools/make_sample_clip/make_sample_clip.py --error-samples samples

clean: ## Remove the venv and local state
	rm -rf $(VENV) .cache var
