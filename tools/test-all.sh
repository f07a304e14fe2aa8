#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a full test run:
#   1. install what is missing (tools/install-deps.sh)
#   2. build with ASan + UBSan and -Werror in ./build-asan
#   3. ctest: the cmocka unit tests
#   4. integration tests against build-asan/node/sibyld through real drivers:
#      pytest (Debian's python3-cassandra) and node --test (npm cassandra-driver)
#   5. each libFuzzer target for a bounded time in ./build-fuzz (clang), if any
# Exits non-zero if any step fails. .ci/run runs exactly this.
# Knobs: SIBYL_FUZZ_SECONDS (default 30), SIBYL_PYTEST_ARGS (pytest args; default
# --maxfail=50 so a node that cannot serve at all fails fast; set it empty for all).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${SIBYL_FUZZ_SECONDS:-30}
failures=()

step() { printf '\n==== %s ====\n' "$*"; }
fail() { failures+=("$1"); printf '==== FAILED: %s ====\n' "$1"; }

step "install dependencies"
tools/install-deps.sh || { echo "install-deps failed"; exit 1; }

step "build: ASan + UBSan, warnings as errors (build-asan)"
cmake -S . -B build-asan -DSIB_WERROR=ON -DSIB_SANITIZE=ON || exit 1
cmake --build build-asan -j"$JOBS" || exit 1

export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

step "unit tests (ctest)"
ctest --test-dir build-asan --output-on-failure -LE integration -j"$JOBS" || fail "ctest"

SIBYL_BIN="$ROOT/build-asan/node/sibyld"
export SIBYL_BIN
if [ ! -x "$SIBYL_BIN" ]; then
  fail "integration tests: $SIBYL_BIN was not built"
else
  step "integration tests: python driver (pytest)"
  # shellcheck disable=SC2086
  /usr/bin/python3 -m pytest tests/integration ${SIBYL_PYTEST_ARGS---maxfail=50}
  rc=$?
  if [ "$rc" -eq 5 ]; then
    fail "pytest collected no tests"
  elif [ "$rc" -ne 0 ]; then
    fail "pytest (exit $rc)"
  fi

  step "integration tests: Node.js driver (node --test)"
  (cd tests/integration/node && timeout 900 node --test test/) || fail "node --test"
fi

if [ -f fuzz/CMakeLists.txt ]; then
  step "fuzz: build (clang, libFuzzer) in build-fuzz"
  # Only the fuzz_* targets (what fuzz/CMakeLists.txt defines): the unit
  # tests are already built and run in build-asan.
  mapfile -t targets < <(cmake -S . -B build-fuzz -DSIB_FUZZ=ON -DCMAKE_C_COMPILER=clang >/dev/null \
                         && cmake --build build-fuzz --target help \
                         | sed -n 's/^\.\.\. \(fuzz_[A-Za-z0-9_]*\).*/\1/p' | sort)
  if [ "${#targets[@]}" -eq 0 ]; then
    fail "fuzz: no fuzz_* targets configured"
  elif cmake --build build-fuzz -j"$JOBS" --target "${targets[@]}"; then
    mkdir -p build-fuzz/artifacts
    for name in "${targets[@]}"; do
      t=$(find build-fuzz -type f -perm -u+x -name "$name" | head -n 1)
      [ -n "$t" ] || { fail "fuzz: $name not found after build"; continue; }
      step "fuzz: $name for ${FUZZ_SECONDS}s"
      corpus="build-fuzz/corpus/$name"
      mkdir -p "$corpus"
      seeds=()
      [ -d "fuzz/corpus/$name" ] && seeds+=("fuzz/corpus/$name")
      # Coverage-guided, bounded in time; a crash, leak or timeout fails
      # and leaves its input in build-fuzz/artifacts/. Full log beside it.
      log="build-fuzz/$name.log"
      "$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
           -artifact_prefix="build-fuzz/artifacts/$name-" -print_final_stats=1 \
           "$corpus" "${seeds[@]}" </dev/null >"$log" 2>&1
      rc=$?
      if [ "$rc" -eq 0 ]; then
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|INFO: seed corpus' "$log" || true
      else
        tail -n 80 "$log"
        fail "fuzz $name (exit $rc; log $log)"
      fi
    done
  else
    fail "fuzz build"
  fi
fi

step "summary"
if [ "${#failures[@]}" -gt 0 ]; then
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "all tests passed"
