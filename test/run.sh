#!/bin/sh
# npm test, after the build. Every test file has its own SQLite file or PostgreSQL schema, so files
# can run side by side: those that only wait on I/O run two at a time; the fault, browser, SDK and
# benchmark suites, which measure time or start many processes, one at a time after them.
# test/support holds helpers, not tests: it is never passed to `node --test` (which would run
# every .js file under a directory named test).
#   PANOPTICON_TEST_CONCURRENCY   files at once in the first group (default 2)
cd "$(dirname "$0")/.." || exit 2
node --test --test-concurrency="${PANOPTICON_TEST_CONCURRENCY:-2}" \
  dist/test/unit/ dist/test/store/ dist/test/http/ dist/test/cli/ dist/test/security/
side_by_side=$?
node --test --test-concurrency=1 dist/test/faults/ dist/test/e2e/
one_at_a_time=$?
[ "$side_by_side" -eq 0 ] && [ "$one_at_a_time" -eq 0 ]
