#!/usr/bin/env bash
# Install the optional mmpose stack (RTMPose top-down pose, pose lifters) into the current venv
# without compiled mmcv.
#
#   scripts/install_mmpose.sh            # python from $PYTHON, else .venv/bin/python, else python3
#   PYTHON=/path/to/python scripts/install_mmpose.sh
#
# mmcv 2.1.0 has no Linux wheel on PyPI and building its ops takes ~30 min, so this installs the
# pure-Python mmcv-lite instead; csip_reid registers a stand-in for the missing ``mmcv.ops`` module
# before importing mmpose. torch, torchvision, numpy and opencv-python are pinned to the versions
# already installed so that this script never swaps them. Safe to run twice: it does nothing when
# mmpose already imports.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${PYTHON:-}" ]]; then
    py="$PYTHON"
elif [[ -x "$here/.venv/bin/python" ]]; then
    py="$here/.venv/bin/python"
else
    py="$(command -v python3)"
fi
echo "install_mmpose: using $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"

# Same stand-in as csip_reid.pipeline.pose.mmlab: mmpose imports mmcv.ops at load time.
check_import='
import sys, types
if "mmcv.ops" not in sys.modules:
    stub = types.ModuleType("mmcv.ops")
    def _missing(name):
        if name.startswith("__"):
            raise AttributeError(name)
        def fail(*a, **k):
            raise ImportError(f"mmcv.ops.{name} needs compiled mmcv")
        return fail
    stub.__getattr__ = _missing
    sys.modules["mmcv.ops"] = stub
import mmpose, mmengine, mmcv, xtcocotools
print(f"mmpose {mmpose.__version__}, mmengine {mmengine.__version__}, mmcv(-lite) {mmcv.__version__}")
'

if "$py" -c "$check_import" 2>/dev/null; then
    echo "install_mmpose: mmpose already importable; nothing to do"
    exit 0
fi

start=$SECONDS
pip=("$py" -m pip install --disable-pip-version-check)

# Pin what the core stack already has, so no step below can replace it.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
"$py" -m pip list --format=freeze --disable-pip-version-check 2>/dev/null \
    | grep -i -E '^(torch|torchvision|numpy|opencv-python)==' > "$constraints" || true
echo "install_mmpose: keeping $(tr '\n' ' ' < "$constraints")"

echo "install_mmpose: [1/4] mmengine, mmcv-lite and pure-Python dependencies"
"${pip[@]}" -c "$constraints" "setuptools<81" "mmengine==0.10.7" "mmcv-lite==2.1.0" \
    json_tricks munkres scipy six cython

echo "install_mmpose: [2/4] mmpose 1.3.2 and mmdet 3.3.0 without their dependency lists"
# chumpy (an mmpose requirement) does not build and nothing we use imports it.
"${pip[@]}" -c "$constraints" --no-deps "mmpose==1.3.2" "mmdet==3.3.0"

echo "install_mmpose: [3/4] xtcocotools 1.14.3 built from source against the installed numpy"
"${pip[@]}" -c "$constraints" --no-deps --no-build-isolation --no-binary xtcocotools "xtcocotools==1.14.3"

echo "install_mmpose: [4/4] checking the import"
"$py" -c "$check_import"
"$py" -c "import torch, cv2, numpy; print(f'install_mmpose: torch {torch.__version__}, numpy {numpy.__version__}, opencv {cv2.__version__} unchanged')"
echo "install_mmpose: done in $((SECONDS - start)) s"
