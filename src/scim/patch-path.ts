/**
 * PATCH operation paths (RFC 7644 §3.5.2) are parsed and bounded here before scimmy sees them.
 *
 * scimmy 1.3.5 applies a path such as `emails[type eq "work"].value` by building a
 * `SCIMMY.Types.Filter` from the text between the brackets, and that filter is rewritten into an
 * OR of ANDs (disjunctive normal form): `(a or b) and (c or d) and …` with 16 such groups became
 * 65 536 branches and blocked the event loop for 3.8 s in one 770-byte request (issue 12 §2). Its
 * regex tokenizer also reads some texts differently from the grammar (it does not unescape `\"`,
 * cuts a parenthesised group at its first `)`, takes `or-x` for an operator), so checking the text
 * the client sent would not bound what scimmy does with it.
 *
 * So every path goes through our own parser (filter-parser.ts, the one list filters use, with
 * FILTER_LIMITS), its value filter's DNF size is counted and refused above PATCH_PATH_LIMITS, and
 * scimmy gets the path re-written from the parsed tree in a form its tokenizer reads the same way:
 * string values always quoted, one level of parentheses around each OR inside an AND. What scimmy
 * cannot read that way (quotes, backslashes, brackets or parentheses inside a value, groups nested
 * in groups, `not` around a group, which scimmy 1.3.5 negates wrongly) is refused with a 400 naming it.
 */
import { InvalidFilter, InvalidInput, InvalidPath } from '../domain/errors.js';
import { parsePatchPath, type FilterNode, type FilterValue } from './filter-parser.js';
import { getCI, hasForbiddenSegment, isPlainObject } from './dialect-schema.js';

/**
 * maxBranches: the DNF size (product of OR branches across AND) one value filter may have. Identity
 * providers send one branch (`type eq "work"`, `value eq "<id>"`); 32 branches cost scimmy a few
 * milliseconds on a user with ten emails, 64 already tens of milliseconds.
 * maxScimmyWork: what one request may hand scimmy — each operation counts as its path's number of
 * branches (1 without a filter). scimmy re-walks the resource for every operation (~0.13 ms each
 * on a user with eight emails: 2000 operations kept the loop 230 ms); Entra and Okta send one
 * per changed attribute (ten at most in fixtures/scim), and member operations of the usual
 * shapes never reach scimmy. 50
 * operations took 12–20 ms alone but 47–115 ms with the machine loaded, 100 up to 58 ms alone:
 * 32, the same bound as one filter.
 */
export const PATCH_PATH_LIMITS: { readonly maxBranches: number; readonly maxScimmyWork: number } = Object.freeze({ maxBranches: 32, maxScimmyWork: 32 });

/** Characters scimmy's filter tokenizer cannot delimit inside a quoted value (see the top of this file). */
const UNREADABLE = /["\\()[\]\u0000-\u001f]/;

/**
 * How many AND-branches scimmy's DNF rewrite of the filter has: a comparison is one, OR adds,
 * AND multiplies (De Morgan swaps them under `not`).
 */
export function dnfBranches(node: FilterNode, negate = false): number {
  switch (node.kind) {
    case 'attr':
    case 'valuePath':
      return 1;
    case 'not':
      return dnfBranches(node.item, !negate);
    case 'and':
    case 'or': {
      const counts = node.items.map((n) => dnfBranches(n, negate));
      return (node.kind === 'and') !== negate ? counts.reduce((a, b) => a * b, 1) : counts.reduce((a, b) => a + b, 0);
    }
  }
}

function renderValue(v: FilterValue, where: string): string {
  if (v.type !== 'string') return v.type === 'null' ? 'null' : v.raw;
  const bad = UNREADABLE.exec(v.value);
  if (bad) {
    throw new InvalidFilter(`${where}: the value ${JSON.stringify(v.value)} contains ${JSON.stringify(bad[0])}; quotes, backslashes, brackets, parentheses and control characters are not supported in a PATCH path filter value`);
  }
  return `"${v.value}"`;
}

/** The filter as text scimmy tokenizes into the same tree; `grouped` says we are inside one level of parentheses. */
function render(node: FilterNode, where: string, grouped: boolean): string {
  switch (node.kind) {
    case 'attr':
      return node.op === 'pr' ? `${node.path.text} pr` : `${node.path.text} ${node.op} ${renderValue(node.value!, where)}`;
    case 'valuePath':
      // The parser refuses value filters inside a value filter; kept for exhaustiveness.
      throw new InvalidFilter(`${where}: value filters cannot be nested`);
    case 'not':
      if (node.item.kind !== 'attr') throw new InvalidFilter(`${where}: 'not (…)' may only wrap one comparison in a PATCH path filter, such as not (type eq "work")`);
      return `not (${render(node.item, where, true)})`;
    case 'or':
      return node.items.map((n) => render(n, where, grouped)).join(' or ');
    case 'and':
      return node.items
        .map((n) => {
          if (n.kind !== 'or') return render(n, where, grouped);
          if (grouped) throw new InvalidFilter(`${where}: parentheses in a PATCH path filter may not be nested`);
          return `(${render(n, where, true)})`;
        })
        .join(' and ');
  }
}

/**
 * Parses and bounds one PATCH path; returns it as scimmy should see it. Throws InvalidPath
 * (scimType invalidPath) or InvalidFilter (scimType invalidFilter) naming the operation and the problem.
 */
/**
 * The shape identity providers send (`members[value eq "<id>"]`, `emails[type eq "work"].value`),
 * which scimmy's tokenizer reads as the grammar does: taken as it is, without the parser (Okta
 * removes members one operation each, a thousand paths in one request).
 */
const PLAIN = /^[A-Za-z][\w$-]*\[([A-Za-z][\w$-]*) eq "[^"\\()[\]\u0000-\u001f]*"\](?:\.[A-Za-z][\w$-]*)?$/;
const NOT_A_NAME: ReadonlySet<string> = new Set(['and', 'or', 'not', 'pr', 'eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);

export function boundPatchPath(path: string, index: number): { path: string; branches: number } {
  const plain = PLAIN.exec(path);
  if (plain && !NOT_A_NAME.has(plain[1]!.toLowerCase()) && !hasForbiddenSegment(path)) return { path, branches: 1 };
  const where = `operation ${index + 1} path`;
  let parsed;
  try {
    parsed = parsePatchPath(path);
  } catch (err) {
    if (err instanceof InvalidPath) throw new InvalidPath(`${where}: ${err.message}`);
    if (err instanceof InvalidFilter) throw new InvalidFilter(`${where}: ${err.message}`);
    throw err;
  }
  if (!parsed.filter) return { path: parsed.path.text, branches: 1 };
  const branches = dnfBranches(parsed.filter);
  if (branches > PATCH_PATH_LIMITS.maxBranches) {
    throw new InvalidFilter(`${where}: the value filter expands to ${branches} alternatives (OR branches multiplied across AND); the limit is ${PATCH_PATH_LIMITS.maxBranches}`);
  }
  return { path: `${parsed.path.text}[${render(parsed.filter, where, false)}]${parsed.sub ? `.${parsed.sub}` : ''}`, branches };
}

/**
 * Checks every string path of a PatchOp body (member names in any case, as the dialect reads
 * them) and returns the body with each path as scimmy should see it. Anything that is not a
 * PatchOp of that shape is returned unchanged for scimmy to refuse. Called on the body as the
 * client sent it (before any database work) and again, with `forScimmy`, on what
 * dialect.normalisePatch made of it right before scimmy applies it: then the operations' total
 * work is bounded too (PATCH_PATH_LIMITS.maxScimmyWork).
 */
export function boundPatchPaths(body: unknown, opts: { forScimmy?: boolean } = {}): unknown {
  if (!isPlainObject(body)) return body;
  const key = Object.keys(body).find((k) => k === 'Operations') ?? Object.keys(body).find((k) => k.toLowerCase() === 'operations');
  const operations = key === undefined ? undefined : body[key];
  if (!Array.isArray(operations)) return body;
  let work = 0;
  const out = operations.map((op, i) => {
    work++;
    if (!isPlainObject(op)) return op;
    const pathKey = Object.keys(op).find((k) => k.toLowerCase() === 'path');
    const path = pathKey === undefined ? undefined : getCI(op, pathKey);
    if (typeof path !== 'string' || path.trim() === '') return op;
    const bounded = boundPatchPath(path.trim(), i);
    work += bounded.branches - 1;
    return bounded.path === path ? op : { ...op, [pathKey!]: bounded.path };
  });
  if (opts.forScimmy && work > PATCH_PATH_LIMITS.maxScimmyWork) {
    const message = `${operations.length} operations (${work} counting each path filter as its number of alternatives) are more than one PATCH applies: the limit is ${PATCH_PATH_LIMITS.maxScimmyWork}; send them in several requests`;
    throw new InvalidInput(message, [{ path: 'Operations', message }]);
  }
  return { ...body, [key!]: out };
}
