#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running node: installs what
# is missing, builds a Release sibyld in ./build, and starts it with built-in
# defaults (127.0.0.1:9042, data under ./data) unless arguments say otherwise:
#   tools/run-node.sh                       # defaults
#   tools/run-node.sh --config my.yaml      # cassandra.yaml-style config
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
exec ./build/node/sibyld "$@"
