#!/usr/bin/env bash
# Build the factory image with podman on a machine that reaches no container registry:
#   1. a Debian bookworm root (python3 3.11, git, CA certificates) made with debootstrap from
#      the Debian mirror, imported as the base image (once; kept as $BASE_IMAGE);
#   2. the project's wheel and its dependencies' wheels from PyPI into docker/wheels;
#   3. docker/Dockerfile on that base, installing offline from those wheels.
# Prints the image's size. Needs root (debootstrap), podman and debootstrap:
#   apt-get install podman debootstrap && docker/build-local.sh
# Environment: IMAGE (default localhost/factory-worker:latest), BASE_IMAGE
# (localhost/debian-python:bookworm), DEBIAN_MIRROR, REBUILD_BASE=1 to remake the base.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/factory-worker:latest}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-python:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python

if [ "${REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
  work=$(mktemp -d /var/tmp/factory-rootfs.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  echo "build-local: debootstrap bookworm into $work"
  debootstrap --variant=minbase --include=python3,git,ca-certificates \
    bookworm "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; exit 1; }
  # What a container never reads: apt's lists and caches, documentation, man pages, locales.
  chroot "$work/root" apt-get clean
  rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/var/cache/* "$work/root"/var/log/* \
    "$work/root"/usr/share/doc/* "$work/root"/usr/share/man/* "$work/root"/usr/share/info/* \
    "$work/root"/usr/share/locale/*
  tar -C "$work/root" --numeric-owner -c . \
    | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  echo "build-local: base image $BASE_IMAGE"
fi

echo "build-local: wheels into docker/wheels"
rm -f docker/wheels/*.whl
# async-timeout: redis needs it below Python 3.11.3, and bookworm's python3 is 3.11.2 (the
# host's may be newer, so its resolver would leave it out).
"$PYTHON" -m pip wheel --quiet --wheel-dir docker/wheels ".[kubernetes]" pip async-timeout \
  >"${TMPDIR:-/tmp}/factory-wheels.log" 2>&1 || { grep -v "is ignored:" "${TMPDIR:-/tmp}/factory-wheels.log"; exit 1; }

echo "build-local: podman build $IMAGE"
podman build --quiet --build-arg BASE="$BASE_IMAGE" -f docker/Dockerfile -t "$IMAGE" . >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "build-local: $IMAGE is $((size / 1000000)) MB ($size bytes)"
