# Two entry points for a fresh clone (see README):
#   make bench  - create .venv, install, run the default benchmark on PercePiano
#   make test   - create .venv, install with test extras, run the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
MODELS ?= mean,ridge,rf,lgbm
SPLIT ?= lopo
JOBS ?= -1
BENCH_ARGS ?=

.PHONY: bench test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# tinysoundfont declares pyaudio (for live playback, which we never use, and which
# does not build without PortAudio headers) as a hard dependency: install it alone.
SYNTH := tinysoundfont==0.3.7

install: $(BIN)/python
	$(BIN)/pip install --quiet --no-deps $(SYNTH)
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet --no-deps $(SYNTH)
	$(BIN)/pip install --quiet -e ".[test]"

bench: install
	$(BIN)/benchmark run --models $(MODELS) --split $(SPLIT) --jobs $(JOBS) $(BENCH_ARGS)

test: install-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
