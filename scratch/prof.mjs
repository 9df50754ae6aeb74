import { readFileSync } from 'node:fs';
const p = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byId = new Map(p.nodes.map(n => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas; const total = dt.reduce((a, b) => a + b, 0);
for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt[i]);
const parent = new Map(); for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const cat = (u) => { if (!u) return '(native)'; const m = u.match(/node_modules\/((@[^/]+\/)?[^/]+)/); if (m) return m[1]; if (u.startsWith('node:')) return u; const s = u.match(/src\/.*/); return s ? s[0] : u; };
const byFile = new Map(), byFn = new Map();
for (const [id, t] of self) { const n = byId.get(id); const f = cat(n.callFrame.url); byFile.set(f, (byFile.get(f) ?? 0) + t); const k = `${n.callFrame.functionName || '(anon)'} ${f}:${n.callFrame.lineNumber}`; byFn.set(k, (byFn.get(k) ?? 0) + t); }
const top = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([a, t]) => `${(100 * t / total).toFixed(1).padStart(5)}% ${a}`).join('\n');
console.log('total ms', (total / 1000).toFixed(0)); console.log(top(byFile, 30)); console.log('---'); console.log(top(byFn, 40));
// inclusive for src files
const incl = new Map();
for (const [id, t] of self) { const seen = new Set(); let c = id; while (c !== undefined) { const n = byId.get(c); const k = `${n.callFrame.functionName || '(anon)'} ${cat(n.callFrame.url)}`; if (!seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k) ?? 0) + t); } c = parent.get(c); } }
console.log('--- inclusive'); console.log(top(new Map([...incl].filter(([k]) => k.includes('src/') || k.includes('express') || k.includes('pg'))), 60));
