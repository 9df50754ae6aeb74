import type { SecretBox } from '../services/secret-box.js';

/**
 * The billing webhook's signing secret at rest (issue 12 §5: it was stored in plaintext). It is
 * sealed with the service's secret box (AES-256-GCM under a key derived from SECRET_KEY), like
 * OIDC client secrets. Rows written before migration 20261207110000 hold the plaintext secret
 * (`whsec_…`) until the post-migration repair seals them (src/services/migration-repairs.ts);
 * reads accept both, so deliveries keep working in between. A sealed value never starts with
 * `whsec_` (it starts with the box's version, `v1.`).
 */
const PLAINTEXT_PREFIX = 'whsec_';

export const sealWebhookSecret = (box: SecretBox, secret: string): string => box.encrypt(secret);

export const isPlaintextWebhookSecret = (stored: string): boolean => stored.startsWith(PLAINTEXT_PREFIX);

/** The secret from its stored form; throws when it was sealed under another SECRET_KEY. */
export function openWebhookSecret(box: SecretBox, stored: string): string {
  return isPlaintextWebhookSecret(stored) ? stored : box.decrypt(stored);
}
