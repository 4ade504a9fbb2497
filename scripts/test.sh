#!/usr/bin/env bash
# Runs every test suite, stopping at the first failure. Called by `make test` after
# scripts/ensure-tools.sh has installed what is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "format"
cargo fmt --check

step "clippy (native)"
cargo clippy --all-targets --locked -- -D warnings

step "clippy (wasm32)"
cargo clippy --target wasm32-unknown-unknown --lib --bins --tests --locked -- -D warnings

# Adds up libtest's "test result:" lines of a log into "N passed, N failed, N skipped".
sum_results() {
    grep -E '^test result:' "$1" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored.*/\1 \2 \3/' |
        awk '{p+=$1; f+=$2; s+=$3} END {printf "%d passed, %d failed, %d skipped\n", p, f, s}'
}

# The fuzz targets are built only by `make fuzz` (nightly); checking them here on stable
# catches a changed signature that would otherwise break them unseen.
step "fuzz targets compile (cargo check)"
cargo check --manifest-path fuzz/Cargo.toml --locked --bins

step "native tests"
cargo test --locked 2>&1 | tee target/native-tests.log

step "browser tests (wasm-bindgen-test in headless Chromium)"
# The runner gives the whole suite 20 s by default; its 41 tests take about 17 s on an idle
# 2-core machine, so a busy one would cut it short. A hung test still ends the run.
WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-180}" \
    cargo test --locked --target wasm32-unknown-unknown --test web 2>&1 | tee target/browser-tests.log

step "release build (trunk)"
trunk build --release

step "end-to-end tests (playwright-core, headless Chromium)"
node tests/e2e/run.mjs | tee target/e2e-tests.log

native="$(sum_results target/native-tests.log)"
browser="$(sum_results target/browser-tests.log)"
e2e="$(grep -E '^e2e: ' target/e2e-tests.log | tail -1 | sed 's/^e2e: //')"
printf '\n==> summary\n'
echo "native: $native"
echo "browser: $browser"
echo "e2e: $e2e"
# One closing line for the whole run.
printf '%s\n%s\n%s\n' "$native" "$browser" "$e2e" |
    awk -F'[ ,]+' '{p+=$1; f+=$3} END {printf "total: %d passed, %d failed\n", p, f}'
