#!/usr/bin/env bash
# README's second command (and CI's): set up .venv, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
# Two workers, one test file each at a time: much of the suite is single-threaded (interpreter
# start-ups, config building, data loading), so both cores stay busy; a file's module fixtures
# stay in one worker. Arguments after the command's own are pytest's (e.g. -n 0 for one process).
exec .venv/bin/python -m pytest tests -n 2 --dist loadfile "$@"
