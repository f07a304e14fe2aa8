#!/usr/bin/env bash
# stress_vs_redis.sh: Sibyl vs Redis on this machine, side by side in one run
# (issue 5's benchmark targets).
#
#   bench/stress_vs_redis.sh [N]        N requests per test (default 200000)
#
# Environment:
#   BUILD        build directory with node/sibyld and tools/sibyl-stress
#                (default build-release under the repo; configured as a
#                Release build and built when the binaries are missing)
#   THREADS      sibyl-stress client threads (default 2: this is a 2-core box)
#   HALF_SECS    length of the fixed-rate runs at half of the peak (default 5)
#   KEEP_TMP=1   keep the temporary directory (data, logs, JSON results)
#   COMMON_RATE  also run every target's writes and reads at this one fixed
#                rate (op/s), so their p99s compare at the same load
#                (bench/redis_medians.py sets it to half of the lower peak)
#   RESULTS      write every figure as "name<TAB>value" lines to this file
#                (op/s, us/op, fixed-rate p99s), for bench/redis_medians.py
#
# What runs, each against a fresh server, 50 connections, 100-byte values:
#   redis-server --save '' --appendonly no          redis-benchmark -t set,get -P 1 / -P 16
#   redis-server --appendonly yes --appendfsync everysec   the same
#                                                    (GET runs after every key of the -r
#                                                    keyspace is set: present keys, as Sibyl's)
#   sibyld (commitlog_sync periodic)                 sibyl-stress write (uniform keys, as -r N,
#                                                    into an emptied table, as after FLUSHALL),
#                                                    then read of present keys (every key
#                                                    written once first), at 1 / 16 in flight per
#                                                    connection (-conns 50/THREADS), then
#                                                    write and read at a fixed rate of half
#                                                    the 16-in-flight peak (p99 target < 2 ms),
#                                                    both in steady state (all keys present)
#   each redis-server above, again                  the same fixed-rate runs through
#                                                    sibyl-stress -mode redis (SET / GET of the
#                                                    same keys and values): Redis's p99 at half
#                                                    of its own peak, measured by the same
#                                                    client the same way (redis-benchmark has
#                                                    no fixed-rate mode)
# and prints op/s for each, the server CPU time (user+sys) per operation,
# and the ratios Sibyl/Redis. Every process it
# starts is stopped by pid on exit.
set -euo pipefail

N=${1:-200000}
CONNS=50
VALUE=100
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$REPO/build-release}
THREADS=${THREADS:-2}
HALF_SECS=${HALF_SECS:-5}
SIBYLD=$BUILD/node/sibyld
STRESS=$BUILD/tools/sibyl-stress
SHELL_BIN=$BUILD/tools/sibylsh

PIDS=()
TMP=$(mktemp -d /tmp/sibyl-bench.XXXXXX)

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill "$p" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$p" 2>/dev/null || true
        fi
    done
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "stress_vs_redis: $*" >&2; exit 1; }
# shellcheck source=sibyl_yaml.sh
. "$REPO/bench/sibyl_yaml.sh"

if (( THREADS < 1 || CONNS % THREADS != 0 )); then die "THREADS must divide $CONNS"; fi
CONNS_PER_THREAD=$((CONNS / THREADS))

# ---- prerequisites ----
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    if [[ $(id -u) == 0 ]]; then
        apt-get install -y redis-server >/dev/null || die "apt-get install redis-server failed"
    else
        die "redis-server / redis-benchmark missing: apt-get install -y redis-server"
    fi
fi
if [[ ! -x $SIBYLD || ! -x $STRESS || ! -x $SHELL_BIN ]]; then
    echo "building sibyld, sibyl-stress and sibylsh (Release) in $BUILD ..." >&2
    cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    make -C "$BUILD" -j"$(nproc)" sibyld sibyl-stress sibylsh >/dev/null
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() { # port timeout_s
    local i
    for i in $(seq $(($2 * 10))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

stop_pid() {
    local p=$1
    kill "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
}

declare -A R   # results: op/s by name
declare -A H   # fixed-rate runs at half of the peak: a summary line by target_command
declare -A C   # server CPU (user+sys) microseconds per operation by name
declare -A P   # fixed-rate runs: p99 (ms) and achieved op/s by target_command

CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu_us_per_op() { # ticks_before ticks_after
    python3 -c 'import sys; print("%.1f" % ((int(sys.argv[2]) - int(sys.argv[1])) * 1e6 / int(sys.argv[3]) / int(sys.argv[4])))' \
        "$1" "$2" "$CLK_TCK" "$N"
}

# ---- sibyl-stress results ----
stress_rate() { # json file -> op/s
    python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["summary"]["op_rate"])' "$1"
}
stress_lat() { # json file, key (median, p99, ...)[, sent_latency: timed from the send] -> ms
    python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["summary"]["%s_%s_ms" % (sys.argv[3], sys.argv[2])])' \
        "$1" "$2" "${3:-latency}"
}
stress_errors() {
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; print(s["total_errors"])' "$1"
}

# A fixed-rate run at `rate` op/s for HALF_SECS, after a pause (so the disk
# writeback of the run before is not part of it); its summary goes to
# H[tag_cmd]. The target is sibyld, or Redis with "-mode redis".
half_run() { # tag cmd rate target-args...
    local tag=$1 cmd=$2 rate=$3
    shift 3
    local out=$TMP/${tag}_${cmd}_half.json
    sleep 2
    "$STRESS" "$cmd" duration=${HALF_SECS}s cl=ONE -node 127.0.0.1 "$@" \
        -rate "threads=$THREADS" "fixed=${rate}/s" -conns "$CONNS_PER_THREAD" -inflight 16 \
        -col "size=FIXED($VALUE)" -pop "dist=UNIFORM(1..$N)" -log "file=$out" >"$TMP/${tag}_${cmd}_half.txt" 2>&1 ||
        die "sibyl-stress $cmd against $tag (fixed rate) failed: $(tail -5 "$TMP/${tag}_${cmd}_half.txt")"
    # p99 from the intended start (the target), and from the send: the
    # difference is the client's own lateness on this shared machine.
    H[${tag}_$cmd]="$rate/s fixed: $(stress_rate "$out") op/s, p50 $(stress_lat "$out" median) ms, p99 $(stress_lat "$out" p99) ms (from the send $(stress_lat "$out" p99 sent_latency) ms)"
    P[${tag}_${cmd}_p99]=$(stress_lat "$out" p99)
    P[${tag}_${cmd}_rate]=$(stress_rate "$out")
    echo "  $tag $cmd at half of peak, ${H[${tag}_$cmd]}" >&2
}

# The steady-state latency runs of one target: every key written once
# (seq), the 16-in-flight peak of reads and of writes over all keys, then a
# fixed-rate run at half of each. Sibyl's and Redis's go through here alike.
steady_runs() { # tag target-args...
    local tag=$1
    shift
    "$STRESS" write "n=$N" cl=ONE -node 127.0.0.1 "$@" -rate "threads=$THREADS" -conns "$CONNS_PER_THREAD" \
        -inflight 16 -col "size=FIXED($VALUE)" -pop "seq=1..$N" >"$TMP/${tag}_steady_fill.txt" 2>&1 ||
        die "sibyl-stress fill of $tag failed: $(tail -5 "$TMP/${tag}_steady_fill.txt")"
    local cmd out
    for cmd in read write; do
        out=$TMP/${tag}_${cmd}_steady.json
        "$STRESS" "$cmd" "n=$N" cl=ONE -node 127.0.0.1 "$@" -rate "threads=$THREADS" -conns "$CONNS_PER_THREAD" \
            -inflight 16 -col "size=FIXED($VALUE)" -pop "dist=UNIFORM(1..$N)" -log "file=$out" \
            >"$TMP/${tag}_${cmd}_steady.txt" 2>&1 ||
            die "sibyl-stress $cmd (steady) against $tag failed: $(tail -5 "$TMP/${tag}_${cmd}_steady.txt")"
        R[${tag}_${cmd}_steady]=$(stress_rate "$out")
        echo "  $tag $cmd, 16 in flight/conn, all keys present: ${R[${tag}_${cmd}_steady]} op/s" >&2
        half_run "$tag" "$cmd" $(( ${R[${tag}_${cmd}_steady]} / 2 )) "$@"
        if [[ -n ${COMMON_RATE:-} ]]; then half_run "${tag}_common" "$cmd" "$COMMON_RATE" "$@"; fi
    done
}

# ---- redis ----
# Sets every key redis-benchmark -r N can name (key:%012d, 0 <= i < N) to a
# VALUE-byte value, through redis-cli --pipe.
fill_redis() { # port
    python3 - "$N" "$VALUE" <<'PY' | redis-cli -p "$1" --pipe >/dev/null
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
v = b"x" * size
out = sys.stdout.buffer
for i in range(n):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, size, v))
PY
    local have
    have=$(redis-cli -p "$1" dbsize)
    (( have == N )) || die "redis holds $have keys after the fill, not $N"
}

run_redis() { # tag, extra redis-server args...
    local tag=$1; shift
    local port dir pid
    port=$(free_port)
    dir=$TMP/redis-$tag
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' "$@" \
        --daemonize no --logfile "$dir/redis.log" &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" 20 || die "redis-server ($tag) did not start: $(tail -5 "$dir/redis.log")"
    local p t line c0
    for p in 1 16; do
        redis-cli -p "$port" flushall >/dev/null 2>&1 || true
        for t in set get; do
            # The SET run (-r N random keys) leaves about a third of the
            # keyspace unset, and a GET of a missing key is cheaper. Sibyl's
            # read test reads present keys only, so Redis's must too: fill
            # every key the GET run can ask for first.
            [[ $t == get ]] && fill_redis "$port"
            c0=$(cpu_ticks "$pid")
            # -q prints "SET: 123456.78 requests per second, p50=0.223 msec".
            line=$(redis-benchmark -p "$port" -t "$t" -n "$N" -r "$N" -d "$VALUE" -c "$CONNS" -P "$p" -q 2>/dev/null |
                   tr '\r' '\n' | grep -E '^(SET|GET):.*requests per second' | tail -1)
            R[redis_${tag}_${t}_P$p]=$(awk '{print $2}' <<<"$line")
            C[redis_${tag}_${t}_P$p]=$(cpu_us_per_op "$c0" "$(cpu_ticks "$pid")")
            echo "  redis ($tag) -P $p: $line; server CPU ${C[redis_${tag}_${t}_P$p]} us/op" >&2
        done
    done
    redis-cli -p "$port" flushall >/dev/null
    steady_runs "redis_$tag" -mode redis -port "redis=$port"
    stop_pid "$pid"
}

# Empties the stress table (the next write run starts as Redis's does after
# FLUSHALL).
truncate_table() { # port
    "$SHELL_BIN" 127.0.0.1 "$1" -e "TRUNCATE keyspace1.standard1" >"$TMP/sibyl_truncate.txt" 2>&1 ||
        die "TRUNCATE failed: $(tail -5 "$TMP/sibyl_truncate.txt")"
}

run_sibyl() {
    local port sport aport dir pid
    port=$(free_port); sport=$(free_port); aport=$(free_port)
    dir=$TMP/sibyl
    mkdir -p "$dir"
    write_sibyl_yaml "$dir" "$port" "$sport" "$aport"
    "$SIBYLD" --config "$dir/sibyl.yaml" 2>"$dir/sibyld.log" &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" 30 || die "sibyld did not start: $(tail -5 "$dir/sibyld.log")"
    local p cmd
    for p in 1 16; do
        # Each write run starts from an empty table, as Redis's starts after
        # FLUSHALL: a third of its writes then overwrite, the rest insert.
        [[ $p != 1 ]] && truncate_table "$port"
        for cmd in write read; do
            # Keys as redis-benchmark -r N picks them: uniform over N, with
            # repeats. Before each read run every key is written once (not
            # timed), as fill_redis does before Redis's GET run.
            local pop="dist=UNIFORM(1..$N)"
            if [[ $cmd == read ]]; then
                "$STRESS" write "n=$N" cl=ONE -node 127.0.0.1 -port "native=$port" \
                    -rate "threads=$THREADS" -conns "$CONNS_PER_THREAD" -inflight 16 \
                    -col "size=FIXED($VALUE)" -pop "seq=1..$N" >"$TMP/sibyl_fill.txt" 2>&1 ||
                    die "sibyl-stress fill failed: $(tail -5 "$TMP/sibyl_fill.txt")"
            fi
            local out=$TMP/sibyl_${cmd}_P$p.json c0
            c0=$(cpu_ticks "$pid")
            "$STRESS" "$cmd" "n=$N" cl=ONE -node 127.0.0.1 -port "native=$port" \
                -rate "threads=$THREADS" -conns "$CONNS_PER_THREAD" -inflight "$p" \
                -col "size=FIXED($VALUE)" -pop "$pop" -log "file=$out" >"$TMP/sibyl_${cmd}_P$p.txt" 2>&1 ||
                die "sibyl-stress $cmd failed: $(tail -5 "$TMP/sibyl_${cmd}_P$p.txt")"
            C[sibyl_${cmd}_P$p]=$(cpu_us_per_op "$c0" "$(cpu_ticks "$pid")")
            R[sibyl_${cmd}_P$p]=$(stress_rate "$out")
            echo "  sibyl $cmd, $p in flight/conn: ${R[sibyl_${cmd}_P$p]} op/s, errors $(stress_errors "$out")," \
                 "p99 $(grep 'Latency 99th' "$TMP/sibyl_${cmd}_P$p.txt" | awk '{print $5}') ms;" \
                 "server CPU ${C[sibyl_${cmd}_P$p]} us/op" >&2
        done
    done
    # Latency at half of the peak (16 in flight) rate, fixed-rate mode,
    # measured from each request's intended start (no coordinated omission),
    # in steady state: all N keys present, reads and writes uniform over
    # them. The write peak above started from an empty table (for the
    # comparison with Redis), so both peaks are measured again on the full
    # table, and half of each is the rate.
    steady_runs sibyl -port "native=$port"
    kill -0 "$pid" 2>/dev/null || die "sibyld died: $(tail -5 "$dir/sibyld.log")"
    stop_pid "$pid"
}

echo "N=$N, $CONNS connections, ${VALUE}-byte values, $(nproc) cores; sibyl-stress threads=$THREADS" >&2
echo "redis without persistence ..." >&2
run_redis nopersist --appendonly no
echo "redis with appendonly everysec ..." >&2
run_redis aof --appendonly yes --appendfsync everysec
echo "sibyl ..." >&2
run_sibyl

ratio() { python3 -c 'import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print("%.2f" % (a/b if b else 0))' "$1" "$2"; }

printf '\n%-34s %12s %12s %16s %16s\n' "test (50 conns, 100 B)" "P=1 op/s" "P=16 op/s" "P=1 srv us/op" "P=16 srv us/op"
row() { printf '%-34s %12s %12s %16s %16s\n' "$1" "${R[$2_P1]:-?}" "${R[$2_P16]:-?}" "${C[$2_P1]:-?}" "${C[$2_P16]:-?}"; }
row "redis SET (no persistence)" redis_nopersist_set
row "redis GET (no persistence, present)" redis_nopersist_get
row "redis SET (aof everysec)" redis_aof_set
row "redis GET (aof everysec, present)" redis_aof_get
row "sibyl write CL ONE" sibyl_write
row "sibyl read CL ONE (present keys)" sibyl_read
printf '\n%-44s %8s %8s   %s\n' "ratio" "P=1" "P=16" "target"
rrow() { printf '%-44s %8s %8s   %s\n' "$1" "$(ratio "${R[$2_P1]}" "${R[$3_P1]}")" "$(ratio "${R[$2_P16]}" "${R[$3_P16]}")" "$4"; }
rrow "sibyl write / redis SET (no persistence)" sibyl_write redis_nopersist_set ">= 0.5"
rrow "sibyl write / redis SET (aof everysec)" sibyl_write redis_aof_set ">= 1.0"
rrow "sibyl read / redis GET (no persistence)" sibyl_read redis_nopersist_get ">= 0.5"
printf '\n%s\n' "fixed rate at half of the 16-in-flight peak, all keys present (sibyl-stress; target p99 < 2 ms):"
printf '%-34s %12s   %s\n' "target, operation" "peak op/s" "at half of the peak"
for t in sibyl redis_nopersist redis_aof; do
    for c in write read; do
        printf '%-34s %12s   %s\n' "$t $c" "${R[${t}_${c}_steady]:-?}" "${H[${t}_$c]:-?}"
    done
done
if [[ -n ${COMMON_RATE:-} ]]; then
    printf '\n%s\n' "fixed rate common to every target: $COMMON_RATE op/s (target: Sibyl's p99 <= Redis's)"
    for t in sibyl redis_nopersist redis_aof; do
        for c in write read; do
            printf '%-34s   %s\n' "$t $c" "${H[${t}_common_$c]:-?}"
        done
    done
fi
if [[ -n ${RESULTS:-} ]]; then
    {
        for k in "${!R[@]}"; do printf 'rate_%s\t%s\n' "$k" "${R[$k]}"; done
        for k in "${!C[@]}"; do printf 'cpu_%s\t%s\n' "$k" "${C[$k]}"; done
        for k in "${!P[@]}"; do printf 'fixed_%s\t%s\n' "$k" "${P[$k]}"; done
    } >"$RESULTS"
fi
