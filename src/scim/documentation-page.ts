import { html, page } from '../http/html.js';
import { FILTER_LIMITS } from './filter.js';
import { DEFAULT_COUNT } from './query.js';

/**
 * The page ServiceProviderConfig's `documentationUri` names (RFC 7643 §5: "an HTTP-addressable
 * URL pointing to the service provider's human-consumable help documentation"); it answered 404
 * (issue 13, defect 7). Public: it says nothing a directory's own discovery documents do not.
 */
export function scimDocumentationPage(publicUrl: string, bodyLimitBytes: number): string {
  const base = `${publicUrl}/scim/v2/{directoryId}`;
  return page('SCIM 2.0 provisioning', html`
<p>orgsync receives users and groups from identity providers over SCIM 2.0 (RFC 7643, RFC 7644).
Each directory of an organization has its own base URL and bearer token; an admin creates them with
<code>POST /api/v1/orgs/{orgId}/directories</code> and the token is shown once.</p>
<table>
<tr><th>Base URL</th><td><code>${base}</code></td></tr>
<tr><th>Authentication</th><td><code>Authorization: Bearer &lt;directory token&gt;</code> on every request, discovery included</td></tr>
<tr><th>Resources</th><td><code>/Users</code> (with the enterprise extension) and <code>/Groups</code>: POST, GET, PUT, PATCH, DELETE, <code>POST /.search</code></td></tr>
<tr><th>Discovery</th><td><code>/ServiceProviderConfig</code>, <code>/ResourceTypes</code>, <code>/Schemas</code></td></tr>
<tr><th>Filters</th><td>every operator, <code>and</code>/<code>or</code>/<code>not</code>, value paths; at most ${FILTER_LIMITS.maxLength} characters and ${FILTER_LIMITS.maxOperators} operators</td></tr>
<tr><th>Paging</th><td><code>startIndex</code>, <code>count</code> (default ${DEFAULT_COUNT}, at most ${FILTER_LIMITS.maxResults})</td></tr>
<tr><th>Bodies</th><td><code>application/scim+json</code> or <code>application/json</code>, at most ${bodyLimitBytes} bytes</td></tr>
<tr><th>Not supported</th><td>bulk, changePassword (passwords sent by the IdP are never stored)</td></tr>
</table>
<h2>Behaviour identity providers rely on</h2>
<ul>
<li>A PUT or PATCH without <code>If-Match</code> never answers 412; with a stale <code>If-Match</code> it does.</li>
<li>Attributes the schema does not define are ignored by POST, PUT and PATCH alike, and listed once as a sync issue of the directory for its admins.</li>
<li>Canonical values (<code>emails[].type</code> and the like) are suggestions: other values are kept.</li>
<li>PATCH answers 200 with the resource, or 204 for Entra ID directories and for <code>Prefer: return=minimal</code>; with <code>attributes</code> or <code>excludedAttributes</code> always 200.</li>
<li>Errors carry a SCIM error body (RFC 7644 §3.12) whose <code>detail</code> names the attribute and what is wrong.</li>
</ul>`);
}
