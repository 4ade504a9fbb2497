#!/usr/bin/env bash
# Installs whatever SMTP Lab needs and is missing. Every step checks first, so a second run is
# quick. Usage: scripts/ensure-tools.sh [build|test]
#   build: the wasm target, trunk, wasm-bindgen-cli, npm packages (wasm-opt from binaryen)
#   test:  all of build, plus Chromium + ChromeDriver, swaks, Postfix, Dovecot's POP3 server,
#          curl, gcc (for mimalloc), and a Python venv with aiosmtpd for the interop tests
set -euo pipefail

what="${1:-build}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

TRUNK_VERSION="0.21.14"
# Must equal the `wasm-bindgen = "=..."` pin in Cargo.toml.
WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml)"
if [ -z "$WASM_BINDGEN_VERSION" ]; then
    echo "[ensure-tools] no wasm-bindgen = \"=x.y.z\" pin in Cargo.toml" >&2
    exit 1
fi

say() { printf '[ensure-tools] %s\n' "$*"; }

export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi

if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
    say "installing trunk $TRUNK_VERSION (takes several minutes, once)"
    cargo install --locked trunk --version "$TRUNK_VERSION"
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes a few minutes, once)"
    # Not --locked: its lockfile pins a crate version the registry does not serve.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# npm packages: binaryen (wasm-opt), playwright-core, axe-core (the end-to-end accessibility
# audit). Reinstall only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.smtp-lab-lock; then
    say "installing npm packages"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.smtp-lab-lock
fi

if [ "$what" = "build" ]; then
    exit 0
fi

apt_missing=()
need_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed" || apt_missing+=("$1"); }
# gcc: the native binary's allocator (mimalloc) is C, compiled by its build script; g++: the
# fuzz targets' libFuzzer is C++, compiled by libfuzzer-sys's build script even for the
# `cargo check` that make test runs.
# The interop tests run private Postfix and Dovecot instances on loopback ports; the system's
# own services of those packages are not wanted.
for pkg in chromium chromium-driver swaks postfix dovecot-pop3d curl brotli python3-venv gcc g++; do
    need_pkg "$pkg"
done
if [ "${#apt_missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${apt_missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    # Postfix asks a question on install; answer it beforehand.
    echo "postfix postfix/main_mailer_type select Local only" | $SUDO debconf-set-selections
    echo "postfix postfix/mailname string smtp-lab.test" | $SUDO debconf-set-selections
    $SUDO apt-get update -qq
    # No service a package brings is started while it installs (policy-rc.d, which
    # invoke-rc.d and deb-systemd-invoke obey), unless the machine already has such a policy;
    # the policy goes again however the install ends.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        trap '$SUDO rm -f "$policy"' EXIT
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod +x "$policy"
    fi
    dovecot_was_there=no
    dpkg-query -W -f='${Status}' dovecot-core 2>/dev/null | grep -q "ok installed" && dovecot_was_there=yes
    installed=0
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" \
        || installed=$?
    if [ -n "$policy" ]; then
        $SUDO rm -f "$policy"
        trap - EXIT
    fi
    # Nor at the next boot, when this install brought Dovecot (even one that failed later on):
    # the system's own would listen on every address. A Dovecot the machine had before is
    # left as it was.
    if [ "$dovecot_was_there" = no ] && command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable --now dovecot >/dev/null 2>&1 || true
    fi
    [ "$installed" -eq 0 ] || exit "$installed"
fi

venv="$root/target/py-venv"
if ! "$venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    say "creating the Python venv with aiosmtpd"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
fi
