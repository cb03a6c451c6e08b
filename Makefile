# Each target does its own set-up: a local virtualenv, installed from this project's files.
# The install uses uv when it can be had (on PATH, or bootstrapped once from pip into the user's
# cache folder, where the next clone finds it), which makes a fresh clone's `make demo` take seconds
# rather than minutes; without it (or with AGENT_KIT_NO_UV=1), plain pip.
# `make demo` installs the library alone; `make test` / `make bench` add the dev and bench extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_HOME ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/agent_kit/uv
STAMP := $(VENV)/.installed
CORE_STAMP := $(VENV)/.installed-core
DEV_SPEC := .[dev,bench]

.PHONY: demo test bench clean policy-schema

# $(call install,SPEC): make the venv if needed and install SPEC into it (editable). A SPEC with a
# comma goes through a variable ($(DEV_SPEC)): `call` splits its arguments at commas.
define install
	@set -e; \
	uv="$$(command -v uv || true)"; \
	if [ -z "$$uv" ] && [ -x $(UV_HOME)/bin/uv ]; then uv=$(UV_HOME)/bin/uv; fi; \
	if [ -z "$$uv" ] && [ -z "$$AGENT_KIT_NO_UV" ]; then \
	  echo "bootstrapping uv from pip into $(UV_HOME)"; \
	  if $(PYTHON) -m pip install --quiet --disable-pip-version-check --upgrade --target $(UV_HOME) uv >/dev/null 2>&1 \
	      && [ -x $(UV_HOME)/bin/uv ]; then uv=$(UV_HOME)/bin/uv; \
	  else echo "uv is not available; installing with pip"; fi; \
	fi; \
	if [ -n "$$uv" ] && [ -z "$$AGENT_KIT_NO_UV" ]; then \
	  [ -x $(BIN)/python ] || "$$uv" venv --quiet --seed --allow-existing --python "$$(command -v $(PYTHON))" $(VENV); \
	  "$$uv" pip install --quiet --python $(BIN)/python -e "$(1)"; \
	else \
	  [ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -e "$(1)"; \
	fi
endef

$(CORE_STAMP): pyproject.toml
	$(call install,.)
	touch $(CORE_STAMP)

$(STAMP): pyproject.toml
	$(call install,$(DEV_SPEC))
	touch $(CORE_STAMP) $(STAMP)

demo: $(CORE_STAMP)
	$(BIN)/agent-kit demo

test: $(STAMP)  # lint and type-check the library (config in pyproject.toml), then the tests
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

policy-schema: $(STAMP)  # regenerate docs/policy.schema.json from the policy models
	$(BIN)/python -c "import json, agent_kit._policy_schema as s; print(json.dumps(s.json_schema(), indent=2, sort_keys=True))" > docs/policy.schema.json

clean:
	rm -rf $(VENV) .agent_kit .pytest_cache
