#!/usr/bin/env bash
# The whole suite, one pytest process per top-level test folder (tests/cli, tests/core, ...).
#
# Why not one process: on the 2-core build machine a single pytest process over the whole suite
# died of SIGSEGV at ~88 % in four of five fresh-clone runs (2026-12-06), at tests that do nothing
# native (one only waits for a subprocess), with no Python traceback. The core dump shows the main
# thread inside read() on a subprocess pipe and si_code SI_KERNEL: the kernel could not deliver a
# signal (the child's SIGCHLD) to a handler that runs on an alternate signal stack, the pattern of
# a handler left installed over a stack that was freed. The process by then holds Ray's core-worker
# threads from the in-process Ray tests (tests/distributed), beside OpenVINO's, onnxruntime's and
# OpenMP's. Every folder passes in a process of its own, so the folders run apart until the Ray
# tests leave no handler behind.
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
