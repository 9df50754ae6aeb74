import { InvalidInput } from '../domain/errors.js';

/** Keyset paging on (createdAt, id): stable under concurrent inserts, one index range scan per page. */
export type PageRequest = { cursor?: string | undefined; limit: number };
export type Page<T> = { items: T[]; next: string | null };
type Key = { createdAt: Date; id: string };

export function encodeCursor(key: Key): string {
  return Buffer.from(JSON.stringify([key.createdAt.toISOString(), key.id])).toString('base64url');
}

export function decodeCursor(cursor: string): Key {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(at);
    if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/.test(id) || Number.isNaN(createdAt.getTime())) throw new Error('bad');
    return { createdAt, id };
  } catch {
    throw new InvalidInput('invalid cursor', [{ path: 'cursor', message: 'not a cursor this API returned; start again without it' }]);
  }
}

/** The Prisma `where` fragment for rows after (asc) or before (desc) the cursor. */
export function afterCursor(cursor: string | undefined, direction: 'asc' | 'desc' = 'asc') {
  if (!cursor) return {};
  const k = decodeCursor(cursor);
  const cmp = direction === 'asc' ? 'gt' : 'lt';
  return { OR: [{ createdAt: { [cmp]: k.createdAt } }, { createdAt: k.createdAt, id: { [cmp]: k.id } }] };
}

export function orderBy(direction: 'asc' | 'desc' = 'asc') {
  return [{ createdAt: direction }, { id: direction }] as const;
}

/** Fetches limit+1 rows; the extra one only tells whether there is a next page. */
export function toPage<T extends Key, U>(rows: T[], limit: number, map: (row: T) => U): Page<U> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items: items.map(map), next: rows.length > limit && last ? encodeCursor(last) : null };
}
