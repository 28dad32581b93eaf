#!/usr/bin/env bash
# GPU benchmark of `reid index` (decode, detector FP32/FP16 x batch 1/16, end to end on 1080p),
# in one prepared run of under 8 minutes. On a machine without a GPU it runs the CPU fallback.
#
#   bash bench/gpu.sh                 # on the GPU machine, from anywhere
#   bash bench/gpu.sh --quick         # CPU-sized run (what this project's CPU box can do)
#   VENV=/tmp/v bash bench/gpu.sh --device cuda:1
#   REID_PYTHON=.venv/bin/python bash bench/gpu.sh --quick   # an interpreter that has the deps already
#   WHEELS=/media/wheels bash bench/gpu.sh                     # air-gapped: install from a wheelhouse
#
# Steps: (1) a venv that sees the machine's own torch/CUDA (--system-site-packages), (2) csip-reid
# installed into it (editable) plus onnxruntime-gpu and PyNvVideoCodec when a GPU is present and
# the package index is reachable (skipped, with a note, when it is not: an air-gapped machine uses
# what is installed), (3) `nvidia-smi` and torch's view of CUDA, (4) bench/gpu_bench.py, stopped
# after BENCH_TIMEOUT seconds (default 420) so the whole run stays under 8 minutes.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
VENV="${VENV:-$REPO/.venv-gpu}"
PYTHON="${PYTHON:-python3}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-420}"
PIP_TIMEOUT="${PIP_TIMEOUT:-40}"
say() { printf '== %s\n' "$*"; }

gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu=1
  say "nvidia-smi"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  say "no NVIDIA GPU visible: CPU fallback"
fi

if [[ -n "${REID_PYTHON:-}" ]]; then  # an interpreter that already has csip-reid's dependencies
  PY="$REID_PYTHON"
  say "python $PY (REID_PYTHON)"
else
  say "venv $VENV"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv --system-site-packages "$VENV"
  PY="$VENV/bin/python"
fi

pip_try() {  # pip_try ARGS...: install quietly, never fail the run (offline machines)
  local src=()
  [[ -n "${WHEELS:-}" ]] && src=(--no-index --find-links "$WHEELS")  # an air-gapped wheelhouse
  if ! timeout "$PIP_TIMEOUT" "$PY" -m pip install -q --disable-pip-version-check "${src[@]}" "$@" \
      >/dev/null 2>&1; then
    say "could not install $* (offline or no wheel): using what is installed"
  fi
}
deps_ok() { "$PY" -c "import csip_reid.cli, cv2, torch, onnxruntime, ultralytics" >/dev/null 2>&1; }
if ! deps_ok; then
  PIP_TIMEOUT="${PIP_INSTALL_TIMEOUT:-240}" pip_try -e "$REPO"
fi
if ! deps_ok; then
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  deps_ok || { say "csip-reid's dependencies are missing and cannot be installed: set REID_PYTHON or WHEELS"; exit 2; }
fi
if [[ $gpu == 1 ]]; then
  "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" \
    >/dev/null 2>&1 || pip_try onnxruntime-gpu
  "$PY" -c "import PyNvVideoCodec" >/dev/null 2>&1 || pip_try PyNvVideoCodec
  "$PY" -c "import ray" >/dev/null 2>&1 || pip_try "ray>=2.9"  # the 4-videos-at-once row
fi

say "CUDA as torch sees it"
"$PY" - <<'PYEOF'
import torch
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, available: {torch.cuda.is_available()}")
for i in range(torch.cuda.device_count()):
    print(f"  cuda:{i} {torch.cuda.get_device_name(i)}")
PYEOF

say "benchmark (stopped after ${BENCH_TIMEOUT} s)"
cd "$REPO"
timeout "$BENCH_TIMEOUT" "$PY" bench/gpu_bench.py "$@"
