import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The service's secrets, derived from one key (SECRET_KEY) with HKDF (RFC 5869) so that the
 * encryption key and the cookie-signing key are independent: encrypts SSO client secrets at
 * rest (AES-256-GCM) and signs cookies (HMAC-SHA-256).
 */
export type SecretBox = {
  encrypt(plaintext: string): string;
  /** Throws when the value was not sealed with this key (e.g. SECRET_KEY changed). */
  decrypt(sealed: string): string;
  sign(value: string): string;
  /** The value when `signed` carries a valid signature, else null. */
  verify(signed: string): string | null;
};

const VERSION = 'v1';
/**
 * GCM's full 128-bit tag and 96-bit IV (NIST SP 800-38D §5.2.1.2). A shorter tag is refused:
 * decipher.setAuthTag accepts 4..16 bytes, and a 4-byte tag can be forged in about 2^32 tries.
 */
const TAG_BYTES = 16;
const IV_BYTES = 12;

export function createSecretBox(secret: string | Buffer): SecretBox {
  const ikm = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', ikm, Buffer.from('orgsync'), Buffer.from(info), 32));
  const encKey = derive('orgsync secret encryption v1');
  const macKey = derive('orgsync cookie signing v1');
  const mac = (v: string) => createHmac('sha256', macKey).update(v).digest('base64url');
  return {
    encrypt(plaintext) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', encKey, iv, { authTagLength: TAG_BYTES });
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
    },
    decrypt(sealed) {
      const [v, iv, tag, ct] = sealed.split('.');
      if (v !== VERSION || !iv || !tag || ct === undefined) throw new Error('not a sealed secret of this service');
      const ivBytes = Buffer.from(iv, 'base64url');
      const tagBytes = Buffer.from(tag, 'base64url');
      if (ivBytes.length !== IV_BYTES || tagBytes.length !== TAG_BYTES) throw new Error('not a sealed secret of this service (IV or tag of the wrong length)');
      const decipher = createDecipheriv('aes-256-gcm', encKey, ivBytes, { authTagLength: TAG_BYTES });
      decipher.setAuthTag(tagBytes);
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
    },
    sign(value) {
      return `${value}.${mac(value)}`;
    },
    verify(signed) {
      const i = signed.lastIndexOf('.');
      if (i <= 0) return null;
      const value = signed.slice(0, i);
      const given = Buffer.from(signed.slice(i + 1));
      const expected = Buffer.from(mac(value));
      return given.length === expected.length && timingSafeEqual(given, expected) ? value : null;
    },
  };
}

export const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

/** A random URL-safe token with `bytes` bytes of entropy. */
export const randomToken = (bytes = 32) => randomBytes(bytes).toString('base64url');
