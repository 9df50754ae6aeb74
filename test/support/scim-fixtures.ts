import { readdirSync, readFileSync } from 'node:fs';

type Obj = Record<string, unknown>;
/** A recorded IdP request under fixtures/scim/{okta,entra}/: what was sent, and the states around it. */
export type ScimFixture = {
  file: string; description: string; method: 'POST' | 'PUT' | 'PATCH'; resource: 'Users' | 'Groups'; request: unknown; before?: Obj; expect: Obj;
};

/** Every recorded request, Okta's then Entra's, in file-name order. */
export function scimFixtures(): ScimFixture[] {
  const out: ScimFixture[] = [];
  for (const idp of ['okta', 'entra']) {
    const dir = new URL(`../../fixtures/scim/${idp}/`, import.meta.url);
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
      out.push({ file: `${idp}/${name}`, ...(JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as Omit<ScimFixture, 'file'>) });
    }
  }
  return out;
}
