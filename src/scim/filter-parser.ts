/**
 * A hand-written recursive-descent parser for SCIM filters (RFC7644§3.4.2.2):
 *
 *   FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
 *   valuePath = attrPath "[" valFilter "]"
 *   attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
 *   attrPath  = [URI ":"] ATTRNAME *1subAttr
 *
 * plus `emails[type eq "work"].value co "x"` (a value filter followed by a sub-attribute, as
 * Okta and Entra ID send it) and unquoted values (`userName eq Test_User_abc`, as Microsoft's
 * SCIM validator sends them). Precedence: not > and > or (RFC7644§3.4.2.2, "and" binds tighter).
 *
 * Why not `SCIMMY.Types.Filter`: scimmy rewrites every filter into an OR of ANDs, which grows
 * exponentially with nested OR groups (16 groups take seconds, 18 overflow the stack); it writes
 * attribute names as object keys, so `__proto__` / `constructor` paths reach Object.prototype;
 * and it accepts `userName eq` with no value. This parser runs in one linear pass, bounds its
 * own recursion (FILTER_LIMITS.maxDepth), counts operators as it goes, keeps attribute names as
 * strings in arrays (never as object keys), refuses those segments by name, and reports errors
 * with their position. Its tree maps onto a Prisma where without any expansion (filter.ts).
 */
import { InvalidFilter, InvalidPath } from '../domain/errors.js';

export const FILTER_LIMITS: { readonly maxLength: number; readonly maxOperators: number; readonly maxDepth: number; readonly maxResults: number } =
  Object.freeze({ maxLength: 1000, maxOperators: 50, maxDepth: 8, maxResults: 200 });

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';

export type FilterValue =
  | { type: 'string'; value: string; quoted: boolean }
  | { type: 'number'; value: number; raw: string }
  | { type: 'boolean'; value: boolean; raw: string }
  | { type: 'null'; raw: string };

/** An attribute path as written: optional schema URN, then ATTRNAME and at most one sub-attribute. */
export type AttrPath = { text: string; schema: string | null; segments: string[]; position: number };

/** `op: 'pr'` has no value. */
export type AttrExpr = { kind: 'attr'; path: AttrPath; op: CompareOp | 'pr'; value: FilterValue | null };

export type FilterNode =
  | { kind: 'and' | 'or'; items: FilterNode[] }
  | { kind: 'not'; item: FilterNode }
  | AttrExpr
  /** `emails[type eq "work"]`, optionally followed by `.value co "x"` (`then`, a path relative to the attribute). */
  | { kind: 'valuePath'; path: AttrPath; filter: FilterNode; then: AttrExpr | null };

const COMPARE_OPS: ReadonlySet<string> = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
const KEYWORDS: ReadonlySet<string> = new Set(['and', 'or', 'not', 'pr', ...COMPARE_OPS]);
/** Path segments that would reach Object.prototype in any code that walks a path through objects. */
export const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
const NAME = /^\$?[A-Za-z][A-Za-z0-9_-]*$/;
const URN = /^urn:[A-Za-z0-9][A-Za-z0-9()+,\-.:=@;$_!*'%]*$/i;
const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

type Token =
  | { t: '(' | ')' | '[' | ']'; pos: number; end: number }
  | { t: 'word'; text: string; pos: number; end: number }
  | { t: 'string'; value: string; pos: number; end: number };

/** 1-based, as people count characters. */
const at = (pos: number) => `at position ${pos + 1}`;

function describe(tok: Token | undefined): string {
  if (!tok) return 'the end of the filter';
  if (tok.t === 'word') return `'${tok.text}'`;
  if (tok.t === 'string') return `the string ${JSON.stringify(tok.value)}`;
  return `'${tok.t}'`;
}

function tokenize(expr: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === '[' || c === ']') {
      tokens.push({ t: c, pos: i, end: i + 1 });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < expr.length && expr[j] !== '"') j += expr[j] === '\\' ? 2 : 1;
      if (j >= expr.length) throw new InvalidFilter(`unterminated string starting ${at(i)}`);
      let value: unknown;
      try {
        value = JSON.parse(expr.slice(i, j + 1));
      } catch {
        throw new InvalidFilter(`invalid string ${at(i)}: use JSON string syntax (escape " and \\ with a backslash)`);
      }
      if ((value as string).includes('\u0000')) throw new InvalidFilter(`the string starting ${at(i)} contains a NUL character (\\u0000)`);
      tokens.push({ t: 'string', value: value as string, pos: i, end: j + 1 });
      i = j + 1;
    } else {
      let j = i;
      while (j < expr.length && !' \t\n\r()[]"'.includes(expr[j]!)) j++;
      tokens.push({ t: 'word', text: expr.slice(i, j), pos: i, end: j });
      i = j;
    }
  }
  return tokens;
}

/**
 * Splits and checks an attribute path (`userName`, `name.givenName`,
 * `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`). Used for
 * filters, sortBy and the attributes / excludedAttributes parameters.
 */
export function parseAttrPath(text: string, position?: number, options: { allowSchemaOnly?: boolean } = {}): AttrPath {
  const where = position === undefined ? '' : ` (${at(position)})`;
  for (const seg of text.split(/[:.]/)) {
    if (FORBIDDEN_SEGMENTS.has(seg.toLowerCase())) throw new InvalidFilter(`'${seg}' is not allowed in an attribute path${where}`);
  }
  let schema: string | null = null;
  let rest = text;
  if (/^urn:/i.test(text)) {
    const colon = text.lastIndexOf(':');
    schema = text.slice(0, colon);
    rest = text.slice(colon + 1);
    if (!URN.test(text)) throw new InvalidFilter(`'${text}' is not a valid schema URN or attribute path${where}`);
    if (!rest && !options.allowSchemaOnly) throw new InvalidFilter(`attribute name missing after the schema URN '${schema}'${where}`);
  }
  const segments = rest ? rest.split('.') : [];
  if (segments.length > 2) throw new InvalidFilter(`'${text}' is not a valid attribute path: at most one sub-attribute${where}`);
  for (const seg of segments) {
    if (!NAME.test(seg)) throw new InvalidFilter(`'${text}' is not a valid attribute path${where}`);
  }
  return { text, schema, segments, position: position ?? 0 };
}

class Parser {
  private i = 0;
  private operators = 0;

  constructor(private readonly tokens: Token[]) {}

  /**
   * A PATCH operation path (RFC 7644 §3.5.2): `PATH = attrPath / valuePath [subAttr]`, e.g.
   * `title`, `name.givenName`, `urn:…:enterprise:2.0:User:manager`, `emails[type eq "work"].value`,
   * `members[value eq "…"]`. The value filter is parsed (and bounded) exactly as a list filter's;
   * what is wrong outside it is InvalidPath, inside it InvalidFilter.
   */
  patchPath(): PatchPath {
    const nameTok = this.peek();
    if (nameTok?.t !== 'word') throw new InvalidPath(`expected an attribute path, found ${describe(nameTok)}${nameTok ? ' ' + at(nameTok.pos) : ''}`);
    this.i++;
    const open = this.peek();
    if (!open) return { path: asPath(() => parseAttrPath(nameTok.text, nameTok.pos, { allowSchemaOnly: true })), filter: null, sub: null };
    if (open.t !== '[' || open.pos !== nameTok.end) {
      throw new InvalidPath(`unexpected ${describe(open)} ${at(open.pos)}: a path is an attribute name, optionally followed by [filter] and a sub-attribute`);
    }
    const path = asPath(() => parseAttrPath(nameTok.text, nameTok.pos));
    this.i++;
    const filter = this.or(1, true);
    const close = this.peek();
    if (close?.t !== ']') {
      throw new InvalidFilter(`expected ']' to close the value filter opened ${at(open.pos)}, found ${describe(close)}${close ? ' ' + at(close.pos) : ''}`);
    }
    this.i++;
    let sub: string | null = null;
    const subTok = this.peek();
    if (subTok) {
      if (subTok.t !== 'word' || subTok.pos !== close.end || !subTok.text.startsWith('.') || this.peek(1)) {
        throw new InvalidPath(`unexpected ${describe(subTok)} ${at(subTok.pos)}: only '.subAttribute' may follow a value filter`);
      }
      const subPath = asPath(() => parseAttrPath(subTok.text.slice(1), subTok.pos + 1));
      if (subPath.schema || subPath.segments.length !== 1) throw new InvalidPath(`expected one sub-attribute name after ']' ${at(subTok.pos)}, found '${subTok.text}'`);
      sub = subPath.segments[0]!;
      this.i++;
    }
    return { path, filter, sub };
  }

  parse(): FilterNode {
    const node = this.or(0, false);
    const rest = this.tokens[this.i];
    if (rest) {
      throw new InvalidFilter(`unexpected ${describe(rest)} ${at(rest.pos)}: expected 'and', 'or' or the end of the filter`);
    }
    return node;
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.i + offset];
  }

  private isWord(tok: Token | undefined, ...words: string[]): boolean {
    return tok?.t === 'word' && words.includes(tok.text.toLowerCase());
  }

  private countOperator(tok: Token): void {
    if (++this.operators > FILTER_LIMITS.maxOperators) {
      throw new InvalidFilter(`the filter has more than ${FILTER_LIMITS.maxOperators} operators (limit reached ${at(tok.pos)})`);
    }
  }

  private enter(depth: number, tok: Token): void {
    if (depth > FILTER_LIMITS.maxDepth) {
      throw new InvalidFilter(`the filter nests deeper than ${FILTER_LIMITS.maxDepth} levels of parentheses or brackets (${at(tok.pos)})`);
    }
  }

  private expect(closer: ')' | ']', opener: Token): void {
    const tok = this.peek();
    if (tok?.t !== closer) {
      throw new InvalidFilter(`expected '${closer}' to close the '${opener.t === 'word' ? opener.text + ' (' : '('}' opened ${at(opener.pos)}, found ${describe(tok)}${tok ? ' ' + at(tok.pos) : ''}`);
    }
    this.i++;
  }

  private or(depth: number, inValueFilter: boolean): FilterNode {
    const items = [this.and(depth, inValueFilter)];
    while (this.isWord(this.peek(), 'or')) {
      this.countOperator(this.peek()!);
      this.i++;
      items.push(this.and(depth, inValueFilter));
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  }

  private and(depth: number, inValueFilter: boolean): FilterNode {
    const items = [this.unary(depth, inValueFilter)];
    while (this.isWord(this.peek(), 'and')) {
      this.countOperator(this.peek()!);
      this.i++;
      items.push(this.unary(depth, inValueFilter));
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  }

  private unary(depth: number, inValueFilter: boolean): FilterNode {
    const tok = this.peek();
    if (tok?.t === '(') {
      this.enter(depth + 1, tok);
      this.i++;
      const inner = this.or(depth + 1, inValueFilter);
      this.expect(')', tok);
      return inner;
    }
    if (tok?.t === 'word' && tok.text.toLowerCase() === 'not' && this.peek(1)?.t === '(') {
      this.countOperator(tok);
      this.enter(depth + 1, tok);
      this.i += 2;
      const inner = this.or(depth + 1, inValueFilter);
      this.expect(')', tok);
      return { kind: 'not', item: inner };
    }
    if (tok?.t === 'word') {
      const lower = tok.text.toLowerCase();
      if (KEYWORDS.has(lower)) {
        throw new InvalidFilter(`expected an attribute name ${at(tok.pos)}, found the operator '${tok.text}'${lower === 'not' ? " (write not as 'not (…)')" : ''}`);
      }
      return this.attribute(depth, inValueFilter);
    }
    throw new InvalidFilter(`expected an attribute name, '(' or 'not (' ${tok ? at(tok.pos) : 'at the end of the filter'}, found ${describe(tok)}`);
  }

  /** attrExp, or a valuePath when '[' follows the name directly. */
  private attribute(depth: number, inValueFilter: boolean): FilterNode {
    const nameTok = this.peek() as Extract<Token, { t: 'word' }>;
    this.i++;
    const path = parseAttrPath(nameTok.text, nameTok.pos);
    const next = this.peek();
    if (next?.t === '[' && next.pos === nameTok.end) {
      if (inValueFilter) throw new InvalidFilter(`value filters cannot be nested (${at(next.pos)})`);
      this.enter(depth + 1, next);
      this.i++;
      const filter = this.or(depth + 1, true);
      const close = this.peek();
      if (close?.t !== ']') {
        throw new InvalidFilter(`expected ']' to close the value filter opened ${at(next.pos)}, found ${describe(close)}${close ? ' ' + at(close.pos) : ''}`);
      }
      this.i++;
      let then: AttrExpr | null = null;
      const sub = this.peek();
      if (sub?.t === 'word' && sub.pos === close.end && sub.text.startsWith('.')) {
        this.i++;
        const subPath = parseAttrPath(sub.text.slice(1), sub.pos + 1);
        if (subPath.schema || subPath.segments.length !== 1) {
          throw new InvalidFilter(`expected a sub-attribute name after '${nameTok.text}[…]' ${at(sub.pos)}, found '${sub.text}'`);
        }
        then = this.comparison(subPath, sub);
      }
      return { kind: 'valuePath', path, filter, then };
    }
    return this.comparison(path, nameTok);
  }

  private comparison(path: AttrPath, nameTok: Token): AttrExpr {
    const opTok = this.peek();
    if (opTok?.t !== 'word') {
      throw new InvalidFilter(`expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '${path.text}' ${at(opTok?.pos ?? nameTok.end)}, found ${describe(opTok)}`);
    }
    const op = opTok.text.toLowerCase();
    if (op !== 'pr' && !COMPARE_OPS.has(op)) {
      throw new InvalidFilter(`unknown operator '${opTok.text}' ${at(opTok.pos)}: expected eq, ne, co, sw, ew, gt, ge, lt, le or pr`);
    }
    this.countOperator(opTok);
    this.i++;
    if (op === 'pr') return { kind: 'attr', path, op, value: null };
    return { kind: 'attr', path, op: op as CompareOp, value: this.value(opTok) };
  }

  private value(opTok: Extract<Token, { t: 'word' }>): FilterValue {
    const tok = this.peek();
    const needs = `'${opTok.text}' needs a value (a quoted string, true, false, null or a number)`;
    if (!tok || (tok.t !== 'word' && tok.t !== 'string')) {
      throw new InvalidFilter(`${needs} ${at(tok?.pos ?? opTok.end)}, found ${describe(tok)}`);
    }
    this.i++;
    if (tok.t === 'string') return { type: 'string', value: tok.value, quoted: true };
    const lower = tok.text.toLowerCase();
    if (KEYWORDS.has(lower)) throw new InvalidFilter(`${needs} ${at(tok.pos)}, found the operator '${tok.text}' (quote it if it is the value)`);
    if (lower === 'true' || lower === 'false') return { type: 'boolean', value: lower === 'true', raw: tok.text };
    if (lower === 'null') return { type: 'null', raw: tok.text };
    if (NUMBER.test(tok.text) && Number.isFinite(Number(tok.text))) return { type: 'number', value: Number(tok.text), raw: tok.text };
    // An unquoted value that is no JSON literal: a string (Microsoft's SCIM validator sends these).
    return { type: 'string', value: tok.text, quoted: false };
  }
}

/** A PATCH path: the attribute, its value filter (if any) and the sub-attribute after it (if any). */
export type PatchPath = { path: AttrPath; filter: FilterNode | null; sub: string | null };

/** The path part of a PATCH path is not a filter: its errors are InvalidPath (scimType invalidPath). */
function asPath(parse: () => AttrPath): AttrPath {
  try {
    return parse();
  } catch (err) {
    throw err instanceof InvalidFilter ? new InvalidPath(err.message) : err;
  }
}

/**
 * Parses a PATCH operation path (RFC 7644 §3.5.2) with the same tokenizer and limits as filters
 * (FILTER_LIMITS: length, operators, depth). Throws InvalidPath or InvalidFilter saying what and where.
 */
export function parsePatchPath(expr: string): PatchPath {
  if (expr.length > FILTER_LIMITS.maxLength) {
    throw new InvalidPath(`the path is ${expr.length} characters long; the limit is ${FILTER_LIMITS.maxLength}`);
  }
  if (!expr.trim()) throw new InvalidPath('the path is empty');
  const nul = expr.indexOf('\u0000');
  if (nul >= 0) throw new InvalidPath(`the path contains a NUL character ${at(nul)}`);
  return new Parser(tokenize(expr)).patchPath();
}

/** Parses a filter into a tree, enforcing FILTER_LIMITS. Throws InvalidFilter saying what is wrong and where. */
export function parseFilter(expr: string): FilterNode {
  if (typeof expr !== 'string') throw new InvalidFilter('the filter must be a string');
  if (expr.length > FILTER_LIMITS.maxLength) {
    throw new InvalidFilter(`the filter is ${expr.length} characters long; the limit is ${FILTER_LIMITS.maxLength}`);
  }
  if (!expr.trim()) throw new InvalidFilter('the filter is empty');
  // PostgreSQL text cannot hold NUL: let it through and the query fails with a server error.
  const nul = expr.indexOf('\u0000');
  if (nul >= 0) throw new InvalidFilter(`the filter contains a NUL character ${at(nul)}`);
  return new Parser(tokenize(expr)).parse();
}
