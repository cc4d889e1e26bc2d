#!/bin/sh
# npm test, after the build. Every test file has its own SQLite file or PostgreSQL schema, so files
# can run side by side: those that only wait on I/O run two at a time; the fault, browser, SDK and
# benchmark suites, which measure time or start many processes, one at a time after them.
# Files are named by shell globs, not directories: Node 20 expands a directory itself (and would run
# every .js file under a directory named test, helpers included), Node 22+ takes only files and
# globs. test/support holds helpers, not tests, and is never passed.
#   PANOPTICON_TEST_CONCURRENCY   files at once in the first group (default 2)
cd "$(dirname "$0")/.." || exit 2
node --test --test-concurrency="${PANOPTICON_TEST_CONCURRENCY:-2}" \
  dist/test/unit/*.test.js dist/test/store/*.test.js dist/test/http/*.test.js dist/test/cli/*.test.js dist/test/security/*.test.js
side_by_side=$?
node --test --test-concurrency=1 dist/test/faults/*.test.js dist/test/e2e/*.test.js
one_at_a_time=$?
[ "$side_by_side" -eq 0 ] && [ "$one_at_a_time" -eq 0 ]
