#!/bin/bash
# Instructions the gateway's main thread executes per request (valgrind's callgrind), a figure no
# other process on a shared machine can move (CPU time per request moves ±10% between sittings).
#
#   bench/callgrind.sh BUNDLE [N=2000]
#
# BUNDLE is a built gateway (gwc build CONFIG -o DIR: DIR/gateway.mjs, with gateway.plan.json beside
# it); its accounts' 127.0.0.1 URLs are pointed at bench/lib/mock.mjs. The gateway serves N/2 requests
# to warm up, counters are zeroed, then N more (bench/lib/fixed-load.mjs, 32 in flight, keys rotating
# as the realistic target's do) are counted. Only the main thread's count is printed: under valgrind
# V8's background threads (compilers, GC helpers) run far more than they do natively. Runs take
# ~2 minutes; wrap in `flock /tmp/gwc-bench.lock` on a shared machine.
set -euo pipefail
BUNDLE=$(realpath "$1"); N=${2:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
D=$(mktemp -d /tmp/gwc-callgrind-XXXXXX)
node "$HERE/lib/mock.mjs" > "$D/mock.out" & MOCK=$!
trap 'kill $MOCK 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$D/mock.out" ] && break; sleep 0.1; done
URL=http://127.0.0.1:$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").split("\n")[0]).fast)' "$D/mock.out")
sed -E "s#http://127\.0\.0\.1:[0-9]+#$URL#g" "${BUNDLE%.mjs}.plan.json" > "$D/g.plan.json"
sed -E "s#http://127\.0\.0\.1:[0-9]+#$URL#g" "$BUNDLE" > "$D/g.mjs"
PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
# vgdb finds the process by user and host: the same USER and HOST for valgrind and callgrind_control.
export USER=${USER:-root} LOGNAME=${LOGNAME:-root} HOST=127.0.0.1
(cd "$D" && UPSTREAM=$URL PORT=$PORT OPENAI_API_KEY=sk-bench exec valgrind --tool=callgrind --smc-check=all-non-file --separate-threads=yes --callgrind-out-file="$D/cg.out" node "$D/g.mjs" > "$D/gateway.log" 2> "$D/valgrind.log") & VG=$!
for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.5; done
node "$HERE/lib/fixed-load.mjs" "http://127.0.0.1:$PORT" $((N / 2)) 32 > /dev/null
callgrind_control -z $VG > /dev/null
node "$HERE/lib/fixed-load.mjs" "http://127.0.0.1:$PORT" "$N" 32 > "$D/load.json"
callgrind_control -d $VG > /dev/null
kill -TERM $VG; wait $VG || true
IR=$(grep -h '^summary:' "$D/cg.out.1-01" | awk '{print $2}')
echo "{\"bundle\":\"$1\",\"requests\":$N,\"main_thread_instructions_per_request\":$((IR / N)),\"load\":$(cat "$D/load.json"),\"dir\":\"$D\"}"
