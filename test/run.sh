#!/bin/sh
# npm test, after the build. Every test file has its own SQLite file or PostgreSQL schema, so files
# can run side by side:
#   - first, alone: the small-disk fault test (a disk that fills up under a 1 s lock timeout; it
#     counts the writes until the disk is full, which a busy machine stretches);
#   - then two lanes at once. The fault tests that hold the server to a clock (a lock timeout, a
#     signal across nodes within a second) run one at a time, at normal CPU priority, so they see an
#     almost idle machine however busy the other lane keeps it. Every other file, unit to browser
#     and SDK suites and the remaining fault tests (crash and shutdown under load, Expect:
#     100-continue), runs PANOPTICON_TEST_CONCURRENCY at a time (default 3: many of them mostly wait
#     on child processes, PostgreSQL or timers) at a lower priority (nice), longest first, so the
#     short unit and store files fill the lane's end instead of a 50 s SDK suite starting late.
#     `node --test` would sort the files by name: test/lane.ts runs them in the order given.
# The timed lane's report is printed as one block when it ends. A fault test not named below joins
# the timed lane. Files are named by shell globs, not directories: Node 20 expands a directory itself
# (and would run every .js file under a directory named test, helpers included), Node 22+ takes only
# files and globs. test/support holds helpers, not tests, and is never passed.
#   PANOPTICON_TEST_CONCURRENCY        processes at once in the side-by-side lane (default 3)
#   PANOPTICON_TEST_FILES_PER_PROCESS  CLI, HTTP and security files to a process (default 5; 1: each alone)
cd "$(dirname "$0")/.." || exit 2

side_by_side_faults=""
timed=""
for file in dist/test/faults/*.test.js; do
  case "$file" in
    */small-disk.test.js) ;;
    */crash.test.js | */shutdown.test.js | */expect-continue.test.js) side_by_side_faults="$side_by_side_faults $file" ;;
    *) timed="$timed $file" ;;
  esac
done

# The timed lane writes to a file; on a terminal, in the format the other lane prints there.
reporter="--reporter=tap"
[ -t 1 ] && reporter="--reporter=spec"
timed_log=$(mktemp "${TMPDIR:-/tmp}/panopticon-timed-XXXXXX") || exit 2
trap 'rm -f "$timed_log"' EXIT

node dist/test/lane.js $reporter dist/test/faults/small-disk.test.js
small_disk_status=$?

# The e2e files, longest (by their run time on the CI machine) first, then the rest.
e2e_first="python-sdk console.browser api-docs bench-smoke sdk-mcp sdk mcp-proxy-filesystem mcp-proxy-everything"
ordered=""
for name in $e2e_first; do ordered="$ordered dist/test/e2e/$name.test.js"; done
for file in dist/test/e2e/*.test.js; do
  case " $ordered " in *" $file "*) ;; *) ordered="$ordered $file" ;; esac
done

# The CLI, HTTP and security files run PANOPTICON_TEST_FILES_PER_PROCESS to a process (default 5),
# the store and unit files all in one: loading the server and warming up its code is most of what
# such a file costs alone (measured: the CLI and HTTP files took 210 s of CPU one to a process,
# 148 s five to one).
# shellcheck disable=SC2086 # the file lists are meant to split
nice -n 10 node dist/test/lane.js --concurrency="${PANOPTICON_TEST_CONCURRENCY:-3}" \
  $ordered $side_by_side_faults \
  --per-process="${PANOPTICON_TEST_FILES_PER_PROCESS:-5}" dist/test/cli/*.test.js dist/test/http/*.test.js dist/test/security/*.test.js \
  --per-process=100 dist/test/store/*.test.js dist/test/unit/*.test.js &
side_by_side_pid=$!
# Interrupted (Ctrl-C, a CI timeout): the lane in the background goes too.
trap 'kill "$side_by_side_pid" 2>/dev/null; exit 130' INT TERM

# shellcheck disable=SC2086
node dist/test/lane.js $reporter $timed > "$timed_log" 2>&1
timed_status=$?
cat "$timed_log"

wait "$side_by_side_pid"
side_by_side_status=$?
[ "$small_disk_status" -eq 0 ] && [ "$side_by_side_status" -eq 0 ] && [ "$timed_status" -eq 0 ]
