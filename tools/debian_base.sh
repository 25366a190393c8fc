#!/bin/sh
# A Debian base image with Python 3 for the Dockerfile's BASE_IMAGE, built from Debian's package mirror alone,
# for machines that reach no container registry: debootstrap (minbase + python3, python3-venv), security
# updates, then `docker import`. Needs root, debootstrap and a Docker engine.
#
#   tools/debian_base.sh [TAG]        # default modelyard-base:bookworm
#   make base-image image BASE_IMAGE=modelyard-base:bookworm
#
# MIRROR, SECURITY_MIRROR and SUITE override Debian's defaults (bookworm, deb.debian.org).
set -eu

tag=${1:-modelyard-base:bookworm}
suite=${SUITE:-bookworm}
mirror=${MIRROR:-http://deb.debian.org/debian}
security_mirror=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

for tool in debootstrap docker chroot; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is not installed" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "$0: debootstrap needs root" >&2; exit 2; }

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT INT TERM

debootstrap --variant=minbase --include=python3,python3-venv "$suite" "$rootfs" "$mirror"

cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
# Package scripts must not start services inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get upgrade -y -qq
chroot "$rootfs" apt-get clean
rm -rf "$rootfs/usr/sbin/policy-rc.d" "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*.bin \
    "$rootfs/usr/share/doc/"* "$rootfs/usr/share/man/"* "$rootfs/usr/share/info/"* "$rootfs/var/log/"*

tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $suite minbase + python3, python3-venv" \
    - "$tag"
echo "$tag"
