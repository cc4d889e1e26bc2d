/**
 * docs/policies.md's status table says which test proves each guard feature: every file it names
 * must exist and hold every test title it quotes, so the table cannot point at nothing. The CLI
 * examples must also parse with the real argument parser.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseArgCondition } from '../../src/cli/guard-commands.js';
import { REPO_ROOT } from '../support/harness.js';

const doc = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'policies.md'), 'utf8');

describe('docs/policies.md', () => {
  it('every status-table row names tests that exist', () => {
    const table = doc.slice(doc.indexOf('## Enforcement status'));
    const rows = table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Feature') && !l.startsWith('|---'));
    assert.ok(rows.length >= 10);
    for (const row of rows) {
      const [, feature, status, proof] = row.split('|').map((c) => c.trim());
      assert.equal(status, 'Enforced', feature);
      let currentFile: string | null = null;
      for (const part of proof!.matchAll(/`([^`]+\.test\.ts)`|"([^"]+?)(?:…)?"/g)) {
        if (part[1] !== undefined) {
          currentFile = part[1];
          assert.ok(fs.existsSync(path.join(REPO_ROOT, currentFile)), `${feature}: ${currentFile} does not exist`);
        } else {
          assert.ok(currentFile !== null, `${feature}: a test title before any file`);
          const source = fs.readFileSync(path.join(REPO_ROOT, currentFile), 'utf8');
          assert.ok(source.includes(part[2]!.replace(/\\"/g, '"')), `${feature}: no test "${part[2]}" in ${currentFile}`);
        }
      }
    }
  });

  it('every --arg in the examples parses', () => {
    const args = [...doc.matchAll(/--arg '([^']+)'/g)].map((m) => m[1]!);
    assert.ok(args.length >= 3);
    for (const a of args) assert.doesNotThrow(() => parseArgCondition(a), a);
  });
});
