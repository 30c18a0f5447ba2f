# Gatehouse — build, run and test. `make run` and `make test` work on a fresh Debian
# machine with only the Swift toolchain: missing system packages are installed first.

SWIFT        ?= swift
APT_PACKAGES := libcurl4-openssl-dev libssl-dev libsqlite3-dev libmimalloc-dev pkg-config ca-certificates curl openssl
BIN          := .build/debug/gatehouse

.PHONY: all deps build run run-example test lint format bench bench-count soak

all: build

# Installs the system libraries the package links against (libcurl with OpenSSL), when
# they are missing, and mimalloc, which the executables link as their allocator. As root
# it runs apt-get itself; otherwise it says what to run.
deps:
	@if pkg-config --exists libcurl sqlite3 2>/dev/null && [ -e /usr/include/mimalloc.h ] && command -v openssl >/dev/null && [ -e /usr/include/openssl/ssl.h ] && [ -d /etc/ssl/certs ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(APT_PACKAGES)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	else \
		echo "missing system packages; run: sudo apt-get install -y $(APT_PACKAGES)"; exit 1; \
	fi

build: deps
	$(SWIFT) build --product gatehouse

# `gatehouse dev`: signing key, config and key store under ./.gatehouse-dev/, an echo
# upstream and the gateway on 127.0.0.1:8080; prints a sample JWT, API key and curl lines.
run: build
	$(BIN) dev

# The gateway on proxy.conf.example in front of the built-in echo upstream (127.0.0.1:3001).
run-example: build
	@$(BIN) echo --listen 127.0.0.1:3001 & echo_pid=$$!; \
	trap 'kill $$echo_pid 2>/dev/null' EXIT INT TERM; \
	$(BIN) serve --config proxy.conf.example

# Tests run one at a time: many start real servers, time streams and measure memory, and
# on a 2-core machine running them all at once turns their bounded waits into flakes.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

# Release build, micro benchmarks, then the side-by-side comparison with nginx and HAProxy
# (bench/compare/run.sh; needs haproxy, nginx, wrk, curl and python3-cryptography, it says
# what is missing). Every figure comes with a same-run reference. Variants: 1 token, 1,000
# rotating tokens, and "fresh" (a never-seen token per request: cache misses; ES256 and
# HS256 only, RS256 tokens are too slow to mint in bulk).
bench: deps
	$(SWIFT) build -c release --scratch-path .build-release --product gatehouse
	$(SWIFT) build -c release --scratch-path .build-release --product gatehouse-bench
	.build-release/release/gatehouse-bench 1
	python3 bench/first_event.py
	python3 bench/sse_load.py --streams $(BENCH_STREAMS) --duration 10
	bench/compare/run.sh --alg RS256,ES256,HS256 --variants single,many,fresh \
		--candidate "$$PWD/bench/candidate-auth.sh" --candidate-name gatehouse
	bench/compare/run.sh --alg RS256 --variants single \
		--candidate "$$PWD/bench/candidate-noauth.sh" --candidate-name gatehouse-noauth

# Instructions per request under valgrind's callgrind, Gatehouse beside nginx and HAProxy
# on the same sequential requests (bench/instructions.py; needs valgrind on top of what
# `make bench` needs). Repeatable to a fraction of a percent, so it compares two builds
# where timings on a shared machine cannot; it does not see the kernel's share.
bench-count: deps
	$(SWIFT) build -c release --scratch-path .build-release --product gatehouse
	python3 bench/instructions.py

# Open SSE streams for `make bench`: each costs the gateway two descriptors, so the
# default stays under a 20,000-descriptor hard limit (`ulimit -Hn`).
BENCH_STREAMS ?= 9900

# Ten minutes of mixed load (valid, invalid, rate-limited, SSE churn); fails if the
# gateway's RSS grows by 5 % or more after warm-up.
soak: deps
	$(SWIFT) build -c release --scratch-path .build-release --product gatehouse
	python3 bench/soak.py --duration 600

lint:
	$(SWIFT) format lint --strict --recursive --configuration .swift-format Package.swift Sources Tests

format:
	$(SWIFT) format format --in-place --recursive --configuration .swift-format Package.swift Sources Tests
