#!/usr/bin/env bash
# Installs everything Sibyl needs on Debian 12 (bookworm): build tools and
# libraries, the test clients (Debian's python3-cassandra + pytest, Node.js +
# the npm cassandra-driver pinned in tests/integration/node/package-lock.json),
# clang for the libFuzzer targets, and what later tools and benchmarks use.
# Idempotent: installs only what is missing; safe to run again. Non-interactive.
# Runs apt as root, or through sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  # build
  build-essential cmake pkg-config ragel git ca-certificates
  libev-dev liblz4-dev libyaml-dev libcmocka-dev
  # libFuzzer (clang + its sanitizer/fuzzer runtimes)
  clang libclang-rt-dev
  # integration tests: Debian's python driver (lz4 for protocol compression)
  python3 python3-cassandra python3-lz4 python3-pytest python3-pytest-timeout
  procps
  # the shell's terminal tests (tests/integration/test_shell.py) drive it in tmux
  tmux
  # later tools (shell, admin API) and benchmarks (reference servers/engines)
  libedit-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
  redis-server librocksdb-dev
  # bench/twcs_soak.sh draws its plot with gnuplot (optional: without it the
  # soak still writes its CSV)
  gnuplot-nox
)

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo env DEBIAN_FRONTEND=noninteractive)
else
  echo "install-deps: need root or sudo to install packages" >&2
  exit 1
fi

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
# Node.js may come from elsewhere (e.g. /usr/bin/node 20 + npm 11): only
# install Debian's when the commands are absent.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -q </dev/null
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" </dev/null
else
  echo "install-deps: all Debian packages present"
fi

# The Node.js driver test project: exact versions from the lockfile.
if [ -f tests/integration/node/package-lock.json ]; then
  echo "install-deps: npm ci in tests/integration/node"
  (cd tests/integration/node && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi
echo "install-deps: done"
