const mb = (n) => (n / 1048576).toFixed(0);
const show = (l) => { const m = process.memoryUsage(); console.log(l.padEnd(28), 'rss', mb(m.rss), 'heapUsed', mb(m.heapUsed), 'heapTotal', mb(m.heapTotal), 'ext', mb(m.external), 'ab', mb(m.arrayBuffers)); };
show('start');
await import('libxml2-wasm'); show('libxml2');
const { register } = await import('tsx/esm/api'); register(); show('tsx');
for (const m of process.argv.slice(2)) { await import(m); global.gc?.(); show(m); }
