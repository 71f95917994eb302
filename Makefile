# Two entry points for a fresh clone (see README):
#   make bench  - create .venv, install, run the default benchmark on PercePiano
#   make test   - create .venv, install with test extras, run the test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The models of README's lopo table that need no neural network: make bench prints those rows.
MODELS ?= mean,ridge,rf,lgbm_all
SPLIT ?= lopo
# Every core: results are bit-identical whatever --jobs is; `benchmark run` itself defaults to one worker
# (README, "Jobs, resuming, ensembles").
JOBS ?= -1
BENCH_ARGS ?=

.PHONY: bench test install install-test clean soundfonts

$(BIN)/python:
	@echo "make: creating the virtual environment $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# tinysoundfont declares pyaudio (for live playback, which we never use, and which
# does not build without PortAudio headers) as a hard dependency: install it alone.
SYNTH := tinysoundfont==0.3.7

# pip lists each package it fetches (a fresh install takes about 5 minutes; torch is the largest); the stamp
# files skip the install on later calls until pyproject.toml changes (the package itself is editable).
PIP := $(BIN)/pip install --progress-bar off --no-input --disable-pip-version-check

$(VENV)/.installed: $(BIN)/python pyproject.toml
	@echo "make: installing percepiano-bench and its dependencies into $(VENV) (about 5 minutes the first time)"
	$(BIN)/pip install --quiet --no-deps $(SYNTH)
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	@echo "make: installing percepiano-bench with the test extras into $(VENV) (about 5 minutes the first time)"
	$(BIN)/pip install --quiet --no-deps $(SYNTH)
	$(PIP) -e ".[test]"
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

bench: install
	@echo "make: running $(MODELS) on $(SPLIT) (the run prints its plan and an estimate first)"
	$(BIN)/benchmark run --models $(MODELS) --split $(SPLIT) --jobs $(JOBS) $(BENCH_ARGS)

test: install-test
	$(BIN)/python -m pytest -q

# Opt-in: real piano SoundFonts from Debian/Ubuntu (FluidR3_GM, MuseScore General lossless), for
# --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2[,...]. Needs apt-get and root (or sudo).
SOUNDFONT_PACKAGES ?= fluid-soundfont-gm musescore-general-soundfont-lossless
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

soundfonts:
	@command -v apt-get >/dev/null 2>&1 || { echo "make soundfonts: apt-get not found; install the packages" \
		"$(SOUNDFONT_PACKAGES) with your system's package manager, or download an .sf2 piano and pass" \
		"--soundfont PATH" >&2; exit 1; }
	@$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $(SOUNDFONT_PACKAGES) || { \
		echo "make soundfonts: apt-get could not install $(SOUNDFONT_PACKAGES) (no root, no network, or" \
		"no such package here); run 'apt-get update' first or install them by hand" >&2; exit 1; }
	@ls -l /usr/share/sounds/sf2/*.sf2

clean:
	rm -rf $(VENV) .pytest_cache
