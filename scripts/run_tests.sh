#!/usr/bin/env bash
# The whole suite, one pytest process per top-level test folder (tests/cli, tests/core, ...).
#
# Why not one process: on the 2-core build machine a single pytest process over the whole suite
# died of a segmentation fault at ~88 % in three of four fresh-clone runs (2026-12-06), at tests that
# do nothing native themselves (one only waits for a subprocess) and with no Python traceback, i.e.
# in a native background thread left by earlier tests (the process then holds OpenVINO, onnxruntime,
# LiteRT, FFmpeg and Ray thread pools at once). Every folder passes in a process of its own, and so
# do the halves of the suite, so the folders run apart until the thread at fault is found.
#
# Usage: scripts/run_tests.sh PYTHON [PYTEST ARGS...]; exits non-zero if any folder fails.
set -u
py=${1:?usage: run_tests.sh PYTHON [PYTEST ARGS...]}
shift
cd "$(dirname "$0")/.."
rc=0
failed=()
for dir in tests/*/; do
  dir=${dir%/}
  [ -f "$dir/__init__.py" ] || continue  # fixtures/ and helpers/ hold no tests of their own
  [ "$(basename "$dir")" = helpers ] && continue
  echo "== $dir"
  "$py" -m pytest -q "$@" "$dir"
  code=$?
  if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then  # 5: nothing collected (e.g. all deselected)
    rc=1
    failed+=("$dir (exit $code)")
  fi
done
if [ "$rc" -ne 0 ]; then
  echo "failed: ${failed[*]}"
fi
exit "$rc"
