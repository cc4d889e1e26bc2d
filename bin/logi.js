#!/usr/bin/env node
// On Node.js 22.1+ V8's compiled code for these modules is kept on disk (under the OS temp
// directory) and reused: every logi call, `logi serve` included, starts faster. Node 20 has no such
// cache; the import below is dynamic so that the cache is on before the CLI loads.
import module from 'node:module';

module.enableCompileCache?.();
await import('../dist/src/cli/main.js');
