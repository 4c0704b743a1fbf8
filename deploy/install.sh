#!/usr/bin/env bash
# Install or upgrade socialguard on a Debian 13 / Ubuntu 24.04 gateway (see docs/OPERATIONS.md).
#
#   sudo deploy/install.sh                       # build the wheel from this checkout, install it
#   sudo deploy/install.sh --wheel FILE.whl      # install a wheel built elsewhere
#   sudo deploy/install.sh --wheelhouse DIR      # offline: wheels and lock from `make wheelhouse`
#   DESTDIR=/tmp/root deploy/install.sh          # into a staging root; the running system is
#                                                # not touched (no user, no chown, no systemctl)
#
# It installs /opt/socialguard (a virtualenv holding the wheel and exactly the dependencies that
# requirements.lock pins, checked against its hashes; no test tools), the socialguard user and
# group, the page's user socialguard-admin (in that group), /etc/socialguard (policy.yaml and
# the nftables templates, each only where absent: an upgrade keeps IT's files),
# /etc/socialguard/allowlists/authorisations.yaml (the page's to write, the proxy's to read;
# only where absent, and a list found at /etc/socialguard/authorisations.yaml is moved there
# once, as it is), /var/lib/socialguard and /var/log/socialguard (0750), the systemd units (the
# proxy, the Practice Manager's page, the digest and policy-pull timers) and
# /usr/local/bin/socialguard (a link to /opt/socialguard/bin). It starts and enables nothing.
# Running it again with the same wheel and lock changes nothing. An upgrade builds the new
# virtualenv beside the old one and swaps them only once it is complete, so a failed download
# leaves the running version in place; the proxy and the page are then restarted if they were
# running.
set -euo pipefail
umask 022

usage() {
  sed -n '4,8s/^# \{0,1\}//p' "$0" >&2
  echo "Options: --wheel FILE, --wheelhouse DIR, --python PATH (a Python 3.12 or newer), --force" >&2
  exit 2
}

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wheel="" wheelhouse="" python=${PYTHON:-} force=0
while [ $# -gt 0 ]; do
  case $1 in
    --wheel) [ $# -ge 2 ] || usage; wheel=$2; shift 2 ;;
    --wheelhouse) [ $# -ge 2 ] || usage; wheelhouse=$2; shift 2 ;;
    --python) [ $# -ge 2 ] || usage; python=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h | --help) usage ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage ;;
  esac
done

root=${DESTDIR:-}
root=${root%/}
live=1
if [ -n "$root" ]; then
  live=0
  mkdir -p "$root"
  root=$(cd "$root" && pwd)  # the virtualenv's scripts name their absolute path
fi
prefix=/opt/socialguard
say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

if [ "$live" = 1 ] && [ "$(id -u)" != 0 ]; then
  die "run it as root (sudo deploy/install.sh), or with DESTDIR=DIR to install into a staging root"
fi
units=(socialguard.service socialguard-admin.service socialguard-digest.service
  socialguard-digest.timer socialguard-pull.service socialguard-pull.timer)
for f in "${units[@]/#/deploy/systemd/}" config/policy.yaml allowlists/authorisations.yaml; do
  [ -f "$src/$f" ] || die "$src/$f is missing: run this script from a socialguard checkout or bundle"
done

# A Python 3.12+ that the socialguard user can run: the system's before any in a home directory
# (the unit has ProtectHome=yes), else whatever scripts/find-python finds; the test is the same.
usable() { "$1" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; }
if [ -z "$python" ]; then
  for c in /usr/bin/python3 /usr/bin/python3.13 /usr/bin/python3.12; do
    if [ -x "$c" ] && usable "$c"; then python=$c; break; fi
  done
  [ -n "$python" ] || python=$("$src/scripts/find-python")
fi
[ -n "$python" ] || die "no Python 3.12 or newer with venv found: apt-get install python3 python3-venv"
usable "$python" \
  || die "$python is not a Python 3.12 or newer with venv and ensurepip (apt-get install python3-venv)"
case $(readlink -f "$python") in
  /root/* | /home/*)
    [ "$live" = 0 ] || say "warning: $python is under a home directory, which the service cannot" \
      "read (ProtectHome=yes); install Debian's python3 and python3-venv, or pass --python" ;;
esac

# The wheel and the lock.
lock=$src/requirements.lock
pip_from=()
if [ -n "$wheelhouse" ]; then
  [ -d "$wheelhouse" ] || die "--wheelhouse $wheelhouse: no such directory"
  wheelhouse=$(cd "$wheelhouse" && pwd)
  [ -f "$wheelhouse/requirements.lock" ] && lock=$wheelhouse/requirements.lock
  pip_from=(--no-index --find-links "$wheelhouse")
  if [ -z "$wheel" ]; then
    shopt -s nullglob
    found=("$wheelhouse"/socialguard-*-py3-none-any.whl)
    shopt -u nullglob
    [ ${#found[@]} = 1 ] || die "$wheelhouse must hold exactly one socialguard-*.whl (it holds ${#found[@]})"
    wheel=${found[0]}
  fi
elif [ -z "$wheel" ]; then
  say "building the wheel from $src"
  wheel=$(PYTHON=$python "$src/deploy/build-wheel.sh")
fi
[ -f "$wheel" ] || die "$wheel: no such wheel"
[ -f "$lock" ] || die "$lock is missing (make lock writes it)"
wheel=$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")

# The system users and their group (never under DESTDIR: a staging root has no users). The
# page runs as a user of its own in the proxy's group: it may write the authorisation list, the
# proxy only reads it, and the page never sees the CA.
if [ "$live" = 1 ]; then
  getent group socialguard >/dev/null || groupadd --system socialguard
  getent passwd socialguard >/dev/null || useradd --system --gid socialguard \
    --home-dir /var/lib/socialguard --no-create-home --shell /usr/sbin/nologin \
    --comment "socialguard proxy" socialguard
  getent passwd socialguard-admin >/dev/null || useradd --system --gid socialguard \
    --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin \
    --comment "socialguard Practice Manager's page" socialguard-admin
  [ "$(id -gn socialguard-admin)" = socialguard ] \
    || say "warning: the user socialguard-admin is not in the group socialguard, so the page" \
      "cannot read the policy: usermod -g socialguard socialguard-admin"
fi
own() {  # own OWNER:GROUP PATH... — only on the live system
  [ "$live" = 1 ] && chown "$@"
  return 0
}

# The virtualenv, skipped when this wheel and lock are already installed with this Python.
venv=$root$prefix
stamp_text=$(printf 'wheel %s %s\nlock %s\npython %s\n' \
  "$(sha256sum "$wheel" | cut -d' ' -f1)" "$(basename "$wheel")" \
  "$(sha256sum "$lock" | cut -d' ' -f1)" \
  "$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')")
stamp=.socialguard-install
changed=0
if [ "$force" = 0 ] && [ -x "$venv/bin/socialguard" ] && [ -f "$venv/$stamp" ] \
   && [ "$(cat "$venv/$stamp")" = "$stamp_text" ]; then
  say "$(basename "$wheel") is already installed in $venv"
else
  changed=1
  new=$venv.new
  rm -rf "$new"
  say "creating $venv with $python"
  "$python" -m venv "$new"
  # Every dependency, pinned and hash-checked by the lock; then socialguard without its deps.
  "$new/bin/python" -m pip install -q --no-compile --require-hashes "${pip_from[@]}" -r "$lock"
  "$new/bin/python" -m pip install -q --no-compile --no-deps "${pip_from[@]}" "$wheel"
  if ! problems=$("$new/bin/python" -m pip check 2>&1); then
    die "the packages installed in $new do not fit together; nothing was replaced:
$problems"
  fi
  # The virtualenv was made at $new: its scripts name that path. Point them at the final one,
  # and compile the bytecode as if it had been there (the service cannot write it later; pip
  # itself is left to compile when IT runs it).
  { grep -lIr --null -F "$new" "$new/bin" "$new/pyvenv.cfg" || true; } \
    | xargs -0 -r sed -i "s#$new#$venv#g"
  "$new/bin/python" -m compileall -q -j 0 -x '/site-packages/pip/' -s "$new" -p "$venv" \
    "$new/lib" >/dev/null \
    || say "note: some files did not compile; Python compiles them in memory when it needs them"
  if [ -f "$src/docs/OPERATIONS.md" ]; then
    install -d "$new/share/doc/socialguard"
    install -m 0644 "$src/docs/OPERATIONS.md" "$src/README.md" "$new/share/doc/socialguard/"
  fi
  echo "$stamp_text" >"$new/$stamp"
  rm -rf "$venv.old"
  if [ -e "$venv" ]; then mv "$venv" "$venv.old"; fi
  mv "$new" "$venv"
  rm -rf "$venv.old"
fi

# `socialguard` on the PATH for IT (sudo's secure_path has /usr/local/bin), unless that name is
# already something else.
link=$root/usr/local/bin/socialguard
install -d -m 0755 "$root/usr/local/bin"
if [ ! -e "$link" ] && [ ! -L "$link" ]; then
  ln -s "$prefix/bin/socialguard" "$link"
elif [ "$(readlink "$link")" != "$prefix/bin/socialguard" ]; then
  say "warning: $link is not a link to $prefix/bin/socialguard; left as it is"
fi

# /etc/socialguard: IT's files. Copied only where absent; the catalogue is the packaged one.
# The nftables rules are templates to edit (their interface and address) before loading.
etc=$root/etc/socialguard
install -d -m 0750 "$etc"
own root:socialguard "$etc"
for pair in config/policy.yaml:policy.yaml deploy/nftables-drop-quic.nft:nftables-drop-quic.nft \
  deploy/nftables-transparent.nft:nftables-transparent.nft; do
  from=$src/${pair%%:*} to=$etc/${pair##*:}
  if [ ! -e "$to" ]; then
    install -m 0640 "$from" "$to"
    own root:socialguard "$to"
    say "wrote $to"
  else
    say "kept $to"
  fi
done

# The authorisation list, in a folder of its own that the page's user owns (a safe edit writes
# a temporary file and a lock beside the list and renames it over the list); the proxy reads it
# through the group. Both find it there by default (an installed policy's `authorisations:`).
# A list at the place it had before the page (/etc/socialguard/authorisations.yaml) is moved
# once, as it is; an existing list is never replaced.
lists=$etc/allowlists
list=$lists/authorisations.yaml
old_list=$etc/authorisations.yaml
install -d -m 0750 "$lists"
own socialguard-admin:socialguard "$lists"
named=$(grep -m1 -E '^authorisations:' "$etc/policy.yaml" || true)
if [ -n "$named" ]; then
  say "warning: $etc/policy.yaml names its own authorisation list ($named), so it was left" \
    "where it is; the page can change a list only in /etc/socialguard/allowlists: move the list" \
    "to /etc/socialguard/allowlists/authorisations.yaml and delete that line"
elif [ -e "$list" ]; then
  say "kept $list"
  [ ! -e "$old_list" ] || say "warning: $old_list is not read any more: the list in force is" \
    "$list. Compare them, keep what is needed in $list, and delete $old_list"
elif [ -e "$old_list" ]; then
  mv "$old_list" "$list"
  own socialguard-admin:socialguard "$list"
  changed=1  # the proxy reads it at its new place once restarted
  say "moved $old_list to $list (the page edits it there; the proxy reads it there)"
else
  install -m 0640 "$src/allowlists/authorisations.yaml" "$list"
  own socialguard-admin:socialguard "$list"
  say "wrote $list"
fi
# The edit lock, made now by the page's user: one made by root (`sudo socialguard exemptions
# grant`) would be root's alone, and the page could then never take it.
lock=$lists/.authorisations.yaml.lock
if [ ! -e "$lock" ]; then
  install -m 0600 /dev/null "$lock"
  own socialguard-admin:socialguard "$lock"
fi

# State (the CA) and the audit log: the socialguard user's alone; in it, the page's own folder
# (its audit chain and the staff requests; the page's unit also makes it).
for d in /var/lib/socialguard /var/log/socialguard; do
  install -d -m 0750 "$root$d"
  own socialguard:socialguard "$root$d"
done
install -d -m 0750 "$root/var/log/socialguard/admin"
own socialguard-admin:socialguard "$root/var/log/socialguard/admin"

# The units, none started or enabled here. Each is replaced when this version's differs (keep
# local changes in drop-ins: systemctl edit NAME), except socialguard-pull.service and
# socialguard-digest.timer, which hold the practice's own values (the policy repository and
# site; the digest's day and time) and so, like the nftables templates, are written only where
# absent.
install -d -m 0755 "$root/etc/systemd/system"
page_changed=$changed
for name in "${units[@]}"; do
  unit=$root/etc/systemd/system/$name
  if cmp -s "$src/deploy/systemd/$name" "$unit"; then
    continue
  elif [ -e "$unit" ] && [[ $name == socialguard-pull.service || $name == socialguard-digest.timer ]]
  then
    say "kept $unit (this version's is $src/deploy/systemd/$name)"
    continue
  fi
  install -m 0644 "$src/deploy/systemd/$name" "$unit"
  case $name in
    socialguard.service) changed=1 ;;
    socialguard-admin.service) page_changed=1 ;;
  esac
  say "wrote $unit"
done

if [ "$live" = 1 ]; then
  if grep -rlsF /var/log/socialguard /etc/logrotate.d >/dev/null; then
    say "warning: a file in /etc/logrotate.d names /var/log/socialguard: remove it." \
      "socialguard rotates its own audit log, and copytruncate breaks its hash chain."
  fi
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "$changed" = 1 ] && systemctl -q is-active socialguard; then
      systemctl restart socialguard
      say "restarted socialguard"
    fi
    if [ "$page_changed" = 1 ] && systemctl -q is-active socialguard-admin; then
      systemctl restart socialguard-admin
      say "restarted socialguard-admin"
    fi
  fi
fi
if [ "$live" = 1 ]; then
  say "done. Check the policy, then start it (docs/OPERATIONS.md says more):"
  say "  socialguard validate --config /etc/socialguard/policy.yaml"
  say "  systemctl enable --now socialguard"
  say "The Practice Manager's page is installed, not started. Make their sign-in (the name must"
  say "be on approvers: in /etc/socialguard/allowlists/authorisations.yaml), then start it:"
  say "  socialguard users add --htpasswd /etc/socialguard/admin.htpasswd practice.manager"
  say "  systemctl enable --now socialguard-admin"
  say "It answers on http://127.0.0.1:8090/ on this machine; to open it from the manager's own"
  say "computer, set admin: in policy.yaml (listen, tls_cert, tls_key, public_url) first."
else
  say "done: installed into $root"
fi
