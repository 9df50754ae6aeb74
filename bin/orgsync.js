#!/usr/bin/env node
// The `orgsync` command: runs the TypeScript sources through tsx's loader (no build step).
import { setFlagsFromString } from 'node:v8';
import { register } from 'tsx/esm/api';

// Under load V8 lets its old generation grow to about four times what is live between major
// collections (≈ 60 MB live, 200+ MB of heap: the SCIM benchmark peaked at 440–470 MB of RSS on
// PostgreSQL). Growing it by half instead held the peak near 320 MB at the same CPU per request
// (docs/operations.md, Memory). Unlike --max-old-space-size it is no ceiling: a larger live set
// still gets the heap it needs. The flag is read at every collection, so setting it here works;
// one given on the command line (node --heap-growing-percent=N bin/orgsync.js …) wins.
if (!process.execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) setFlagsFromString('--heap-growing-percent=50');

// libxml2-wasm (the SAML schema validator) is one 1 MB line of JavaScript; through tsx's loader
// its source-map rewriting costs ~170 MB of RSS. Loaded before the loader is registered, it
// stays in Node's module cache and costs ~14 MB.
await import('libxml2-wasm');
register();
await import('../src/main.ts');
