#!/bin/sh
# Install the given Debian packages, plus Python 3 with venv when the base image has none
# (python:3.11-slim has both; a bare debian:bookworm has neither). Leaves no apt lists or .debs behind.
set -eu
pkgs="$*"
command -v python3 >/dev/null 2>&1 || pkgs="$pkgs python3"
python3 -c "import ensurepip, venv" 2>/dev/null || pkgs="$pkgs python3-venv"
if [ -n "$pkgs" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs ca-certificates >/dev/null
    apt-get clean
    rm -rf /var/lib/apt/lists/*
fi
python3 -c "import sys; assert sys.version_info >= (3, 11), f'csip-reid needs Python >= 3.11, base has {sys.version}'"
