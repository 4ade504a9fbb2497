# SMTP Lab: two commands to remember.
#   make serve   install what is missing, build the app (release) and serve it on 127.0.0.1
#   make test    install what is missing and run every test suite
# And: make bench (figures), make fuzz (bounded fuzzing runs).

ADDRESS ?= 127.0.0.1
PORT ?= 8080
FUZZ_SECONDS ?= 60

# npm's wasm-opt must come before any other (Debian's binaryen is too old for rustc's output),
# and the cargo-installed trunk and wasm-bindgen must be found.
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: serve test bench fuzz build tools tools-test

tools:
	@scripts/ensure-tools.sh build

tools-test:
	@scripts/ensure-tools.sh test

build: tools
	trunk build --release

serve: tools
	trunk serve --release --address $(ADDRESS) --port $(PORT)

test: tools-test
	@scripts/test.sh

bench: tools-test
	@scripts/bench.sh

fuzz:
	@scripts/fuzz.sh $(FUZZ_SECONDS)
