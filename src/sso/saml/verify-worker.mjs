// Entry of a SAML verification worker thread (./pool.ts). The service runs its TypeScript through
// tsx's loader (bin/orgsync.js), whose hooks a worker thread does not inherit: register them
// here, then load the worker itself.
//
// The heavy dependencies are plain JavaScript: they are loaded first, before tsx's hooks exist
// (the module map then serves them to the TypeScript that imports them). Through the hooks,
// libxml2-wasm alone (1 MB, its WebAssembly inlined) takes ~0.4 s to load instead of 30 ms.
await Promise.all([import('libxml2-wasm'), import('@xmldom/xmldom'), import('xml-crypto'), import('samlify')]);
const { register } = await import('tsx/esm/api');
register();
await import('./verify-worker.ts');
