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

.PHONY: bench test install install-test clean soundfonts

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
