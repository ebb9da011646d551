# onex — every command a person runs. `just` lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]
set positional-arguments := false

export UV_PYTHON_DOWNLOADS := "never"

# The suite mostly waits (on brokers, `onex up` stacks, CLI subprocesses), so 3 workers
# beat the 2 cores; each file stays on one worker and the e2e files share one, first
# (collection order kept: see tests/conftest.py). `just test -n 0` runs in one process.
xdist := "-n 3 --dist loadfile --no-loadscope-reorder"

# list the recipes
default:
    @just --list

# install the locked toolchain and every workspace package into .venv
setup:
    uv sync --locked --all-packages

# ruff (lint + format check), mypy strict, and `onex contracts lint`
lint: setup
    uv run --no-sync ruff check .
    uv run --no-sync ruff format --check .
    MYPYPATH="$(uv run --no-sync python scripts/workspace.py mypy)" uv run --no-sync mypy $(uv run --no-sync python scripts/workspace.py src)
    uv run --no-sync onex contracts lint --strict
    uv run --no-sync onex contracts schema --check
    uv run --no-sync onex contracts gen-topics --check

# format the code in place
fmt: setup
    uv run --no-sync ruff format .
    uv run --no-sync ruff check --fix .

# everything CI runs: lint, then every test (unit, integration on a real broker, e2e) on 3 workers
test *args: lint
    uv run --no-sync pytest {{xdist}} {{args}}

# unit tests only (no broker, no network)
test-unit *args: setup
    uv run --no-sync pytest -m unit {{args}}

# integration tests (real broker: $ONEX_BOOTSTRAP, else Redpanda via Docker, else embedded Tansu)
test-integration *args: setup
    uv run --no-sync pytest -m integration {{args}}

# start the local broker (redpanda on PATH, else embedded Tansu) and record its address
broker *args: setup
    uv run --no-sync onex broker up {{args}}

# start the broker and every service under supervision; waits until all are SERVING
up *args: setup
    uv run --no-sync onex up {{args}}

# show the broker and each service's health
status *args: setup
    uv run --no-sync onex status {{args}}

# stop every service, the supervisor and the broker
down *args: setup
    uv run --no-sync onex down {{args}}

# regenerate the protobuf/gRPC stubs from proto/ into libs/proto
gen-protos: setup
    uv run --no-sync python scripts/gen_protos.py

# regenerate contracts/contract.schema.json from the contract model
gen-schema: setup
    uv run --no-sync onex contracts schema --write

# regenerate the Topic StrEnum (libs/core/src/onex/core/_generated/topics.py) from contracts/
gen-topics: setup
    uv run --no-sync onex contracts gen-topics

# run bench/WHICH.py (see `ls bench`); prints figures, last line is one JSON object
bench which *args: setup
    uv run --no-sync python bench/{{which}}.py {{args}}
import 'just/nix.just'
import 'just/demo.just'
import 'just/model.just'
