/**
 * prisma/schema.prisma and the hand-written migrations must describe the same database.
 *
 * `prisma migrate` cannot run here (no engine binaries), so nothing else keeps the two in step.
 * This test migrates an empty database with our own migrator, reads the result back from the
 * PostgreSQL catalogue (pg_catalog) and compares it with the data model that Prisma's own
 * schema parser produces from schema.prisma, in both directions:
 *
 *   - every enum (and its values, in order), model/table, field/column (type incl. native
 *     precision, nullability, default), primary key, @unique / @@unique, @@index and relation
 *     foreign key (columns, target, ON DELETE / ON UPDATE) declared in the schema exists in
 *     the database exactly as Prisma Migrate would have created it;
 *   - nothing in the database (tables, columns, indexes, constraints, enum types and values,
 *     sequences, views, other types, functions, triggers, row-level security) is absent from
 *     the schema, except the allowlisted SQL-only invariants below.
 *
 * The schema is parsed by Prisma's schema engine: the prisma CLI package ships it as
 * build/prisma_schema_build_bg.wasm (what `prisma validate`/`prisma generate` run) and its
 * `get_dmmf` export returns the DMMF, including `datamodel.indexes` (@id, @unique, @@unique,
 * @@index). The CLI bundles the wasm-bindgen glue inside cli.js without exporting it, so the
 * few lines of glue needed to call `get_dmmf` live below. Anything in the DMMF that this test
 * does not know how to map to PostgreSQL (a native type, a default, an index option, @@schema,
 * composite types, custom foreign-key names, ...) makes it fail loudly rather than pass blindly.
 *
 * Naming follows Prisma Migrate's conventions: <Table>_pkey, <Table>_<cols>_key (unique),
 * <Table>_<cols>_idx (index), <Table>_<cols>_fkey (foreign key), <Table>_<col>_seq (serial).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlSession } from '../../src/store/database.js';
import { defaultMigrationsDir, migrate } from '../../src/store/migrator.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const SCHEMA_PATH = join(import.meta.dirname, '..', '..', 'prisma', 'schema.prisma');

/**
 * Invariants Prisma's schema language cannot express (partial unique indexes, CHECK
 * constraints; prisma/prisma#3076). They live only in the migration SQL. Each entry must exist
 * in the database exactly as described; anything else not in schema.prisma is a disagreement.
 */
const SQL_ONLY_INVARIANTS: readonly SqlOnlyInvariant[] = [
  // At most one default policy per org.
  { kind: 'partial unique index', table: 'Policy', name: 'Policy_one_default_per_org' },
  // At most one non-billable policy per org.
  { kind: 'partial unique index', table: 'Policy', name: 'Policy_one_non_billable_per_org' },
  // A domain can be verified by one org only.
  { kind: 'partial unique index', table: 'Domain', name: 'Domain_verified_once' },
  // The default policy is never non-billable.
  { kind: 'check constraint', table: 'Policy', name: 'Policy_default_billable_check' },
  // A non-billable policy enforces nothing.
  { kind: 'check constraint', table: 'Policy', name: 'Policy_non_billable_enforces_nothing_check' },
  // A synced account is never in a non-billable policy (its copy of the policy's flag, kept by the composite foreign key).
  { kind: 'check constraint', table: 'Account', name: 'Account_synced_never_non_billable_check' },
  // An account in no policy carries no non-billable flag.
  { kind: 'check constraint', table: 'Account', name: 'Account_no_policy_no_flag_check' },
  // Account.policyNonBillable follows policyId (the policy's flag) on every INSERT and policy change.
  { kind: 'trigger', table: 'Account', name: 'Account_policy_flag' },
  { kind: 'function', table: 'Account', name: 'Account_policy_flag' },
  // Managed accounts are in exactly one policy, external accounts in none.
  { kind: 'check constraint', table: 'Account', name: 'Account_managed_policy_check' },
  // An org is its own tenant: orgId = id.
  { kind: 'check constraint', table: 'Org', name: 'Org_orgId_is_id_check' },
  // A policy that enforces SSO names its connection.
  { kind: 'check constraint', table: 'Policy', name: 'Policy_sso_needs_connection_check' },
  // A SAML connection has its entity id, SSO URL and a signing certificate; OIDC its issuer, client and secret.
  { kind: 'check constraint', table: 'SsoConnection', name: 'SsoConnection_complete_check' },
  // A SCIM user's UPDATE sent ahead of the COMMIT asserts its own match (a miss fails the transaction).
  { kind: 'function', table: 'ScimUser', name: 'orgsync_expect', args: 'boolean,text' },
];

/** Prisma Migrate's own history table (written by src/store/migrator.ts); not part of the data model. */
const MIGRATION_HISTORY_TABLE = '_prisma_migrations';

type SqlOnlyInvariant = { kind: 'partial unique index' | 'check constraint' | 'trigger' | 'function'; table: string; name: string; args?: string };

/** How readCatalogue lists a trigger or function (its `others`). */
function otherEntry(inv: SqlOnlyInvariant): string | null {
  if (inv.kind === 'trigger') return `trigger ${quoteIdent(inv.name)} on ${quoteIdent(inv.table)}`;
  if (inv.kind === 'function') return `function ${quoteIdent(inv.name)}(${inv.args ?? ''})`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Prisma's schema parser (prisma_schema_build_bg.wasm) and the part of the DMMF this test reads.
// ---------------------------------------------------------------------------------------------

type DmmfDefault = { name: string; args: unknown[] } | string | number | boolean | unknown[];
type DmmfField = {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'enum' | 'object' | 'unsupported';
  isList: boolean;
  isRequired: boolean;
  isId: boolean;
  isUnique: boolean;
  isUpdatedAt: boolean;
  isGenerated: boolean;
  hasDefaultValue: boolean;
  type: string;
  nativeType?: [string, string[]] | null;
  default?: DmmfDefault;
  relationName?: string;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
  relationOnUpdate?: string;
};
type DmmfModel = { name: string; dbName: string | null; schema: string | null; fields: DmmfField[]; isGenerated: boolean };
type DmmfEnum = { name: string; dbName?: string | null; values: { name: string; dbName?: string | null }[] };
type DmmfIndex = {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  isDefinedOnField: boolean;
  dbName?: string | null;
  name?: string | null;
  fields: { name: string }[];
};
type Datamodel = { models: DmmfModel[]; enums: DmmfEnum[]; types: unknown[]; indexes: DmmfIndex[] };

// Keys of the DMMF this test understands. An unknown key means the schema uses something (or a
// newer Prisma emits something) the comparison below would silently ignore: fail instead.
const KNOWN_KEYS = {
  model: ['name', 'dbName', 'schema', 'fields', 'primaryKey', 'uniqueFields', 'uniqueIndexes', 'isGenerated', 'documentation'],
  field: [
    'name', 'dbName', 'kind', 'isList', 'isRequired', 'isUnique', 'isId', 'isReadOnly', 'hasDefaultValue', 'type',
    'nativeType', 'default', 'isGenerated', 'isUpdatedAt', 'relationName', 'relationFromFields', 'relationToFields',
    'relationOnDelete', 'relationOnUpdate', 'documentation',
  ],
  enum: ['name', 'dbName', 'values', 'documentation'],
  enumValue: ['name', 'dbName'],
  index: ['model', 'type', 'isDefinedOnField', 'dbName', 'name', 'fields'],
  indexField: ['name'],
} as const;

/** Minimal typing of the WebAssembly global (the project's tsconfig has no DOM/wasm lib). */
type WasmApi = {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
};
type WasmModuleApi = { imports(module: object): { module: string; name: string; kind: string }[] };
type SchemaWasm = {
  memory: { buffer: ArrayBuffer };
  __wbindgen_externrefs: { get(i: number): unknown; set(i: number, v: unknown): void; grow(n: number): number };
  __wbindgen_malloc(size: number, align: number): number;
  __wbindgen_free(ptr: number, size: number, align: number): void;
  __externref_table_dealloc(i: number): void;
  __wbindgen_start(): void;
  get_dmmf(ptr: number, len: number): [number, number, number, number];
};

/** Runs Prisma's `get_dmmf` (the same call `prisma generate` makes) on a schema text. */
function getDmmf(schemaText: string): { datamodel: Datamodel } {
  const require = createRequire(import.meta.url);
  const wasmPath = join(dirname(require.resolve('prisma/package.json')), 'build', 'prisma_schema_build_bg.wasm');
  const Wasm = (globalThis as unknown as { WebAssembly: WasmApi & { Module: WasmModuleApi } }).WebAssembly;
  const module = new Wasm.Module(readFileSync(wasmPath));
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let wasm: SchemaWasm | undefined;
  let panicMessage: string | undefined;
  const w = (): SchemaWasm => {
    if (!wasm) throw new Error('prisma schema wasm used before instantiation');
    return wasm;
  };
  const readString = (ptr: number, len: number) => decoder.decode(new Uint8Array(w().memory.buffer, ptr >>> 0, len));

  // wasm-bindgen imports, matched by prefix (the suffix is a build hash). Unknown import = fail.
  const glue: Record<string, unknown> = {};
  for (const imp of (Wasm.Module as WasmModuleApi).imports(module)) {
    const { name } = imp;
    if (imp.module !== '__wbindgen_placeholder__') throw new Error(`prisma schema wasm: unexpected import module ${imp.module}`);
    if (name.startsWith('__wbg_Error_')) glue[name] = (p: number, l: number) => new Error(readString(p, l));
    else if (name.startsWith('__wbg___wbindgen_throw_')) glue[name] = (p: number, l: number) => { throw new Error(readString(p, l)); };
    else if (name.startsWith('__wbg_set_message_')) glue[name] = (p: number, l: number) => { panicMessage = readString(p, l); };
    else if (name === '__wbindgen_init_externref_table') {
      glue[name] = () => {
        const table = w().__wbindgen_externrefs;
        const base = table.grow(4);
        table.set(0, undefined);
        table.set(base + 0, undefined);
        table.set(base + 1, null);
        table.set(base + 2, true);
        table.set(base + 3, false);
      };
    } else throw new Error(`prisma schema wasm: unknown import ${name}; the glue in this test needs updating for this Prisma version`);
  }
  wasm = new Wasm.Instance(module, { __wbindgen_placeholder__: glue }).exports as unknown as SchemaWasm;
  wasm.__wbindgen_start();

  const input = new TextEncoder().encode(JSON.stringify({ prismaSchema: schemaText, noColor: true }));
  const ptr = wasm.__wbindgen_malloc(input.length, 1) >>> 0;
  new Uint8Array(wasm.memory.buffer).set(input, ptr);
  let result: [number, number, number, number];
  try {
    result = wasm.get_dmmf(ptr, input.length);
  } catch (err) {
    throw new Error(`Prisma's schema parser panicked: ${panicMessage ?? String(err)}`);
  }
  const [outPtr, outLen, errIndex, isErr] = result;
  if (isErr) {
    const err = wasm.__wbindgen_externrefs.get(errIndex);
    wasm.__externref_table_dealloc(errIndex);
    const raw = err instanceof Error ? err.message : String(err);
    let message = raw;
    try {
      message = (JSON.parse(raw) as { message: string }).message;
    } catch {
      /* not JSON: keep raw */
    }
    throw new Error(`Prisma's schema parser rejected prisma/schema.prisma:\n${message}`);
  }
  try {
    return JSON.parse(readString(outPtr, outLen)) as { datamodel: Datamodel };
  } finally {
    wasm.__wbindgen_free(outPtr, outLen, 1);
  }
}

// ---------------------------------------------------------------------------------------------
// The database Prisma Migrate would create for the data model (PostgreSQL conventions).
// ---------------------------------------------------------------------------------------------

type Column = { type: string; notNull: boolean; default: string | null };
type Index = { table: string; columns: string[]; unique: boolean; primary: boolean; partial: boolean; extra: string[] };
type Constraint = { table: string; kind: string; definition: string };
type Sequence = { table: string | null; column: string | null; type: string };
type Catalogue = {
  tables: Map<string, Map<string, Column>>;
  enums: Map<string, string[]>;
  indexes: Map<string, Index>;
  constraints: Map<string, Constraint>;
  sequences: Map<string, Sequence>;
  /** Views, foreign tables, standalone types, functions, triggers, RLS: never declared by the schema. */
  others: string[];
};

class UnsupportedSchema extends Error {
  constructor(where: string, what: string) {
    super(`schema-agreement test does not understand ${what} (${where}); extend test/store/schema-agreement.test.ts before using it`);
  }
}

function checkKeys(obj: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) if (!known.includes(key)) throw new UnsupportedSchema(where, `DMMF key "${key}"`);
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

/** Prisma's default constraint/index names; PostgreSQL truncates at 63 bytes and so does Prisma (differently). */
function conventionalName(table: string, columns: string[], suffix: 'pkey' | 'key' | 'idx' | 'fkey' | 'seq'): string {
  const name = suffix === 'pkey' ? `${table}_pkey` : `${table}_${columns.join('_')}_${suffix}`;
  if (Buffer.byteLength(name) > 63) throw new UnsupportedSchema(table, `a default name longer than 63 bytes (${name})`);
  return name;
}

const FK_ACTION: Record<string, string> = {
  Cascade: 'CASCADE', Restrict: 'RESTRICT', NoAction: 'NO ACTION', SetNull: 'SET NULL', SetDefault: 'SET DEFAULT',
};

function expectedCatalogue(dm: Datamodel, schemaText: string): Catalogue {
  if (dm.types.length > 0) throw new UnsupportedSchema('datamodel', 'composite types');
  // The DMMF does not carry foreign-key names, so a custom one would go unchecked.
  if (/@relation\([^)]*\bmap\s*:/.test(schemaText)) throw new UnsupportedSchema('schema.prisma', '@relation(map: ...)');
  if (/@@?ignore\b/.test(schemaText)) throw new UnsupportedSchema('schema.prisma', '@ignore / @@ignore');

  const enumDbName = new Map<string, string>();
  const enumValueDbName = new Map<string, Map<string, string>>();
  const enums = new Map<string, string[]>();
  for (const e of dm.enums) {
    checkKeys(e, KNOWN_KEYS.enum, `enum ${e.name}`);
    const db = e.dbName ?? e.name;
    enumDbName.set(e.name, db);
    const values = new Map<string, string>();
    for (const v of e.values) {
      checkKeys(v, KNOWN_KEYS.enumValue, `enum ${e.name}.${v.name}`);
      values.set(v.name, v.dbName ?? v.name);
    }
    enumValueDbName.set(e.name, values);
    enums.set(db, [...values.values()]);
  }

  const models = new Map(dm.models.map((m) => [m.name, m]));
  const tableOf = (model: string) => {
    const m = models.get(model);
    if (!m) throw new Error(`DMMF refers to unknown model ${model}`);
    return m.dbName ?? m.name;
  };
  const columnOf = (model: string, field: string) => {
    const f = models.get(model)?.fields.find((x) => x.name === field);
    if (!f) throw new Error(`DMMF refers to unknown field ${model}.${field}`);
    return f.dbName ?? f.name;
  };

  const tables = new Map<string, Map<string, Column>>();
  const indexes = new Map<string, Index>();
  const constraints = new Map<string, Constraint>();
  const sequences = new Map<string, Sequence>();

  for (const m of dm.models) {
    const where = `model ${m.name}`;
    checkKeys(m, KNOWN_KEYS.model, where);
    if (m.schema !== null) throw new UnsupportedSchema(where, '@@schema (multi-schema)');
    if (m.isGenerated) throw new UnsupportedSchema(where, 'generated models');
    const table = tableOf(m.name);
    const columns = new Map<string, Column>();
    for (const f of m.fields) {
      const fw = `${m.name}.${f.name}`;
      checkKeys(f, KNOWN_KEYS.field, fw);
      if (f.isGenerated) throw new UnsupportedSchema(fw, 'generated fields');
      if (f.kind === 'object') {
        const from = f.relationFromFields ?? [];
        if (from.length === 0) continue; // the back-relation side: no column, no constraint
        const to = f.relationToFields ?? [];
        const fromCols = from.map((x) => columnOf(m.name, x));
        const toCols = to.map((x) => columnOf(f.type, x));
        // Prisma's defaults: optional relation SET NULL, required RESTRICT; updates CASCADE.
        const onDelete = f.relationOnDelete ?? (f.isRequired ? 'Restrict' : 'SetNull');
        const onUpdate = f.relationOnUpdate ?? 'Cascade';
        const del = FK_ACTION[onDelete];
        const upd = FK_ACTION[onUpdate];
        if (!del || !upd) throw new UnsupportedSchema(fw, `referential action ${onDelete}/${onUpdate}`);
        constraints.set(conventionalName(table, fromCols, 'fkey'), {
          table,
          kind: 'foreign key',
          definition: describeForeignKey(fromCols, quoteIdent(tableOf(f.type)), toCols, del, upd),
        });
        continue;
      }
      if (f.kind === 'unsupported') throw new UnsupportedSchema(fw, 'Unsupported(...) fields');
      const column = f.dbName ?? f.name;
      // Prisma Migrate creates scalar lists without NOT NULL on PostgreSQL even though the schema
      // calls them required (e.g. "reasons" TEXT[]; prisma/orm#4729, #13880), so that is what we expect.
      columns.set(column, {
        type: expectedType(f, fw, enumDbName),
        notNull: f.isRequired && !f.isList,
        default: expectedDefault(f, fw, table, column, enumDbName, enumValueDbName),
      });
      if (f.hasDefaultValue && isFunctionDefault(f.default, 'autoincrement')) {
        const seqType = { Int: 'integer', BigInt: 'bigint' }[f.type];
        if (!seqType) throw new UnsupportedSchema(fw, `autoincrement() on ${f.type}`);
        sequences.set(conventionalName(table, [column], 'seq'), { table, column, type: seqType });
      }
    }
    tables.set(table, columns);
  }

  for (const ix of dm.indexes) {
    const where = `index on ${ix.model}(${ix.fields.map((f) => f.name).join(', ')})`;
    checkKeys(ix, KNOWN_KEYS.index, where);
    for (const f of ix.fields) checkKeys(f, KNOWN_KEYS.indexField, where);
    const table = tableOf(ix.model);
    const cols = ix.fields.map((f) => columnOf(ix.model, f.name));
    const suffix = ({ id: 'pkey', unique: 'key', normal: 'idx' } as const)[ix.type as 'id' | 'unique' | 'normal'];
    if (!suffix) throw new UnsupportedSchema(where, `index type ${ix.type}`);
    const name = ix.dbName ?? conventionalName(table, cols, suffix);
    if (indexes.has(name)) throw new Error(`schema.prisma declares two indexes named ${name}`);
    indexes.set(name, { table, columns: cols, unique: ix.type !== 'normal', primary: ix.type === 'id', partial: false, extra: [] });
    if (ix.type === 'id') constraints.set(name, { table, kind: 'primary key', definition: `PRIMARY KEY (${cols.map(quoteIdent).join(', ')})` });
  }
  for (const m of dm.models) {
    if (!dm.indexes.some((ix) => ix.model === m.name && ix.type === 'id')) throw new UnsupportedSchema(`model ${m.name}`, 'models without @id/@@id');
  }

  return { tables, enums, indexes, constraints, sequences, others: [] };
}

function isFunctionDefault(d: DmmfDefault | undefined, name: string): boolean {
  return typeof d === 'object' && d !== null && !Array.isArray(d) && d.name === name;
}

const SCALAR_TYPES: Record<string, string> = {
  String: 'text',
  Boolean: 'boolean',
  Int: 'integer',
  BigInt: 'bigint',
  Float: 'double precision',
  Decimal: 'numeric(65,30)',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
};

function expectedType(f: DmmfField, where: string, enumDbName: Map<string, string>): string {
  let base: string | undefined;
  if (f.kind === 'enum') {
    base = `enum ${enumDbName.get(f.type) ?? f.type}`;
    if (f.nativeType) throw new UnsupportedSchema(where, 'a native type on an enum field');
  } else if (f.nativeType) {
    const [native, args] = f.nativeType;
    const one = () => {
      if (args.length !== 1 || !/^\d+$/.test(args[0] ?? '')) throw new UnsupportedSchema(where, `@db.${native}(${args.join(', ')}) (give an explicit length/precision)`);
      return args[0];
    };
    const none = (sql: string) => {
      if (args.length !== 0) throw new UnsupportedSchema(where, `@db.${native}(${args.join(', ')})`);
      return sql;
    };
    switch (native) {
      case 'Uuid': base = none('uuid'); break;
      case 'Text': base = none('text'); break;
      case 'Citext': base = none('citext'); break;
      case 'Char': base = `character(${one()})`; break;
      case 'VarChar': base = `character varying(${one()})`; break;
      case 'Timestamptz': base = `timestamp(${one()}) with time zone`; break;
      case 'Timestamp': base = `timestamp(${one()}) without time zone`; break;
      case 'Integer': base = none('integer'); break;
      case 'SmallInt': base = none('smallint'); break;
      case 'BigInt': base = none('bigint'); break;
      case 'Boolean': base = none('boolean'); break;
      case 'Date': base = none('date'); break;
      case 'JsonB': base = none('jsonb'); break;
      case 'Json': base = none('json'); break;
      default: throw new UnsupportedSchema(where, `native type @db.${native}`);
    }
  } else {
    base = SCALAR_TYPES[f.type];
    if (!base) throw new UnsupportedSchema(where, `scalar type ${f.type}`);
  }
  return f.isList ? `${base}[]` : base;
}

/** The default as pg_get_expr() prints it for what Prisma Migrate generates; null = no DB default. */
function expectedDefault(
  f: DmmfField, where: string, table: string, column: string,
  enumDbName: Map<string, string>, enumValueDbName: Map<string, Map<string, string>>,
): string | null {
  if (!f.hasDefaultValue) return null;
  const d = f.default;
  if (f.isList || Array.isArray(d)) throw new UnsupportedSchema(where, 'defaults on list fields');
  if (typeof d === 'object' && d !== null) {
    switch (d.name) {
      case 'now': return 'CURRENT_TIMESTAMP';
      case 'autoincrement': return `nextval('${quoteIdent(conventionalName(table, [column], 'seq'))}'::regclass)`;
      // Generated by Prisma Client, not by the database.
      case 'uuid': case 'cuid': case 'nanoid': case 'ulid': return null;
      default: throw new UnsupportedSchema(where, `@default(${d.name}(...))`);
    }
  }
  if (typeof d === 'boolean') return String(d);
  if (typeof d === 'number' && Number.isInteger(d) && d >= 0 && (f.type === 'Int' || f.type === 'BigInt')) return String(d);
  if (typeof d === 'string' && f.kind === 'enum') {
    const value = enumValueDbName.get(f.type)?.get(d) ?? d;
    return `'${value.replace(/'/g, "''")}'::${quoteIdent(enumDbName.get(f.type) ?? f.type)}`;
  }
  if (typeof d === 'string' && f.type === 'String' && !f.nativeType) return `'${d.replace(/'/g, "''")}'::text`;
  throw new UnsupportedSchema(where, `@default(${JSON.stringify(d)}) on ${f.type}`);
}

/** refTable is already quoted. */
function describeForeignKey(cols: string[], refTable: string, refCols: string[], onDelete: string, onUpdate: string): string {
  const list = (xs: string[]) => xs.map(quoteIdent).join(', ');
  return `FOREIGN KEY (${list(cols)}) REFERENCES ${refTable}(${list(refCols)}) ON DELETE ${onDelete} ON UPDATE ${onUpdate}`;
}

// ---------------------------------------------------------------------------------------------
// The database as it is (current schema only: public on PGlite, the test's schema on PostgreSQL).
// ---------------------------------------------------------------------------------------------

async function readCatalogue(s: SqlSession): Promise<Catalogue> {
  const ns = `(SELECT oid FROM pg_namespace WHERE nspname = current_schema())`;
  const others: string[] = [];

  const relations = await s.query<{ name: string; relkind: string }>(
    `SELECT relname AS name, relkind::text AS relkind FROM pg_class WHERE relnamespace = ${ns} AND relkind NOT IN ('i', 'I', 'S')`,
  );
  const tables = new Map<string, Map<string, Column>>();
  const kinds: Record<string, string> = { v: 'view', m: 'materialized view', f: 'foreign table', c: 'composite type' };
  for (const r of relations) {
    if (r.relkind === 'r' || r.relkind === 'p') tables.set(r.name, new Map());
    else others.push(`${kinds[r.relkind] ?? `relation (relkind ${r.relkind})`} ${quoteIdent(r.name)}`);
  }

  const columns = await s.query<{ table: string; column: string; type: string; not_null: boolean; default: string | null; identity: string; generated: string }>(
    `SELECT c.relname AS "table", a.attname AS "column", a.attnotnull AS not_null,
            CASE WHEN et.oid IS NOT NULL
                 THEN (CASE WHEN et.typtype = 'e' THEN 'enum ' || et.typname ELSE format_type(et.oid, a.atttypmod) END) || '[]'
                 WHEN t.typtype = 'e' THEN 'enum ' || t.typname
                 ELSE format_type(t.oid, a.atttypmod) END AS type,
            pg_get_expr(d.adbin, d.adrelid) AS "default",
            a.attidentity::text AS identity, a.attgenerated::text AS generated
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE c.relnamespace = ${ns} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`,
  );
  for (const c of columns) {
    let type = c.type;
    if (c.identity) type += ` (identity column)`;
    if (c.generated) type += ` (generated column)`;
    tables.get(c.table)?.set(c.column, { type, notNull: c.not_null, default: c.default });
  }

  const enumRows = await s.query<{ name: string; labels: string[] }>(
    `SELECT t.typname AS name, json_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
      WHERE t.typnamespace = ${ns} GROUP BY t.typname`,
  );
  const enums = new Map(enumRows.map((r) => [r.name, r.labels]));
  // Empty enum types have no pg_enum rows.
  for (const r of await s.query<{ name: string }>(
    `SELECT typname AS name FROM pg_type t WHERE typnamespace = ${ns} AND typtype = 'e' AND NOT EXISTS (SELECT 1 FROM pg_enum e WHERE e.enumtypid = t.oid)`,
  )) enums.set(r.name, []);

  // Domains, ranges, base types (composite types were listed with the relations; array and
  // table row types belong to their element/table).
  for (const r of await s.query<{ name: string; typtype: string }>(
    `SELECT typname AS name, typtype::text AS typtype FROM pg_type
      WHERE typnamespace = ${ns} AND typtype NOT IN ('e', 'c') AND typcategory <> 'A'`,
  )) others.push(`type ${quoteIdent(r.name)} (typtype ${r.typtype})`);

  const indexRows = await s.query<{ name: string; table: string; columns: (string | null)[]; unique: boolean; primary: boolean; partial: boolean; expressions: boolean; method: string; include: boolean; ordered: boolean; nulls_not_distinct: boolean }>(
    `SELECT ic.relname AS name, c.relname AS "table", i.indisunique AS "unique", i.indisprimary AS "primary",
            i.indpred IS NOT NULL AS partial, i.indexprs IS NOT NULL AS expressions, am.amname AS method,
            i.indnatts <> i.indnkeyatts AS include,
            EXISTS (SELECT 1 FROM unnest(i.indoption::int2[]) o WHERE o <> 0) AS ordered,
            coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nulls_not_distinct,
            (SELECT json_agg(a.attname ORDER BY k.ord)
               FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
               LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS columns
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_class c ON c.oid = i.indrelid
       JOIN pg_am am ON am.oid = ic.relam
      WHERE c.relnamespace = ${ns}`,
  );
  const indexes = new Map<string, Index>();
  for (const r of indexRows) {
    const extra: string[] = [];
    if (r.expressions) extra.push('on expressions');
    if (r.method !== 'btree') extra.push(`using ${r.method}`);
    if (r.include) extra.push('with INCLUDE columns');
    if (r.ordered) extra.push('with DESC / NULLS FIRST ordering');
    if (r.nulls_not_distinct) extra.push('NULLS NOT DISTINCT');
    indexes.set(r.name, {
      table: r.table, columns: r.columns.map((c) => c ?? '<expression>'),
      unique: r.unique, primary: r.primary, partial: r.partial, extra,
    });
  }

  const constraintRows = await s.query<{
    name: string; table: string; contype: string; definition: string; columns: string[] | null;
    ref_table: string | null; ref_same_schema: boolean | null; ref_columns: string[] | null;
    on_delete: string; on_update: string; match: string; deferrable: boolean;
  }>(
    `SELECT con.conname AS name, c.relname AS "table", con.contype::text AS contype, pg_get_constraintdef(con.oid) AS definition,
            (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS columns,
            fc.relname AS ref_table, fc.relnamespace = c.relnamespace AS ref_same_schema,
            (SELECT json_agg(a.attname ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum) AS ref_columns,
            con.confdeltype::text AS on_delete, con.confupdtype::text AS on_update, con.confmatchtype::text AS match,
            con.condeferrable AS deferrable
       FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid LEFT JOIN pg_class fc ON fc.oid = con.confrelid
      WHERE c.relnamespace = ${ns}`,
  );
  const constraintKinds: Record<string, string> = {
    p: 'primary key', f: 'foreign key', u: 'unique constraint', c: 'check constraint', x: 'exclusion constraint', t: 'constraint trigger', n: 'not-null constraint',
  };
  const actions: Record<string, string> = { a: 'NO ACTION', r: 'RESTRICT', c: 'CASCADE', n: 'SET NULL', d: 'SET DEFAULT' };
  const constraints = new Map<string, Constraint>();
  for (const r of constraintRows) {
    // PostgreSQL 18 records NOT NULL as constraints; nullability is compared per column.
    if (r.contype === 'n') continue;
    let definition = r.definition;
    // Keys in the same canonical form as the expectation (pg_get_constraintdef omits defaults and orders clauses its own way).
    if (r.contype === 'p') definition = `PRIMARY KEY (${(r.columns ?? []).map(quoteIdent).join(', ')})`;
    if (r.contype === 'f') {
      const ref = `${r.ref_same_schema ? '' : '<other schema>.'}${quoteIdent(r.ref_table ?? '?')}`;
      definition = describeForeignKey(r.columns ?? [], ref, r.ref_columns ?? [], actions[r.on_delete] ?? r.on_delete, actions[r.on_update] ?? r.on_update);
      if (r.match !== 's') definition += ` MATCH ${r.match === 'f' ? 'FULL' : r.match}`;
    }
    if (r.deferrable) definition += ' DEFERRABLE';
    constraints.set(r.name, { table: r.table, kind: constraintKinds[r.contype] ?? `constraint (contype ${r.contype})`, definition });
  }

  const sequenceRows = await s.query<{ name: string; table: string | null; column: string | null; type: string }>(
    `SELECT s.relname AS name, t.relname AS "table", a.attname AS "column", format_type(ps.seqtypid, NULL) AS type
       FROM pg_class s
       JOIN pg_sequence ps ON ps.seqrelid = s.oid
       LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       LEFT JOIN pg_class t ON t.oid = d.refobjid
       LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE s.relnamespace = ${ns} AND s.relkind = 'S'`,
  );
  const sequences = new Map(sequenceRows.map((r) => [r.name, { table: r.table, column: r.column, type: r.type }]));

  for (const r of await s.query<{ name: string }>(`SELECT p.oid::regprocedure::text AS name FROM pg_proc p WHERE p.pronamespace = ${ns}`)) {
    others.push(`function ${r.name}`);
  }
  for (const r of await s.query<{ name: string; table: string }>(
    `SELECT tg.tgname AS name, c.relname AS "table" FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
      WHERE c.relnamespace = ${ns} AND NOT tg.tgisinternal`,
  )) others.push(`trigger ${quoteIdent(r.name)} on ${quoteIdent(r.table)}`);
  for (const r of await s.query<{ name: string; table: string }>(
    `SELECT c.relname AS "table", 'row level security' AS name FROM pg_class c WHERE c.relnamespace = ${ns} AND c.relrowsecurity
     UNION ALL
     SELECT c.relname, 'policy ' || quote_ident(p.polname) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = ${ns}`,
  )) others.push(`${r.name} on ${quoteIdent(r.table)}`);
  for (const r of await s.query<{ name: string; table: string }>(
    `SELECT r.rulename AS name, c.relname AS "table" FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
      WHERE c.relnamespace = ${ns} AND c.relkind IN ('r', 'p')`,
  )) others.push(`rule ${quoteIdent(r.name)} on ${quoteIdent(r.table)}`);

  return { tables, enums, indexes, constraints, sequences, others };
}

// ---------------------------------------------------------------------------------------------
// The comparison.
// ---------------------------------------------------------------------------------------------

function describeIndex(ix: Index): string {
  const kind = ix.primary ? 'primary key index' : ix.unique ? 'unique index' : 'index';
  const partial = ix.partial ? 'partial ' : '';
  const extra = ix.extra.length ? ` ${ix.extra.join(', ')}` : '';
  return `${partial}${kind} on ${quoteIdent(ix.table)}(${ix.columns.map(quoteIdent).join(', ')})${extra}`;
}

/** Every disagreement as one readable line; empty when schema.prisma and the database agree. */
function compare(expected: Catalogue, actual: Catalogue): string[] {
  const problems: string[] = [];
  const missing = (what: string) => problems.push(`missing from the database: ${what} (declared in schema.prisma)`);
  const extra = (what: string) => problems.push(`not in schema.prisma: ${what} (found in the database)`);
  const differs = (what: string, field: string, exp: unknown, act: unknown) =>
    problems.push(`differs: ${what}: ${field} is ${JSON.stringify(act)} in the database, schema.prisma implies ${JSON.stringify(exp)}`);

  const allowlisted = new Map(SQL_ONLY_INVARIANTS.map((x) => [x.name, x]));
  const knownTable = (t: string) => expected.tables.has(t) && actual.tables.has(t);

  // Enums.
  for (const [name, values] of expected.enums) {
    const act = actual.enums.get(name);
    if (!act) missing(`enum type ${quoteIdent(name)}`);
    else if (JSON.stringify(act) !== JSON.stringify(values)) differs(`enum type ${quoteIdent(name)}`, 'values', values, act);
  }
  for (const name of actual.enums.keys()) if (!expected.enums.has(name)) extra(`enum type ${quoteIdent(name)}`);

  // Tables and columns.
  for (const [table, cols] of expected.tables) {
    const act = actual.tables.get(table);
    if (!act) {
      missing(`table ${quoteIdent(table)}`);
      continue;
    }
    for (const [col, exp] of cols) {
      const a = act.get(col);
      const what = `column ${quoteIdent(table)}.${quoteIdent(col)}`;
      if (!a) {
        missing(what);
        continue;
      }
      if (a.type !== exp.type) differs(what, 'type', exp.type, a.type);
      if (a.notNull !== exp.notNull) differs(what, 'nullability', exp.notNull ? 'NOT NULL' : 'NULL', a.notNull ? 'NOT NULL' : 'NULL');
      if (a.default !== exp.default) differs(what, 'default', exp.default ?? '(none)', a.default ?? '(none)');
    }
    for (const col of act.keys()) if (!cols.has(col)) extra(`column ${quoteIdent(table)}.${quoteIdent(col)}`);
  }
  for (const table of actual.tables.keys()) {
    if (!expected.tables.has(table) && table !== MIGRATION_HISTORY_TABLE) extra(`table ${quoteIdent(table)}`);
  }

  // Indexes (primary key, unique and plain ones).
  for (const [name, exp] of expected.indexes) {
    if (!actual.tables.has(exp.table)) continue; // reported as a missing table
    const act = actual.indexes.get(name);
    if (!act) missing(`${describeIndex(exp)} named ${quoteIdent(name)}`);
    else if (describeIndex(act) !== describeIndex(exp)) differs(`index ${quoteIdent(name)}`, 'definition', describeIndex(exp), describeIndex(act));
  }
  for (const [name, act] of actual.indexes) {
    if (expected.indexes.has(name) || !knownTable(act.table)) continue;
    const allowed = allowlisted.get(name);
    if (allowed?.kind === 'partial unique index' && allowed.table === act.table && act.unique && act.partial) continue;
    extra(`${describeIndex(act)} named ${quoteIdent(name)}`);
  }

  // Constraints (primary keys, foreign keys; CHECK and others only when allowlisted).
  for (const [name, exp] of expected.constraints) {
    if (!actual.tables.has(exp.table)) continue;
    const act = actual.constraints.get(name);
    const what = `${exp.kind} ${quoteIdent(name)} on ${quoteIdent(exp.table)}`;
    if (!act) missing(`${what}: ${exp.definition}`);
    else if (act.table !== exp.table || act.kind !== exp.kind || act.definition !== exp.definition) {
      differs(what, 'definition', `${exp.kind} on ${exp.table}: ${exp.definition}`, `${act.kind} on ${act.table}: ${act.definition}`);
    }
  }
  for (const [name, act] of actual.constraints) {
    if (expected.constraints.has(name) || !knownTable(act.table)) continue;
    const allowed = allowlisted.get(name);
    if (allowed?.kind === act.kind && allowed.table === act.table) continue;
    extra(`${act.kind} ${quoteIdent(name)} on ${quoteIdent(act.table)}: ${act.definition}`);
  }

  // The allowlist itself must not go stale.
  for (const inv of SQL_ONLY_INVARIANTS) {
    const other = otherEntry(inv);
    const ok = other ? actual.others.includes(other) : inv.kind === 'partial unique index'
      ? (() => { const ix = actual.indexes.get(inv.name); return ix?.table === inv.table && ix.unique && ix.partial; })()
      : actual.constraints.get(inv.name)?.kind === inv.kind && actual.constraints.get(inv.name)?.table === inv.table;
    if (!ok) problems.push(`allowlisted SQL-only invariant missing from the database: ${inv.kind} ${quoteIdent(inv.name)} on ${quoteIdent(inv.table)}`);
  }

  // Sequences: only the ones behind autoincrement() columns.
  for (const [name, exp] of expected.sequences) {
    if (!actual.tables.has(exp.table ?? '')) continue;
    const act = actual.sequences.get(name);
    if (!act) missing(`sequence ${quoteIdent(name)} owned by ${exp.table}.${exp.column}`);
    else if (JSON.stringify(act) !== JSON.stringify(exp)) differs(`sequence ${quoteIdent(name)}`, 'owner and type', exp, act);
  }
  for (const [name, act] of actual.sequences) {
    if (expected.sequences.has(name) || act.table === MIGRATION_HISTORY_TABLE) continue;
    if (act.table && !knownTable(act.table)) continue;
    extra(`sequence ${quoteIdent(name)}${act.table ? ` owned by ${act.table}.${act.column}` : ''}`);
  }

  const allowedOthers = new Set(SQL_ONLY_INVARIANTS.map(otherEntry).filter((o): o is string => o !== null));
  for (const other of actual.others) {
    if (other.endsWith(` on ${quoteIdent(MIGRATION_HISTORY_TABLE)}`) || allowedOthers.has(other)) continue;
    extra(other);
  }
  return problems;
}

function report(problems: string[]): string {
  return `prisma/schema.prisma and the migrated database disagree (${problems.length}):\n  - ${problems.join('\n  - ')}`;
}

// ---------------------------------------------------------------------------------------------

describe('prisma/schema.prisma agrees with the database the migrations build', () => {
  let tdb: TestDatabase;
  let expected: Catalogue;
  let actual: Catalogue;

  beforeAll(async () => {
    const schemaText = readFileSync(SCHEMA_PATH, 'utf8');
    expected = expectedCatalogue(getDmmf(schemaText).datamodel, schemaText);
    tdb = await createTestDatabase();
    await migrate(tdb.db);
    actual = await tdb.db.withSession(readCatalogue);
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  it("reads the data model with Prisma's own parser", () => {
    // Guards against a parser that silently returns nothing (every comparison would pass).
    expect([...expected.tables.keys()], 'models parsed from schema.prisma').toEqual(expect.arrayContaining(
      ['Account', 'AdminKey', 'AuditEvent', 'BillableDelta', 'Domain', 'Org', 'Policy', 'ProductAccess', 'RoleAssignment', 'Site', 'Subscription'],
    ));
    expect(expected.enums.get('Product'), 'enum Product parsed from schema.prisma').toEqual(expect.arrayContaining(['jira', 'jsm', 'confluence']));
    expect(expected.tables.get('Account')?.get('createdAt'), 'Account.createdAt').toEqual({ type: 'timestamp(3) with time zone', notNull: true, default: 'CURRENT_TIMESTAMP' });
    expect(expected.tables.get('BillableDelta')?.get('reasons'), 'BillableDelta.reasons').toEqual({ type: 'text[]', notNull: false, default: null });
    expect(expected.indexes.get('Account_orgId_createdAt_id_idx'), '@@index([orgId, createdAt, id]) on Account').toEqual(
      { table: 'Account', columns: ['orgId', 'createdAt', 'id'], unique: false, primary: false, partial: false, extra: [] },
    );
    expect(expected.constraints.get('Account_policyId_policyNonBillable_fkey')?.definition, 'Account.policy relation (composite)').toBe(
      'FOREIGN KEY ("policyId", "policyNonBillable") REFERENCES "Policy"(id, "nonBillable") ON DELETE NO ACTION ON UPDATE CASCADE',
    );
  });

  it('reads the catalogue of the migrated database', () => {
    expect(actual.tables.has(MIGRATION_HISTORY_TABLE), 'the migrator created _prisma_migrations').toBe(true);
    expect(actual.tables.get('Org')?.get('id'), 'Org.id').toEqual({ type: 'uuid', notNull: true, default: null });
    expect(actual.tables.get('AdminKey')?.get('secretHash')?.type, 'AdminKey.secretHash').toBe('character(64)');
    expect(actual.tables.get('Site')?.get('products')?.type, 'Site.products').toBe('enum Product[]');
    expect(actual.sequences.get('BillableDelta_seq_seq'), 'BillableDelta.seq BIGSERIAL').toEqual({ table: 'BillableDelta', column: 'seq', type: 'bigint' });
  });

  it('has no disagreement in either direction (apart from the allowlisted SQL-only invariants)', () => {
    const problems = compare(expected, actual);
    expect(problems, report(problems)).toEqual([]);
  });

  it('reports drift: a database changed behind the schema is caught, item by item', async () => {
    // A scratch copy of the migrations plus one that drifts from schema.prisma in many ways.
    // (If a later migration removes one of the objects touched here, pick another one.)
    const dir = mkdtempSync(join(tmpdir(), 'orgsync-drift-'));
    const drifted = await createTestDatabase();
    try {
      cpSync(defaultMigrationsDir(), dir, { recursive: true });
      mkdirSync(join(dir, '99999999999999_drift'));
      writeFileSync(join(dir, '99999999999999_drift', 'migration.sql'), `
        ALTER TABLE "Domain" ALTER COLUMN "verifiedBy" SET NOT NULL;
        ALTER TABLE "AdminKey" ALTER COLUMN "lastUsedAt" TYPE TIMESTAMPTZ(6);
        ALTER TABLE "AdminKey" ALTER COLUMN "secretHash" TYPE TEXT;
        ALTER TABLE "Policy" ALTER COLUMN "sessionDurationMinutes" SET DEFAULT 60;
        ALTER TABLE "Org" ADD COLUMN "nickname" TEXT;
        ALTER TABLE "Site" DROP COLUMN "enterprise";
        DROP INDEX "Account_policyId_idx";
        CREATE INDEX "Site_name_idx" ON "Site"("name");
        DROP INDEX "Policy_orgId_name_key";
        CREATE INDEX "Policy_orgId_name_key" ON "Policy"("orgId", "name");
        ALTER TABLE "ProductAccess" DROP CONSTRAINT "ProductAccess_accountId_fkey";
        ALTER TABLE "ProductAccess" ADD CONSTRAINT "ProductAccess_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
        ALTER TYPE "Plan" ADD VALUE 'enterprise';
        CREATE TYPE "Ghost" AS ENUM ('boo');
        CREATE TABLE "Scratch" ("id" INTEGER PRIMARY KEY);
        DROP TABLE "AuditEvent";
        ALTER TABLE "Org" ADD CONSTRAINT "Org_name_check" CHECK ("name" <> '');
        DROP INDEX "Domain_verified_once";
      `);
      await migrate(drifted.db, dir);
      const problems = compare(expected, await drifted.db.withSession(readCatalogue));
      expect(problems.sort(), report(problems)).toEqual([
        'allowlisted SQL-only invariant missing from the database: partial unique index "Domain_verified_once" on "Domain"',
        'differs: column "AdminKey"."lastUsedAt": type is "timestamp(6) with time zone" in the database, schema.prisma implies "timestamp(3) with time zone"',
        'differs: column "AdminKey"."secretHash": type is "text" in the database, schema.prisma implies "character(64)"',
        'differs: column "Domain"."verifiedBy": nullability is "NOT NULL" in the database, schema.prisma implies "NULL"',
        'differs: column "Policy"."sessionDurationMinutes": default is "60" in the database, schema.prisma implies "1440"',
        'differs: enum type "Plan": values is ["standard","premium","enterprise"] in the database, schema.prisma implies ["standard","premium"]',
        'differs: foreign key "ProductAccess_accountId_fkey" on "ProductAccess": definition is "foreign key on ProductAccess: FOREIGN KEY (\\"accountId\\") REFERENCES \\"Account\\"(id) ON DELETE RESTRICT ON UPDATE CASCADE" in the database, schema.prisma implies "foreign key on ProductAccess: FOREIGN KEY (\\"accountId\\") REFERENCES \\"Account\\"(id) ON DELETE CASCADE ON UPDATE CASCADE"',
        'differs: index "Policy_orgId_name_key": definition is "index on \\"Policy\\"(\\"orgId\\", name)" in the database, schema.prisma implies "unique index on \\"Policy\\"(\\"orgId\\", name)"',
        'missing from the database: column "Site".enterprise (declared in schema.prisma)',
        'missing from the database: index on "Account"("policyId") named "Account_policyId_idx" (declared in schema.prisma)',
        'missing from the database: table "AuditEvent" (declared in schema.prisma)',
        'not in schema.prisma: check constraint "Org_name_check" on "Org": CHECK ((name <> \'\'::text)) (found in the database)',
        'not in schema.prisma: column "Org".nickname (found in the database)',
        'not in schema.prisma: enum type "Ghost" (found in the database)',
        'not in schema.prisma: index on "Site"(name) named "Site_name_idx" (found in the database)',
        'not in schema.prisma: table "Scratch" (found in the database)',
      ].sort());
    } finally {
      await drifted.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails loudly on schema syntax the comparison does not understand', () => {
    const schemaText = readFileSync(SCHEMA_PATH, 'utf8');
    const variants: [string, string, RegExp][] = [
      ['@@index([domain])', '@@index([domain(sort: Desc)])', /DMMF key "sortOrder"/],
      ['@@index([domain])', '@@index([domain], type: Hash)', /DMMF key "algorithm"/],
      ['secretHash String    @db.Char(64)', 'secretHash String    @db.Inet', /native type @db.Inet/],
      ['org Org @relation(fields: [orgId], references: [id], onDelete: Cascade)\n\n  @@index([orgId])',
        'org Org @relation(fields: [orgId], references: [id], onDelete: Cascade, map: "custom")\n\n  @@index([orgId])', /@relation\(map/],
    ];
    for (const [from, to, error] of variants) {
      expect(schemaText.includes(from), `schema.prisma no longer contains ${JSON.stringify(from)}; update this test`).toBe(true);
      const text = schemaText.replace(from, to);
      expect(() => expectedCatalogue(getDmmf(text).datamodel, text), `schema variant ${to}`).toThrow(error);
    }
    expect(() => getDmmf('model Broken {'), 'a schema Prisma rejects').toThrow(/rejected prisma\/schema.prisma/);
  });
});
