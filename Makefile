# csip-reid: `make demo` runs the main job, `make test` runs the test suite. Both create .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch/torchvision pins that install from this machine kind's local disk (see docs/install.md);
# override on other machines, e.g. `make TORCH_PKGS="torch torchvision" test`.
TORCH_PKGS ?= torch==2.14.1 torchvision==0.29.1
REID_TEST_DATA ?= $(abspath ../shared/data)
VIDEOS ?= $(REID_TEST_DATA)/videos
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=
export REID_TEST_DATA

STAMP := $(VENV)/.installed
MMPOSE_STAMP := $(VENV)/.mmpose-installed

.PHONY: install mmpose chromium test test-fast demo lint bench clean image image-test image-base

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24,<26"

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q $(TORCH_PKGS)
	$(PIP) install -q -e '.[dev,export,ray,serve,browser-tests]'
	@touch $@

install: $(STAMP)

# mmpose (RTMPose) cannot be a plain pip extra on this stack: a script installs it (docs/install.md).
$(MMPOSE_STAMP): $(STAMP) scripts/install_mmpose.sh
	PYTHON=$(PY) bash scripts/install_mmpose.sh
	@touch $@

mmpose: $(MMPOSE_STAMP)

# The browser tests of `reid serve` drive Debian's chromium (playwright cannot download one here).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed: the browser tests will be skipped"

test: $(STAMP) $(MMPOSE_STAMP) chromium
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The unit tests without real video (tests/conftest.py marks `video` every test that reads it) and
# without the `slow` end-to-end runs: a few minutes, for the edit-test loop. `make test` stays the whole suite.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not video" $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) scripts/demo.py --videos "$(VIDEOS)" --out "$(DEMO_OUT)"

lint: $(STAMP)
	$(VENV)/bin/ruff check csip_reid tests bench scripts

bench: $(STAMP)
	$(PY) bench/gallery_search.py
	$(PY) bench/index_throughput.py
	$(PY) bench/stage_profile.py

# Container image (docker/Dockerfile, podman or docker; not part of `make test`). Settings come from
# the command line, e.g. `make image-test BASE_IMAGE=localhost/debian-python:bookworm TORCH_INDEX=`
# (README, "Container image"). image-test builds the stage that indexes and queries a sample inside.
image:
	bash docker/build.sh runtime

image-test:
	bash docker/build.sh test

# A Debian bookworm base with Python 3.11 from mmdebstrap, for machines that cannot pull python:3.11-slim.
image-base:
	bash docker/build.sh base

clean:
	rm -rf $(DEMO_OUT) .pytest_cache build *.egg-info
