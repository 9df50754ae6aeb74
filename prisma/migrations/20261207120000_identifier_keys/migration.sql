-- Issue 12 §5: userName and email keys are compared after Unicode normalisation and full case
-- folding (src/domain/identity.ts identifierKey, modelled on RFC 8265 §3.3 UsernameCaseMapped):
-- `José` in NFC and NFD, `straße` / `STRASSE` / `strasse` are one name. Stored values stay as sent;
-- only the key columns change: ScimUser."userNameNormalized" (unique per directory),
-- ScimUserEmail."valueNormalized" (filters) and Account."emailNormalized" (unique per org; the
-- local part is keyed, the domain is already lower-case ASCII).
--
-- orgsync_identifier_key is identifierKey in SQL: NFC, lower(), the case foldings lower() does not
-- do (ß ẞ → ss, ς → σ, ſ → s, µ → μ, the Latin ligatures, ŉ → ʼn, ı → i, İ → i̇), NFC. It agrees
-- with the service on every character except fullwidth forms (NFKC-mapped by the service only) and
-- the few letters whose uppercase has no precomposed form (ẖ ẗ ẘ ẙ ẚ, Greek with ypogegrammeni,
-- Armenian ligatures); a row holding one of those gets the service's key at its next write.
CREATE OR REPLACE FUNCTION orgsync_identifier_key(x text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT normalize(
    replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
      lower(replace(normalize(x, NFC), 'İ', 'i̇')),
      'ß', 'ss'), 'ẞ', 'ss'), 'ς', 'σ'), 'ſ', 's'), 'µ', 'μ'), 'ﬀ', 'ff'), 'ﬁ', 'fi'), 'ﬂ', 'fl'), 'ﬃ', 'ffi'), 'ﬄ', 'ffl'),
      'ﬅ', 'st'), 'ﬆ', 'st'), 'ŉ', 'ʼn'), 'ı', 'i'),
    NFC)
$$;

-- Rows that were distinct before and share a key now: the oldest (live before deleted) keeps the
-- key, the others get `<key>#duplicate:<id>` — still stored, still reachable by id, listed by the
-- query in docs/operations.md, and refused by nothing until an admin merges or renames them.
-- Two steps, because unique indexes are checked row by row: every row that changes first takes a
-- placeholder key, then its final one.
CREATE TEMP TABLE "_user_keys" ON COMMIT DROP AS
  SELECT u."id", k.key || CASE WHEN row_number() OVER (PARTITION BY u."directoryId", k.key ORDER BY (u."deletedAt" IS NOT NULL), u."createdAt", u."id") = 1 THEN '' ELSE '#duplicate:' || u."id"::text END AS "key"
  FROM "ScimUser" u CROSS JOIN LATERAL (SELECT orgsync_identifier_key(btrim(u."userName")) AS key) k;
DELETE FROM "_user_keys" t USING "ScimUser" u WHERE u."id" = t."id" AND u."userNameNormalized" = t."key";
UPDATE "ScimUser" u SET "userNameNormalized" = '#migrating:' || u."id"::text FROM "_user_keys" t WHERE u."id" = t."id";
UPDATE "ScimUser" u SET "userNameNormalized" = t."key" FROM "_user_keys" t WHERE u."id" = t."id";

CREATE TEMP TABLE "_account_keys" ON COMMIT DROP AS
  SELECT a."id", k.key || CASE WHEN row_number() OVER (PARTITION BY a."orgId", k.key ORDER BY a."createdAt", a."id") = 1 THEN '' ELSE '#duplicate:' || a."id"::text END AS "key"
  FROM "Account" a CROSS JOIN LATERAL (SELECT orgsync_identifier_key(a."emailNormalized") AS key) k;
DELETE FROM "_account_keys" t USING "Account" a WHERE a."id" = t."id" AND a."emailNormalized" = t."key";
UPDATE "Account" a SET "emailNormalized" = '#migrating:' || a."id"::text FROM "_account_keys" t WHERE a."id" = t."id";
UPDATE "Account" a SET "emailNormalized" = t."key" FROM "_account_keys" t WHERE a."id" = t."id";

UPDATE "ScimUserEmail" SET "valueNormalized" = orgsync_identifier_key("value") WHERE "valueNormalized" IS DISTINCT FROM orgsync_identifier_key("value");

-- Only the migration needs it (the service computes keys itself); test/store/identifier-key.test.ts
-- runs it from this file to check it agrees with identifierKey.
DROP FUNCTION orgsync_identifier_key(text);
