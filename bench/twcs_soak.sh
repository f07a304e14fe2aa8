#!/usr/bin/env bash
# twcs_soak.sh: a time-series soak of TimeWindowCompactionStrategy as users
# run it: sibyl-stress inserting time-series rows at a fixed rate into a
# real sibyld, on a table with
#   default_time_to_live = 120 s, gc_grace_seconds = 60,
#   1-minute windows, expired_sstable_check_frequency_seconds = 30;
# every 10 s the table directory's bytes and sibyld's RSS are sampled into
# a CSV, then plotted (gnuplot, when installed) and summarised.
#
#   bench/twcs_soak.sh [MINUTES] [OUTDIR]
#     MINUTES  run length (default 10)
#     OUTDIR   where soak.csv (disk, live data, RSS and SSTables every 10 s),
#              soak.png, summary.txt go, beside the raw samples.csv, stress.csv,
#              stress.out and sibyld.log (default bench/results/twcs-soak)
#   Environment: SIBYL_BIN (default build-rel/node/sibyld), SIBYL_STRESS
#   (default build-rel/tools/sibyl-stress), SOAK_RATE (inserts a second,
#   default 200; each insert writes one new partition of 10 rows),
#   SOAK_MEMTABLE_MB (memtable_heap_space, default 16: flushes every few
#   tens of seconds at the default rate).
#
# Live data is counted from what the benchmark wrote, never from the
# server: the rows inserted in the last 120 s (stress's per-second log) x
# the bytes of a row (sensor 12 + ts 8 + value 8 + payload 100 = 128).
# Each insert writes a partition no earlier insert wrote (seq population),
# so no row is overwritten and every row expires 120 s after its write.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MINUTES=${1:-10}
OUT=${2:-$ROOT/bench/results/twcs-soak}
SIBYLD=${SIBYL_BIN:-$ROOT/build-rel/node/sibyld}
STRESS=${SIBYL_STRESS:-$ROOT/build-rel/tools/sibyl-stress}
RATE=${SOAK_RATE:-200}
MEMTABLE_MB=${SOAK_MEMTABLE_MB:-16}
ROW_BYTES=128
ROWS_PER_INSERT=10
TTL=120
[ -x "$SIBYLD" ] || { echo "twcs_soak: no sibyld at $SIBYLD (build it, or set SIBYL_BIN)" >&2; exit 1; }
[ -x "$STRESS" ] || { echo "twcs_soak: no sibyl-stress at $STRESS (or set SIBYL_STRESS)" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/twcs_soak.XXXXXX)

# Free loopback ports for the native, storage and admin listeners.
read -r PORT SPORT APORT < <(/usr/bin/python3 - <<'EOF'
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()
EOF
)

cat >"$WORK/sibyl.yaml" <<EOF
cluster_name: twcs_soak
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
native_transport_port: $PORT
storage_port: $SPORT
admin_port: $APORT
admin_address: 127.0.0.1
commitlog_directory: $WORK/commitlog
hints_directory: $WORK/hints
memtable_heap_space: $MEMTABLE_MB
data_file_directories:
    - $WORK/data
EOF

cat >"$WORK/profile.yaml" <<EOF
keyspace: soak
keyspace_definition: |
  CREATE KEYSPACE soak WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};
table: readings
table_definition: |
  CREATE TABLE readings (
        sensor text,
        ts timestamp,
        value double,
        payload text,
        PRIMARY KEY (sensor, ts)
  ) WITH default_time_to_live = $TTL
    AND gc_grace_seconds = 60
    AND compaction = {'class': 'TimeWindowCompactionStrategy',
                      'compaction_window_unit': 'MINUTES', 'compaction_window_size': 1,
                      'expired_sstable_check_frequency_seconds': 30}
columnspec:
  - name: sensor
    size: fixed(12)
    population: seq(1..1000000000)
  - name: ts
    cluster: fixed($ROWS_PER_INSERT)
    population: seq(1700000000000..1800000000000)
  - name: value
    population: gaussian(1..1000)
  - name: payload
    size: fixed(100)
insert:
  partitions: fixed(1)
  batchtype: UNLOGGED
  select: fixed(1)/1
queries:
  latest:
    cql: SELECT ts, value FROM readings WHERE sensor = ? LIMIT 5
    fields: samerow
EOF

SIBYL_PID=
STRESS_PID=
cleanup() {
  [ -n "$STRESS_PID" ] && kill "$STRESS_PID" 2>/dev/null || true
  if [ -n "$SIBYL_PID" ]; then
    kill "$SIBYL_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SIBYL_PID" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$SIBYL_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$SIBYLD" --config "$WORK/sibyl.yaml" >"$OUT/sibyld.log" 2>&1 &
SIBYL_PID=$!
for _ in $(seq 1 150); do
  /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $PORT), 0.5)" 2>/dev/null && break
  kill -0 "$SIBYL_PID" 2>/dev/null || { echo "twcs_soak: sibyld exited; see $OUT/sibyld.log" >&2; exit 1; }
  sleep 0.2
done

START=$(date +%s)
"$STRESS" user profile="$WORK/profile.yaml" "ops(insert=1)" duration="${MINUTES}m" \
  -node "127.0.0.1:$PORT" -rate threads=1 fixed="$RATE/s" -conns 1 -inflight 4 \
  -log file="$OUT/stress.csv" >"$OUT/stress.out" 2>&1 &
STRESS_PID=$!

# Samples: seconds since the start, bytes of the table's directory
# (snapshots and backups included, none are taken), Data.db files, RSS.
echo "elapsed_s,disk_bytes,sstables,rss_kb" >"$OUT/samples.csv"
END=$((START + MINUTES * 60))
while :; do
  now=$(date +%s)
  tdir=$(find "$WORK/data/soak" -maxdepth 1 -type d -name 'readings-*' 2>/dev/null | head -n 1)
  disk=0 ssts=0
  if [ -n "$tdir" ]; then
    disk=$(find "$tdir" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')
    ssts=$(find "$tdir" -maxdepth 1 -name '*-Data.db' 2>/dev/null | wc -l)
  fi
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$SIBYL_PID/status" 2>/dev/null || echo 0)
  echo "$((now - START)),$disk,$ssts,${rss:-0}" >>"$OUT/samples.csv"
  [ "$now" -ge "$END" ] && break
  kill -0 "$STRESS_PID" 2>/dev/null || break
  sleep $((10 - ($(date +%s) - START) % 10))
done
wait "$STRESS_PID" || { echo "twcs_soak: sibyl-stress failed; see $OUT/stress.out" >&2; exit 1; }
STRESS_PID=

# Live bytes at each sample: rows written in the last TTL seconds, from
# stress's per-second log (time_s,ops,...), then the summary.
/usr/bin/python3 - "$OUT" "$TTL" "$ROWS_PER_INSERT" "$ROW_BYTES" "$RATE" "$MINUTES" <<'EOF'
import csv, sys
out, ttl, rows, rowb, rate, minutes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
ops = {}
with open(out + "/stress.csv") as f:
    for r in csv.DictReader(f):
        if r["time_s"] != "total":
            ops[float(r["time_s"])] = int(r["ops"])
samples = list(csv.DictReader(open(out + "/samples.csv")))
mib = 1048576.0
with open(out + "/soak.csv", "w") as f:
    f.write("elapsed_s,disk_mib,live_mib,rss_mib,sstables\n")
    rowsout = []
    for s in samples:
        t = int(s["elapsed_s"])
        live = sum(n for ts, n in ops.items() if t - ttl < ts <= t) * rows * rowb
        r = (t, int(s["disk_bytes"]) / mib, live / mib, int(s["rss_kb"]) / 1024.0, int(s["sstables"]))
        rowsout.append(r)
        f.write("%d,%.2f,%.2f,%.1f,%d\n" % r)
total = sum(ops.values())
last = rowsout[-1]
def peak(lo, hi, i):
    v = [r[i] for r in rowsout if lo <= r[0] < hi]
    return max(v) if v else 0.0
span = rowsout[-1][0]
third = span // 3
lines = [
    "TWCS soak: %s min, %s inserts/s x %d rows of %d B, default_time_to_live %d s, gc_grace_seconds 60, "
    "1-minute windows, expired_sstable_check_frequency_seconds 30" % (minutes, rate, rows, rowb, ttl),
    "inserts done: %d (%d rows, %.1f MiB of rows written)" % (total, total * rows, total * rows * rowb / mib),
    "end: disk %.1f MiB, live %.1f MiB, disk/live %.2f, RSS %.1f MiB, %d SSTables" %
    (last[1], last[2], last[1] / last[2] if last[2] else 0, last[3], last[4]),
    "disk peak by thirds of the run: %.1f / %.1f / %.1f MiB" %
    (peak(0, third, 1), peak(third, 2 * third, 1), peak(2 * third, span + 1, 1)),
    "RSS peak by thirds of the run: %.1f / %.1f / %.1f MiB" %
    (peak(0, third, 3), peak(third, 2 * third, 3), peak(2 * third, span + 1, 3)),
]
open(out + "/summary.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF

if command -v gnuplot >/dev/null 2>&1; then
  gnuplot <<EOF
set terminal pngcairo size 900,500 noenhanced
set output "$OUT/soak.png"
set datafile separator ","
set key autotitle columnhead top left
set title "TWCS soak: ttl ${TTL} s, gc_grace 60 s, 1-min windows, ${RATE} inserts/s x ${ROWS_PER_INSERT} rows"
set xlabel "seconds"
set ylabel "MiB"
set grid
plot "$OUT/soak.csv" using 1:2 with lines lw 2 title "disk (table dir)", \
     "$OUT/soak.csv" using 1:3 with lines lw 2 title "live data (rows not expired)", \
     "$OUT/soak.csv" using 1:4 with lines lw 2 title "sibyld RSS"
EOF
  echo "twcs_soak: plot in $OUT/soak.png"
else
  echo "twcs_soak: gnuplot not installed (tools/install-deps.sh installs gnuplot-nox): no plot"
fi
