/**
 * The Python SDK's own suite (sdk-python/tests, `python3 -m unittest`), run by `npm test`: it starts
 * real servers from this build (dist/src/cli/main.js) on the engines of PANOPTICON_TEST_ENGINES and
 * the database of PANOPTICON_TEST_PG_URL, which reach it through the environment, as does the node
 * binary running this test (PANOPTICON_NODE). It fails when python3 is missing: the SDK is shipped,
 * so it is tested.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { it } from 'node:test';
import { REPO_ROOT } from '../support/harness.js';

const PYTHON = process.env.PANOPTICON_PYTHON || 'python3';

it('sdk-python: python3 -m unittest discover -s sdk-python/tests passes', { timeout: 600_000 }, async () => {
  const started = Date.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(PYTHON, ['-m', 'unittest', 'discover', '-s', 'sdk-python/tests', '-v'], {
      cwd: REPO_ROOT,
      env: { ...process.env, PANOPTICON_NODE: process.execPath, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (err) => reject(new Error(`could not run ${PYTHON}: ${err.message}`)));
    child.on('close', (exitCode) => resolve({ code: exitCode, output: out }));
  });
  assert.equal(code, 0, `python3 -m unittest failed (exit ${code}):\n${output}`);
  const ran = /^Ran (\d+) tests? in/m.exec(output);
  assert.ok(ran !== null && Number(ran[1]) > 0, `no Python test ran:\n${output}`);
  assert.match(output, /^OK/m, output);
  console.log(`sdk-python: ${ran![1]} tests passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
