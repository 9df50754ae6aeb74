import SCIMMY from 'scimmy';
const emails = Array.from({length: 10}, (_, i) => ({type: i%2?'a'+i:'b'+i, value: `u${i}@x.com`, primary: i===0}));
for (let rep = 0; rep < 3; rep++) for (const n of [3,4,5,6]) {
  const f = Array.from({length:n},(_, i)=>`(type eq "a${i}" or type eq "b${i}")`).join(' and ');
  let t = performance.now();
  const F = new SCIMMY.Types.Filter(f); const c = performance.now()-t; t = performance.now();
  F.match(emails); console.log(n, F.length, 'ctor', c.toFixed(2), 'match', (performance.now()-t).toFixed(2));
}
// Flat or chain of 50
const chain = Array.from({length:25},(_, i)=>`type eq "a${i}"`).join(' or ');
let t = performance.now(); const F = new SCIMMY.Types.Filter(chain); F.match(emails); console.log('chain25', F.length, (performance.now()-t).toFixed(2));
