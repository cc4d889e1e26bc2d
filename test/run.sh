#!/bin/sh
# npm test, after the build. Every test file has its own SQLite file or PostgreSQL schema, so files
# can run side by side:
#   - first, alone: the small-disk fault test (a disk that fills up under a 1 s lock timeout; it
#     counts the writes until the disk is full, which a busy machine stretches);
#   - then two lanes at once. The fault tests that hold the server to a clock (a lock timeout, a
#     signal across nodes within a second) run one at a time, at normal CPU priority, so they see an
#     almost idle machine however busy the other lane keeps it. Every other file, unit to browser
#     and SDK suites and the remaining fault tests (crash and shutdown under load, Expect:
#     100-continue), runs in PANOPTICON_TEST_CONCURRENCY processes at a time (default 3: many of
#     them mostly wait on child processes, PostgreSQL or timers), most of them several files to a
#     process, at a lower priority (nice), longest first, so the short unit and store files fill the
#     lane's end instead of a 50 s SDK suite starting late. `node --test` would sort the files by
#     name: test/lane.ts runs them in the order given.
# The timed lane's report is printed as one block when it ends. A fault test not named below joins
# the timed lane. Files are named by shell globs, not directories: Node 20 expands a directory itself
# (and would run every .js file under a directory named test, helpers included), Node 22+ takes only
# files and globs. test/support holds helpers, not tests, and is never passed.
#   PANOPTICON_TEST_CONCURRENCY        processes at once in the side-by-side lane (default 3)
#   PANOPTICON_TEST_FILES_PER_PROCESS  files to a process in every group (default: by group, below)
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

# The side-by-side lane's order: the longest e2e files (by their run time on the CI machine) alone,
# then the CLI files two to a process, the other e2e files and fault tests three to a process, the
# HTTP and security files three to one, and the store and unit files twelve to one, so that short
# processes fill the lane's end. Loading the server and warming up its code is most of what a unit,
# store, HTTP or CLI file costs alone (measured: the CLI and HTTP files took 210 s of CPU one to a
# process, 148 s five to one). PANOPTICON_TEST_FILES_PER_PROCESS, when set, is every group's size
# (1: every file alone).
e2e_first="python-sdk console.browser api-docs bench-smoke sdk-mcp sdk mcp-proxy-filesystem mcp-proxy-everything"
first=""
for name in $e2e_first; do first="$first dist/test/e2e/$name.test.js"; done
e2e_rest=""
for file in dist/test/e2e/*.test.js; do
  case " $first " in *" $file "*) ;; *) e2e_rest="$e2e_rest $file" ;; esac
done
per_process() { echo "--per-process=${PANOPTICON_TEST_FILES_PER_PROCESS:-$1}"; }

# shellcheck disable=SC2086 # the file lists are meant to split
nice -n 10 node dist/test/lane.js --concurrency="${PANOPTICON_TEST_CONCURRENCY:-3}" \
  "$(per_process 1)" $first \
  "$(per_process 2)" dist/test/cli/*.test.js \
  "$(per_process 3)" $e2e_rest $side_by_side_faults \
  "$(per_process 3)" dist/test/http/*.test.js dist/test/security/*.test.js \
  "$(per_process 12)" dist/test/store/*.test.js dist/test/unit/*.test.js &
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
