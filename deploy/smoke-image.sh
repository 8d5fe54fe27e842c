#!/usr/bin/env bash
# Build the image with podman from a Debian base made locally (no container registry needed),
# then run it as its non-root user and walk through observe → learn → predictions.
# Needs root, podman and debootstrap (apt-get install -y podman debootstrap) and Debian's and
# PyPI's package servers. Takes 5–10 minutes; not part of CI (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-/tmp/kato-web-image}
PORT=${PORT:-18940}
BASE=localhost/debian-python:bookworm
mkdir -p "$WORK"

if ! podman image exists "$BASE"; then
  echo "== debootstrap: Debian bookworm with python3 and python3-venv"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$WORK/rootfs" \
    http://deb.debian.org/debian
  tar -C "$WORK/rootfs" -c . | podman import - "$BASE"
fi

echo "== podman build (chroot isolation: this sandbox has no usable cgroups for RUN steps)"
# The host's CA bundle and pip.conf are mounted for the build only, for machines whose PyPI
# traffic goes through an intercepting proxy; they do not end up in the image.
mounts=()
[ -f /etc/pip.conf ] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
[ -f /etc/ssl/certs/ca-certificates.crt ] && mounts+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
podman build --isolation=chroot --network=host "${mounts[@]}" --build-arg PYTHON_IMAGE="$BASE" \
  -t localhost/kato-web:smoke -f Containerfile .

echo "== run the image's file system as its user (uid 10001)"
root="$WORK/image-root"
rm -rf "$root"
mnt=$(podman image mount localhost/kato-web:smoke)
cp -a "$mnt" "$root"
podman image unmount localhost/kato-web:smoke >/dev/null
mount --bind /proc "$root/proc"; mount --bind /dev "$root/dev"
cleanup() { [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; sleep 2; umount "$root/proc" "$root/dev" || true; }
trap cleanup EXIT
setsid chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=/opt/kato-web/bin:/usr/bin:/bin \
  HOME=/var/lib/kato-web NUMBA_CACHE_DIR=/opt/kato-web/numba-cache KATO_BIND=127.0.0.1:$PORT KATO_WORKERS=2 \
  KATO_DATABASE_URL=sqlite:////var/lib/kato-web/kato.sqlite3 \
  sh -c "cd /var/lib/kato-web && kato-web migrate && exec kato-web serve" &
pid=$!
U=127.0.0.1:$PORT
for _ in $(seq 1 60); do curl -sf "$U/health" >/dev/null && break; sleep 1; done
sid=$(curl -s -XPOST $U/sessions -H 'Content-Type: application/json' -d '{"node_id": "smoke"}' \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
for s in hello world again hello world; do
  curl -s -o /dev/null -XPOST $U/sessions/$sid/observe -H 'Content-Type: application/json' -d "{\"strings\": [\"$s\"]}"
  [ "$s" = again ] && curl -s -o /dev/null -XPOST $U/sessions/$sid/learn
done
curl -s $U/sessions/$sid/predictions | python3 -c \
  'import json,sys; f=json.load(sys.stdin)["predictions"][0]["future"]; assert f == [["again"]], f; print("image smoke test passed:", f)'
ps -o user=,cmd= -p "$pid" | grep -q '^10001\|^kato' && echo "served as uid 10001"
