#!/usr/bin/env bash
# Build the csip-reid image with podman (or docker): `make image` / `make image-test` call this.
#   docker/build.sh [runtime|test|base]
#     runtime  the image (tag $IMAGE, default csip-reid:VERSION and csip-reid:latest; -cuda with EXTRAS=gpu)
#     test     the smoke-test stage: indexes and queries a sample of $REID_TEST_DATA inside the image
#     base     a Debian bookworm base with Python 3.11 made by mmdebstrap (no registry needed),
#              imported as $BASE_LOCAL; then build with BASE_IMAGE=$BASE_LOCAL
# Settings (environment): CONTAINER (podman|docker), BASE_IMAGE, TORCH_INDEX, TORCH_PKGS, EXTRAS,
# IMAGE, REID_TEST_DATA, PIP (whose `pip config list` is handed to the build, see below),
# PODMAN_ISOLATION (default chroot: works where podman cannot create namespaces), DEBIAN_MIRROR.
# Machines whose pip reads local package folders (find-links, file:// indexes, a constraint file):
# the same settings are written to a pip.conf mounted read-only into the build's RUN steps, with
# the folders they name, so the build installs from them. Nothing of it lands in the image.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-runtime}
CONTAINER=${CONTAINER:-$(command -v podman >/dev/null && echo podman || echo docker)}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
suffix=""; case ",${EXTRAS:-}," in *,gpu,*) suffix=-cuda;; esac
IMAGE=${IMAGE:-csip-reid:$VERSION$suffix}
BASE_LOCAL=${BASE_LOCAL:-localhost/debian-python:bookworm}
REID_TEST_DATA=${REID_TEST_DATA:-$(cd .. && pwd)/shared/data}

if [ "$what" = base ]; then
    command -v mmdebstrap >/dev/null || { echo "error: mmdebstrap not found (apt-get install mmdebstrap)" >&2; exit 2; }
    tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
    mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$tmp/rootfs.tar" \
        "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    "$CONTAINER" import "$tmp/rootfs.tar" "$BASE_LOCAL"
    echo "base image: $BASE_LOCAL (build with BASE_IMAGE=$BASE_LOCAL)"
    exit 0
fi

if [ "$what" = test ] && [ ! -d "$REID_TEST_DATA/models" ]; then
    echo "error: no models/ in $REID_TEST_DATA (set REID_TEST_DATA)" >&2; exit 2
fi
case "$what" in runtime|test) ;; *) echo "error: unknown target '$what' (runtime, test or base)" >&2; exit 2;; esac

args=(-f docker/Dockerfile)
[ "$CONTAINER" = podman ] && args+=(--isolation "${PODMAN_ISOLATION:-chroot}")
for a in BASE_IMAGE TORCH_INDEX TORCH_PKGS EXTRAS; do
    [ -n "${!a+x}" ] && args+=(--build-arg "$a=${!a}")
done

# The host's pip settings, when they point at local folders, go into the build (podman: -v).
PIP=${PIP:-$( [ -x .venv/bin/pip ] && echo .venv/bin/pip || echo pip3 )}
tmpconf=$(mktemp); trap 'rm -f "$tmpconf"' EXIT
if "$PIP" config list >"$tmpconf.list" 2>/dev/null && [ "$CONTAINER" = podman ]; then
    python3 - "$tmpconf.list" "$tmpconf" >"$tmpconf.mounts" <<'PY'
import re, sys
from pathlib import Path
keys = ("find-links", "extra-index-url", "index-url", "constraint", "cert")
conf, mounts = {}, set()
for line in Path(sys.argv[1]).read_text().splitlines():
    m = re.match(r"(?:global|install|:env:)\.([\w-]+)='(.*)'$", line)
    if m and m.group(1) in keys:
        conf[m.group(1)] = m.group(2)
if Path(conf.get("cert", "/nonexistent")).is_file():  # the host's CA bundle, beside the image's own
    mounts.add(f"{conf['cert']}:/etc/pip-host-ca.pem")
    conf["cert"] = "/etc/pip-host-ca.pem"
else:
    conf.pop("cert", None)
for key, value in conf.items():
    for item in value.split() if key != "cert" else ():
        p = Path(item.removeprefix("file://"))
        if p.is_absolute() and p.exists():
            # mount the folder that holds it (an index's files sit beside its simple/ folder)
            root = p.parent if p.name == "simple" else (p if p.is_dir() else p.parent)
            mounts.add(f"{root}:{root}")
Path(sys.argv[2]).write_text("[global]\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
print("\n".join(sorted(mounts)))
PY
    if [ -s "$tmpconf.mounts" ]; then
        while read -r m; do args+=(-v "$m:ro"); done <"$tmpconf.mounts"
        args+=(-v "$tmpconf:/etc/pip.conf:ro")
    fi
fi
rm -f "$tmpconf.list" "$tmpconf.mounts"

if [ "$what" = test ]; then
    args+=(--target test --build-context "testdata=$REID_TEST_DATA" -t "${IMAGE%%:*}:test$suffix")
else
    args+=(-t "$IMAGE" -t "${IMAGE%%:*}:latest$suffix")
fi
echo "+ $CONTAINER build ${args[*]} ." >&2
nice -n "${NICE:-10}" "$CONTAINER" build "${args[@]}" .
if [ "$what" = runtime ]; then
    "$CONTAINER" image ls "$IMAGE"
fi
