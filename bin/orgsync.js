#!/usr/bin/env node
// The `orgsync` command: runs the TypeScript sources through tsx's loader (no build step).
import { register } from 'tsx/esm/api';

// libxml2-wasm (the SAML schema validator) is one 1 MB line of JavaScript; through tsx's loader
// its source-map rewriting costs ~170 MB of RSS. Loaded before the loader is registered, it
// stays in Node's module cache and costs ~14 MB.
await import('libxml2-wasm');
register();
await import('../src/main.ts');
