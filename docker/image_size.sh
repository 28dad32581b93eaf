#!/usr/bin/env bash
# What an image weighs and what dominates it (podman, run as root: reads the image's files through
# `podman image mount`; nothing is started). Usage: docker/image_size.sh [IMAGE] [TOP]
set -euo pipefail
image=${1:-csip-reid:latest}
top=${2:-15}
podman image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$image"
root=$(podman image mount "$image")
trap 'podman image umount "$image" >/dev/null' EXIT
site=$(echo "$root"/opt/venv/lib/python3*/site-packages)
total=$(du -sm "$root" | cut -f1)
echo "files: $total MB in all; by top folder (MB):"
du -sm "$root"/opt/venv "$root"/usr/lib "$root"/usr/share "$root"/var 2>/dev/null | sed "s|$root||" | sort -rn
echo "largest Python distributions in /opt/venv (MB, % of the image's files):"
du -sm "$site"/* | sort -rn | head -"$top" | sed "s|$site/||" \
    | awk -v t="$total" '{ printf "%6d  %4.1f%%  %s\n", $1, 100 * $1 / t, $2 }'
echo "largest system libraries (MB):"
du -sm "$root"/usr/lib/x86_64-linux-gnu/* 2>/dev/null | sort -rn | head -5 | sed "s|$root||"
