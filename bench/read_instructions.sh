#!/usr/bin/env bash
# read_instructions.sh: sibyld's instructions per prepared point read (or
# write), a count that machine load does not change (wall-clock and
# CPU-time figures on the shared 2-core machine do).
#
#   bench/read_instructions.sh [N]        N reads counted (default 50000)
#   OP=write bench/read_instructions.sh   N writes counted instead
#
# Environment:
#   BUILD   a Release build directory with node/sibyld and tools/sibyl-stress
#           (default build-rel under the repo)
#   OP      read (default) or write: the prepared INSERT of sibyl-stress
#           write, overwriting keys already present (UNIFORM, as the
#           fixed-rate runs of stress_vs_redis.sh do)
#
# sibyld runs under valgrind --tool=callgrind. sibyl-stress writes N keys
# (keyspace1.standard1, 100-byte values), reads 20000 of them to warm up,
# then the counters are zeroed (callgrind_control -z), N reads run (UNIFORM
# keys, 2 threads x 25 connections, 16 in flight each: the prepared
# SELECT key, "C0" ... WHERE key = ? at CL ONE) and the counters are dumped.
# With OP=write the counted run writes instead of reading. Every thread of
# sibyld is counted (the commitlog's sync thread too). The dump's total
# divided by N is printed. Runs differ by about 2% (how
# many requests each loop iteration takes varies). The callgrind file is
# kept in the temporary directory when KEEP_TMP=1 (callgrind_annotate
# --inclusive=yes reads it). Every process it starts is stopped by pid.
set -euo pipefail

N=${1:-50000}
OP=${OP:-read}
[[ $OP == read || $OP == write ]] || { echo "read_instructions: OP is read or write, not '$OP'" >&2; exit 2; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build-rel}
SIBYLD=$BUILD/node/sibyld
STRESS=$BUILD/tools/sibyl-stress
TMP=$(mktemp -d /tmp/sibyl-readinstr.XXXXXX)
PID=

cleanup() {
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$PID" 2>/dev/null || true
    fi
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "read_instructions: $*" >&2; exit 1; }
[[ -x $SIBYLD && -x $STRESS ]] || die "build $SIBYLD and $STRESS first (a Release build)"
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || die "valgrind is needed"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port=$(free_port); sport=$(free_port); aport=$(free_port)
# shellcheck source=sibyl_yaml.sh
. "$REPO/bench/sibyl_yaml.sh"
write_sibyl_yaml "$TMP" "$port" "$sport" "$aport"
valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out.%p" "$SIBYLD" --config "$TMP/sibyl.yaml" \
    2>"$TMP/sibyld.log" &
PID=$!
up=0
for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    sleep 0.1
done
(( up )) || die "sibyld did not start: $(tail -5 "$TMP/sibyld.log")"

stress() { # cmd n pop
    "$STRESS" "$1" "n=$2" cl=ONE -node 127.0.0.1 -port "native=$port" -rate threads=2 -conns 25 -inflight 16 \
        -col "size=FIXED(100)" -pop "$3"
}
stress write "$N" "seq=1..$N" >"$TMP/fill.txt" 2>&1 || die "fill failed: $(tail -5 "$TMP/fill.txt")"
stress "$OP" 20000 "dist=UNIFORM(1..$N)" >"$TMP/warm.txt" 2>&1 || die "warm-up failed: $(tail -5 "$TMP/warm.txt")"
callgrind_control -z "$PID" >/dev/null
stress "$OP" "$N" "dist=UNIFORM(1..$N)" >"$TMP/$OP.txt" 2>&1 || die "${OP}s failed: $(tail -5 "$TMP/$OP.txt")"
callgrind_control -d "$PID" >/dev/null
grep -q "Total errors *: *0 " "$TMP/$OP.txt" || die "${OP}s had errors: $(grep 'Total errors' "$TMP/$OP.txt")"
out=$(ls -t "$TMP"/callgrind.out."$PID"* | head -1)
ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
[[ -n $ir ]] || die "no total in $out"
echo "$N ${OP}s: $ir instructions, $((ir / N)) per $OP (sibyld, callgrind)"
