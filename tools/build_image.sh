#!/bin/sh
# Builds the container image (`make image`, and the image and kind tests): docker build with BASE_IMAGE, and
# BUILD_CA's certificates trusted while packages are fetched when the network intercepts TLS.
#
#   [BASE_IMAGE=modelyard-base:bookworm] [BUILD_CA=/path/to/ca.pem] tools/build_image.sh TAG
set -eu

tag=${1:?usage: tools/build_image.sh TAG}
cd "$(dirname "$0")/.."
set -- --build-arg "BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim-bookworm}" --tag "$tag"
if [ -n "${BUILD_CA:-}" ]; then
    set -- "$@" --build-arg "EXTRA_CA_CERTS=$(cat "$BUILD_CA")"
fi
exec docker build "$@" .
