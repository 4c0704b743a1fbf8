#!/usr/bin/env bash
# Build dist/socialguard-<version>-py3-none-any.whl from this checkout and print its path.
#
# The build runs on a clean copy of pyproject.toml, README.md and addons/: setuptools keeps a
# build/ directory between builds and would put modules that have since been moved or deleted
# into the wheel. SOURCE_DATE_EPOCH makes the wheel byte for byte the same for the same source,
# so deploy/install.sh can tell by its hash that it is already installed, and a wheel already
# built from the same files is used again without building.
# Usage: deploy/build-wheel.sh [OUTDIR]   (default: dist/ in the checkout)
set -euo pipefail
umask 022
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$src/dist}
py=${PYTHON:-$("$src/scripts/find-python")}
if [ -z "$py" ]; then
  echo "build-wheel: no Python 3.12 or newer found (set PYTHON=/path/to/python3.12)." >&2
  exit 1
fi
version=$("$py" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$src/pyproject.toml")
wheel="socialguard-$version-py3-none-any.whl"
epoch=${SOURCE_DATE_EPOCH:-315532800}
# The same source makes the same wheel: a wheel built from these very files is used again.
digest=$(cd "$src" && {
  echo "$epoch"
  find pyproject.toml README.md addons -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
    ! -path '*.egg-info/*' -printf '%p %m\n' | LC_ALL=C sort
  find pyproject.toml README.md addons -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
    ! -path '*.egg-info/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
} | sha256sum | cut -d' ' -f1)
if [ -f "$out/$wheel" ] && [ "$(cat "$out/.$wheel.source" 2>/dev/null)" = "$digest" ]; then
  echo "$out/$wheel"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/out"
cp -p "$src/pyproject.toml" "$src/README.md" "$work/src/"
# addons/ without caches or egg-info left by editable installs.
tar -C "$src" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - addons \
  | tar -C "$work/src" -xf -
SOURCE_DATE_EPOCH=$epoch \
  "$py" -m pip wheel -q --no-deps --wheel-dir "$work/out" "$work/src" >&2
[ -f "$work/out/$wheel" ] || { echo "build-wheel: pip made no $wheel" >&2; exit 1; }
mkdir -p "$out"
mv -f "$work/out/$wheel" "$out/$wheel"
echo "$digest" >"$out/.$wheel.source"
echo "$out/$wheel"
