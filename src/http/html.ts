/**
 * Server-rendered HTML for the SSO pages and the console: a tagged template that escapes every
 * interpolated value unless it is itself the result of `html` (or `raw`), and one page layout.
 * No front-end framework: the pages are small, and escaping by default is what keeps them safe.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

function render(v: unknown): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => { out += render(v) + strings[i + 1]!; });
  return new SafeHtml(out);
}

/** Trusted markup only (never user input). */
export const raw = (s: string) => new SafeHtml(s);

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.45}
header{display:flex;gap:1.5rem;align-items:baseline;border-bottom:1px solid #ccc;margin-bottom:1.5rem;padding-bottom:.5rem}
header a{color:#0b57d0}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}.pass{color:#106b21;font-weight:600}.fail{color:#b3261e;font-weight:600}
.notice{padding:.75rem 1rem;border-radius:4px;margin:1rem 0}.ok{background:#e6f4ea;border:1px solid #106b21}.bad{background:#fce8e6;border:1px solid #b3261e}
pre{background:#f6f6f6;padding:.75rem;overflow:auto}button,input,select{font:inherit;padding:.3rem .6rem}label{display:block;margin:.5rem 0}
a:focus,button:focus,input:focus,select:focus{outline:3px solid #0b57d0;outline-offset:2px}
`;

export function page(title: string, body: SafeHtml, opts: { nav?: SafeHtml } = {}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · orgsync</title><style>${STYLE}</style></head>
<body>${opts.nav ? `<header>${opts.nav.value}</header>` : ''}<main><h1>${escapeHtml(title)}</h1>
${body.value}
</main></body></html>`;
}
