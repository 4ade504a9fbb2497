#!/usr/bin/env bash
# Prints SMTP Lab's figures: sizes of the release build, the S10k simulation in the browser and
# natively, engine benchmarks, loopback throughput.
# Called by `make bench` after scripts/ensure-tools.sh. Figures are printed, never asserted; an
# S10k run that loses or duplicates a message fails, here and natively.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$root/node_modules/.bin:$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "release build (trunk)"
trunk build --release >/dev/null

step "sizes of the release build (bytes)"
printf '%-36s %10s %10s %10s\n' file raw gzip-9 brotli
total_raw=0 total_gzip=0 total_brotli=0
# Everything a first visit downloads: the page, its styles, the JS glue, the wasm, the icon.
while IFS= read -r file; do
    raw=$(stat -c %s "$file")
    gz=$(gzip -9 -c "$file" | wc -c)
    br=$(brotli -c -q 11 "$file" | wc -c)
    printf '%-36s %10d %10d %10d\n' "${file#dist/}" "$raw" "$gz" "$br"
    total_raw=$((total_raw + raw)) total_gzip=$((total_gzip + gz)) total_brotli=$((total_brotli + br))
done < <(find dist -type f | sort)
printf '%-36s %10d %10d %10d\n' "first load (all of dist/)" "$total_raw" "$total_gzip" "$total_brotli"

step "S10k simulation in the browser (wasm, headless Chromium)"
node tests/e2e/bench-s10k.mjs

step "S10k simulation natively"
cargo bench --locked --bench sim_scale

step "SMTP engine benchmarks (criterion)"
cargo bench --locked --bench smtp_engine -- --noplot 2>&1 | grep -Ev "^(Benchmarking|Gnuplot|Warning|$)"

step "loopback throughput of smtp-lab serve"
cargo bench --locked --bench loopback
