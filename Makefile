# Quick start: `make demo` and `make test`; each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
ML_STAMP := $(VENV)/.ml-installed-stamp

.PHONY: demo test lint format install clean bench-audio-deps bench-video-deps bench-video

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# dev: tests and lint; bench: imagehash and librosa (the demo's pitch-shifted copy too).
	$(VENV)/bin/pip install --quiet -e '.[dev,bench]'
	# The console's browser tests drive Debian's Chromium (Playwright never downloads one).
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	touch $(STAMP)

install: $(STAMP)

# Training the learned copy descriptor needs torch: several GB, taken from this machine's
# local wheels (see models/README.md). The tests install it so its tests run rather than skip,
# and the `bench` extra (imagehash, librosa) because they run the benchmarks' code, and
# the `cluster` extra (Ray) so the Ray engine's tests run a real local cluster.
$(ML_STAMP): $(STAMP)
	$(VENV)/bin/pip install --quiet -e '.[ml,bench,cluster]'
	touch $(ML_STAMP)

demo: install
	bash samples/demo.sh

# Store tests run on SQLite and on a throwaway PostgreSQL cluster (installed from Debian
# when absent, started on a free loopback port, deleted afterwards).
test: $(ML_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	scripts/pg-test-cluster run -- $(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache *.egg-info

# Chromaprint's fpcalc, the audio benchmark's peer (`ansim bench audio` without --no-fpcalc).
bench-audio-deps:
	command -v fpcalc >/dev/null || (apt-get update -qq && apt-get install -y -qq libchromaprint-tools)

# Meta's vpdq (the video benchmark's peer) compiles against FFmpeg's development headers.
VPDQ_APT := libavdevice-dev libavfilter-dev libavformat-dev libavcodec-dev \
	libswresample-dev libswscale-dev libavutil-dev pkg-config cmake g++

bench-video-deps: install
	$(VENV)/bin/python -c "import vpdq" 2>/dev/null || { \
	  (dpkg -s $(VPDQ_APT) >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq $(VPDQ_APT))) && \
	  $(VENV)/bin/pip install --quiet -e '.[bench-video]'; }

bench-video: bench-video-deps
	$(VENV)/bin/ansim bench video --data ../shared/data/threatexchange/tmk/sample-videos \
	  --out bench-out/video --synthesized 4 --seconds 20
