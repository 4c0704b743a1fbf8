#!/usr/bin/env bash
# Make the offline bundle for a gateway that cannot reach the package registries, on a machine
# that can: dist/socialguard-<version>/ and dist/socialguard-<version>-offline.tar.gz.
#
# It holds socialguard's wheel, every wheel requirements.lock names (checked against the lock's
# hashes as they are downloaded), for CPython 3.12 and 3.13 on 64-bit Intel/AMD Linux, and the
# files deploy/install.sh needs beside them. On the gateway:
#     tar xzf socialguard-<version>-offline.tar.gz
#     sudo socialguard-<version>/deploy/install.sh --wheelhouse socialguard-<version>/wheelhouse
# Usage: deploy/make-wheelhouse.sh [OUTDIR]   (default: dist/ in the checkout)
set -euo pipefail
umask 022
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dist=${1:-$src/dist}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
cd "$src"
py=${PYTHON:-$(scripts/find-python)}
if [ -z "$py" ]; then
  echo "make-wheelhouse: no Python 3.12 or newer found (set PYTHON=/path/to/python3.12)." >&2
  exit 1
fi
wheel=$(PYTHON=$py deploy/build-wheel.sh "$dist")
version=$(basename "$wheel" | cut -d- -f2)
bundle=$dist/socialguard-$version
rm -rf "$bundle" "$bundle-offline.tar.gz"
mkdir -p "$bundle/wheelhouse"

# Debian 13 ships glibc 2.41 and Ubuntu 24.04 glibc 2.39: take wheels built for 2.39 or older.
platforms=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
for minor in $(seq 5 39); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
# WHEELHOUSE_PYTHONS narrows the bundle to the versions the gateways run (the tests use one).
for version_wanted in ${WHEELHOUSE_PYTHONS:-3.12 3.13}; do
  "$py" -m pip download -q --require-hashes -r requirements.lock --dest "$bundle/wheelhouse" \
    --only-binary=:all: --implementation cp --python-version "$version_wanted" "${platforms[@]}"
done
cp "$wheel" requirements.lock "$bundle/wheelhouse/"

# What install.sh reads beside the wheels, at the same paths as in the checkout.
mkdir -p "$bundle/config" "$bundle/allowlists" "$bundle/scripts" "$bundle/docs"
cp -r deploy "$bundle/"
cp config/policy.yaml "$bundle/config/"
cp allowlists/authorisations.yaml "$bundle/allowlists/"
cp scripts/find-python "$bundle/scripts/"
cp docs/OPERATIONS.md "$bundle/docs/"
cp README.md "$bundle/"
tar -C "$dist" -czf "$bundle-offline.tar.gz" "socialguard-$version"
echo "$bundle-offline.tar.gz ($(find "$bundle/wheelhouse" -name '*.whl' | wc -l) wheels)"
