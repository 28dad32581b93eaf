#!/usr/bin/env bash
# GPU training check of CSIP-ReID: the full MARS-size config on synthetic tracklets at the official
# batch sizes with AMP, a few hundred steps per stage; prints clips/s, peak GPU memory and the
# projected hours for MARS stage 1 and stage 2 (bench/gpu_train.py does the work).
#
#   bash bench/gpu_train.sh                 # 200 timed steps per stage
#   STEPS=300 bash bench/gpu_train.sh --json
#
# Python: $PYTHON if set, else the repo's .venv (created with `make install` when it is missing and
# no python with torch is found), else python3 if it has torch. Without CUDA the script says so and
# runs a tiny CPU smoke version of the same code path.
set -euo pipefail
cd "$(dirname "$0")/.."

has_torch() { "$1" -c "import torch, csip_reid" >/dev/null 2>&1; }

PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x .venv/bin/python ]] && has_torch .venv/bin/python; then
    PY=.venv/bin/python
  elif command -v python3 >/dev/null && PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" has_torch python3; then
    PY=python3
  else
    echo "gpu_train.sh: no python with torch found; running 'make install' (needs pip access or a wheel cache)" >&2
    make install
    PY=.venv/bin/python
  fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_train.sh: torch sees no CUDA device; running the CPU smoke version instead" >&2
  exec "$PY" bench/gpu_train.py --cpu-smoke "$@"
fi
"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}')"
exec "$PY" bench/gpu_train.py --steps "${STEPS:-200}" "$@"
