/**
 * The import graph of src/ (type-only imports included: they couple modules just as much), read
 * with the TypeScript compiler's own pre-processor:
 * - no cycles at all;
 * - the store (src/store/) imports nothing but itself, src/crypto/ and src/config.ts, so either
 *   engine can be read, tested and replaced without the domains;
 * - a route file (any `routes.ts`) is imported only by src/http/server.ts, which registers them:
 *   what routes share lives in src/http/ (auth, params, formats) or in a domain's service.
 * docs/architecture.md explains the layers these rules keep apart.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { REPO_ROOT } from '../support/locations.js';

const SRC = path.join(REPO_ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Each module (path relative to src/) and the modules of src/ it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const info = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    const targets = info.importedFiles
      .map((f) => f.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')))
      .filter((target) => target.startsWith(SRC + path.sep) && fs.existsSync(target))
      .map((target) => path.relative(SRC, target));
    graph.set(path.relative(SRC, file), [...new Set(targets)]);
  }
  return graph;
}

/** Strongly connected components of more than one module, or a module importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('import graph of src/', () => {
  const graph = importGraph();

  it('reads the whole tree', () => {
    assert.ok(graph.size >= 80, `only ${graph.size} modules found under ${SRC}`);
    assert.ok((graph.get('http/server.ts') ?? []).length >= 10, 'the server module imports its routes');
  });

  it('has no import cycle', () => {
    assert.deepEqual(cycles(graph), []);
  });

  it('finds a cycle when there is one (the check itself works)', () => {
    const withCycle = new Map(graph);
    withCycle.set('store/types/store.ts', [...(graph.get('store/types/store.ts') ?? []), 'http/server.ts']);
    assert.ok(cycles(withCycle).some((c) => c.includes('store/types/store.ts') && c.includes('http/server.ts')));
  });

  it('keeps the store below the domains: it imports only itself, src/crypto/ and src/config.ts', () => {
    const outside = [...graph].flatMap(([from, targets]) =>
      from.startsWith('store/') ? targets.filter((t) => !t.startsWith('store/') && !t.startsWith('crypto/') && t !== 'config.ts').map((t) => `${from} -> ${t}`) : [],
    );
    assert.deepEqual(outside, []);
  });

  it('imports a route file only from http/server.ts', () => {
    const routeImports = [...graph].flatMap(([from, targets]) =>
      from === 'http/server.ts' ? [] : targets.filter((t) => path.basename(t) === 'routes.ts').map((t) => `${from} -> ${t}`),
    );
    assert.deepEqual(routeImports, []);
  });
});

const HOOKS = new Set(['before', 'after', 'beforeEach', 'afterEach']);

/** The hooks a test file registers at its top level, as `file:line name`. */
function rootHooks(file: string, text = fs.readFileSync(file, 'utf8')): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  return source.statements.flatMap((statement) => {
    if (!ts.isExpressionStatement(statement) || !ts.isCallExpression(statement.expression)) return [];
    const callee = statement.expression.expression;
    if (!ts.isIdentifier(callee) || !HOOKS.has(callee.text)) return [];
    const { line } = source.getLineAndCharacterOfPosition(statement.getStart());
    return [`${path.relative(REPO_ROOT, file)}:${line + 1} ${callee.text}`];
  });
}

function testFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(full);
    return entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

// npm test runs most files several to a process (test/lane.ts --per-process): a hook at a file's top
// level is the process's, and would run before or after every file in it, not its own.
describe('test files', () => {
  const files = testFiles(path.join(REPO_ROOT, 'test'));

  it('register no hook at their top level (they may share a process)', () => {
    assert.ok(files.length >= 60, `only ${files.length} test files found`);
    assert.deepEqual(files.flatMap((file) => rootHooks(file)), []);
  });

  it('finds a top-level hook when there is one (the check itself works)', () => {
    const text = "import { after, describe } from 'node:test';\nafter(() => {});\ndescribe('x', () => { after(() => {}); });\n";
    assert.deepEqual(rootHooks(path.join(REPO_ROOT, 'test/x.test.ts'), text), ['test/x.test.ts:2 after']);
  });
});
