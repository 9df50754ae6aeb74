import type { Database } from '../store/database.js';

/**
 * What unfiltered SCIM lists of a directory need and can reuse: the number of live users, for
 * `totalResults`, and the keys at every ANCHOR_STEP-th position of the default order, so that a
 * deep page seeks to its anchor instead of skipping up to the whole directory with OFFSET.
 *
 * The number of live users of a directory, for `totalResults` of unfiltered SCIM lists
 * (RFC 7644 §3.4.2: the total of the query, which an IdP's import pages through). Counting 100k
 * rows costs PostgreSQL ≈ 7 ms per list request — most of a page's cost — while the number
 * only changes when a user is created, revived or deleted, and all of those go through
 * scim-user-service, which calls invalidate() after its transaction.
 *
 * So within one process the cached total is exact: a count is kept only if no invalidation of
 * its directory happened between the start of the COUNT and its end (the epoch check), and a
 * write invalidates after it committed. A write through another replica is seen here within
 * TTL_MS — the same order of inconsistency that OFFSET paging already has while users are
 * pushed during an import (a user created between two page requests shifts the pages).
 */
export const SCIM_TOTAL_TTL_MS = 2_000;
const MAX_ENTRIES = 10_000;

/** The (createdAt, id) key of the live user at a position of the default order. */
export type ListAnchor = { createdAt: Date; id: string };
/** Anchors are kept every ANCHOR_STEP positions: a page seeks to the one before it and skips less than this. */
export const ANCHOR_STEP = 1000;
type Entry = { total: number | null; anchors: Map<number, ListAnchor | null>; anchorsComplete: boolean; epoch: number; at: number };
/** `generation` is bumped when the epochs map is dropped (bounded memory), so no epoch is ever reused. */
type State = { generation: number; epochs: Map<string, number>; entries: Map<string, Entry>; lastWrite: Map<string, number> };
export type CountToken = { generation: number; epoch: number; at: number };
const states = new WeakMap<Database, State>();

function stateOf(db: Database): State {
  let s = states.get(db);
  if (!s) states.set(db, (s = { generation: 0, epochs: new Map(), entries: new Map(), lastWrite: new Map() }));
  return s;
}

function live(db: Database, directoryId: string): Entry | null {
  const s = stateOf(db);
  const e = s.entries.get(directoryId);
  if (!e || e.epoch !== (s.epochs.get(directoryId) ?? 0) || performance.now() - e.at > SCIM_TOTAL_TTL_MS) return null;
  return e;
}

/** The entry a value read since `token` joins: null when a write of the directory came in between. */
function entryFor(db: Database, directoryId: string, token: CountToken): Entry | null {
  const s = stateOf(db);
  if (s.generation !== token.generation || (s.epochs.get(directoryId) ?? 0) !== token.epoch) return null;
  let e = live(db, directoryId);
  if (!e) {
    if (s.entries.size >= MAX_ENTRIES) s.entries.clear();
    // Its age counts from the oldest read in it, so nothing in it outlives the TTL.
    s.entries.set(directoryId, (e = { total: null, anchors: new Map(), anchorsComplete: false, epoch: token.epoch, at: token.at }));
  } else if (token.at < e.at) {
    e.at = token.at;
  }
  return e;
}

export const scimTotals = {
  /** The cached live-user total of a directory, or null. */
  get(db: Database, directoryId: string): number | null {
    return live(db, directoryId)?.total ?? null;
  },
  /**
   * The cached anchor at `position` (a multiple of ANCHOR_STEP): the key of the live user there,
   * null when the directory has no user there, undefined when not cached.
   */
  anchor(db: Database, directoryId: string, position: number): ListAnchor | null | undefined {
    const e = live(db, directoryId);
    if (!e) return undefined;
    return e.anchors.get(position) ?? (e.anchorsComplete ? null : undefined);
  },
  /**
   * True when the directory was written through this process within the TTL: building its
   * anchors (one scan of all its users) would likely be thrown away by the next write, so its
   * lists use a plain OFFSET meanwhile.
   */
  writtenRecently(db: Database, directoryId: string): boolean {
    const at = stateOf(db).lastWrite.get(directoryId);
    return at !== undefined && performance.now() - at < SCIM_TOTAL_TTL_MS;
  },
  /** Keeps the total and every anchor, read in one statement since `token` was taken. */
  setIndex(db: Database, directoryId: string, total: number, anchors: { position: number; key: ListAnchor }[], token: CountToken): void {
    const e = entryFor(db, directoryId, token);
    if (!e) return;
    e.total = total;
    e.anchors = new Map(anchors.map((a) => [a.position, a.key]));
    e.anchorsComplete = true;
  },
  /** Taken before counting; pass it to set(). */
  token(db: Database, directoryId: string): CountToken {
    const s = stateOf(db);
    return { generation: s.generation, epoch: s.epochs.get(directoryId) ?? 0, at: performance.now() };
  },
  /** Keeps a total counted since `token` was taken, unless the directory was written meanwhile. */
  set(db: Database, directoryId: string, total: number, token: CountToken): void {
    const e = entryFor(db, directoryId, token);
    if (e) e.total = total;
  },
  /** Keeps an anchor read since `token` was taken, unless the directory was written meanwhile. */

  /** After a write that may have changed the directory's live users (committed or not). */
  invalidate(db: Database, directoryId: string): void {
    const s = stateOf(db);
    s.epochs.set(directoryId, (s.epochs.get(directoryId) ?? 0) + 1);
    s.entries.delete(directoryId);
    s.lastWrite.set(directoryId, performance.now());
    if (s.epochs.size > MAX_ENTRIES) {
      s.generation++;
      s.epochs.clear();
      s.entries.clear();
      s.lastWrite.clear();
    }
  },
};
