import SCIMMY from 'scimmy';
import { FILTER_LIMITS } from './filter.js';
import { declareResources } from './resources.js';
import { withSuggestedValues } from './canonical-values.js';

const PLACEHOLDER = 'https://scim.invalid/__base__';

/**
 * /ServiceProviderConfig, /ResourceTypes and /Schemas (RFC 7644 §4), built by scimmy from the
 * declared resources, saying only what we support. Built once; each directory's base URL is
 * substituted into the locations per request.
 */
export function createDiscovery(opts: { bodyLimitBytes: number; documentationUri: string }) {
  declareResources();
  SCIMMY.Config.set({
    documentationUri: opts.documentationUri,
    patch: true,
    filter: { supported: true, maxResults: FILTER_LIMITS.maxResults },
    sort: true,
    etag: true,
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: opts.bodyLimitBytes },
    changePassword: false,
    authenticationSchemes: [{
      type: 'oauthbearertoken', name: 'Bearer token', primary: true,
      description: 'The directory token from POST /api/v1/orgs/{orgId}/directories, as Authorization: Bearer <token>.',
    }],
  });
  for (const r of [SCIMMY.Resources.ServiceProviderConfig, SCIMMY.Resources.ResourceType, SCIMMY.Resources.Schema, SCIMMY.Resources.User, SCIMMY.Resources.Group]) {
    r.basepath(PLACEHOLDER);
  }
  const cache = new Map<string, string>();
  async function doc(key: string, build: () => Promise<unknown>) {
    let text = cache.get(key);
    if (!text) cache.set(key, (text = JSON.stringify(await build())));
    return text;
  }
  const withBase = (text: string, base: string) => JSON.parse(text.replaceAll(PLACEHOLDER, base)) as unknown;
  // scimmy's ListResponse says itemsPerPage 20 whatever it holds; RFC 7644 §3.4.2: the number returned (defect 7).
  const counted = (doc: unknown) => {
    const list = doc as { Resources?: unknown[]; itemsPerPage?: number };
    if (Array.isArray(list?.Resources)) list.itemsPerPage = list.Resources.length;
    return doc;
  };

  const limitsNote = `Filters: at most ${FILTER_LIMITS.maxLength} characters and ${FILTER_LIMITS.maxOperators} operators; count is capped at ${FILTER_LIMITS.maxResults}.`;
  return {
    async serviceProviderConfig(base: string) {
      const spc = withBase(await doc('spc', () => new SCIMMY.Resources.ServiceProviderConfig().read()), base) as Record<string, unknown>;
      spc.documentationUri = `${opts.documentationUri}#${encodeURIComponent(limitsNote)}`;
      return spc;
    },
    async resourceTypes(base: string, name?: string) {
      return withBase(await doc(`rt:${name ?? ''}`, async () => counted(JSON.parse(JSON.stringify(await new SCIMMY.Resources.ResourceType(name).read())))), base);
    },
    async schemas(base: string, id?: string) {
      return withBase(await doc(`sc:${id ?? ''}`, async () => counted(withSuggestedValues(JSON.parse(JSON.stringify(await new SCIMMY.Resources.Schema(id).read()))))), base);
    },
  };
}
