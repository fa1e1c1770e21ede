# The two commands of the README. Each one sets up what it needs first.
#   make demo   set up, then run the main job on the embedded default (SQLite, software keys)
#   make test   set up, then run every check: ruff, mypy --strict, the whole pytest suite
.PHONY: demo test setup bench clean

demo:
	@scripts/setup
	@.venv/bin/openecos demo

test:
	@scripts/setup
	@scripts/test

setup:
	@scripts/setup

bench:
	@scripts/setup
	@.venv/bin/python bench/run.py

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache .hypothesis
