/**
 * XSD validation of inbound SAML messages against the SAML 2.0 protocol and assertion schemas
 * (with xmldsig and xenc), on one libxml2-wasm `XsdValidator` built once per process.
 *
 * Why not the packaged validators: `@authenio/samlify-xmllint-wasm` re-instantiates the xmllint
 * wasm module (in a worker) for every call (~200 ms each), and `@authenio/samlify-node-xmllint`
 * leaks listeners. Here the schemas are parsed once, their `xs:import`s are served from memory by
 * an input provider that answers only for our own `orgsync-saml-schemas:///` URLs, and each call
 * parses the message, validates it and disposes the document.
 *
 * Fail closed: any error (schema not built, message not well-formed, libxml2 failure) is a refusal.
 * The validator is also registered with samlify (`setSchemaValidator`) when this module loads, so
 * every samlify flow in the process uses it.
 */
import { readFileSync } from 'node:fs';
import {
  ParseOption,
  XmlDocument,
  XsdValidator,
  xmlRegisterInputProvider,
  openBuffer,
  readBuffer,
  closeBuffer,
  type XmlInputProvider,
} from 'libxml2-wasm';
import samlify from 'samlify';

const SCHEMA_URL_PREFIX = 'orgsync-saml-schemas:///';
const SCHEMA_FILES = [
  'saml-schema-protocol-2.0.xsd',
  'saml-schema-assertion-2.0.xsd',
  'xmldsig-core-schema.xsd',
  'xenc-schema.xsd',
] as const;
const ROOT_SCHEMA = 'saml-schema-protocol-2.0.xsd';

/** Options for parsing untrusted messages: no network, no external entities, no entity expansion. */
const MESSAGE_PARSE_OPTIONS =
  ParseOption.XML_PARSE_NONET | ParseOption.XML_PARSE_NO_XXE | ParseOption.XML_PARSE_NOERROR | ParseOption.XML_PARSE_NOWARNING;

export class SamlSchemaError extends Error {
  constructor(message: string, readonly details: readonly string[] = []) {
    super(message);
    this.name = 'SamlSchemaError';
  }
}

export type SchemaResult = { valid: true } | { valid: false; errors: string[] };

let validator: XsdValidator | null = null;
let buildError: Error | null = null;
let providerRegistered = false;

function loadSchemaFiles(): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const name of SCHEMA_FILES) {
    files.set(SCHEMA_URL_PREFIX + name, readFileSync(new URL(`./schemas/${name}`, import.meta.url)));
  }
  return files;
}

/**
 * Serves our schema files, and nothing else, to libxml2 (the `xs:import schemaLocation`s of
 * the root schema resolve against its `orgsync-saml-schemas:///` base URL).
 */
function schemaInputProvider(files: Map<string, Uint8Array>): XmlInputProvider {
  return {
    match: (filename) => files.has(filename),
    open: (filename) => {
      const buf = files.get(filename);
      return buf ? openBuffer(buf) : undefined;
    },
    read: (fd, buffer) => readBuffer(fd, buffer),
    close: (fd) => {
      closeBuffer(fd);
      return true;
    },
  };
}

function build(): XsdValidator {
  const files = loadSchemaFiles();
  if (!providerRegistered) {
    if (!xmlRegisterInputProvider(schemaInputProvider(files))) throw new Error('could not register the SAML schema input provider');
    providerRegistered = true;
  }
  const root = files.get(SCHEMA_URL_PREFIX + ROOT_SCHEMA)!;
  // Our own trusted files: the internal DTD subsets of the xmldsig/xenc schemas are read,
  // the external DTD they name is not (no DTDLOAD).
  const schemaDoc = XmlDocument.fromBuffer(root, { url: SCHEMA_URL_PREFIX + ROOT_SCHEMA, option: ParseOption.XML_PARSE_NONET });
  try {
    return XsdValidator.fromDoc(schemaDoc);
  } finally {
    schemaDoc.dispose();
  }
}

function getValidator(): XsdValidator {
  if (validator) return validator;
  if (buildError) throw buildError;
  try {
    validator = build();
    return validator;
  } catch (err) {
    buildError = new Error(`SAML schema validator could not be built: ${(err as Error).message}`, { cause: err });
    throw buildError;
  }
}

function messagesOf(err: unknown): string[] {
  const details = (err as { details?: Array<{ message?: string; line?: number }> }).details;
  if (Array.isArray(details) && details.length > 0) {
    return details.slice(0, 10).map((d) => `${d.line ? `line ${d.line}: ` : ''}${String(d.message ?? '').trim()}`);
  }
  return [String((err as Error)?.message ?? err).trim()];
}

/**
 * Validates one SAML message (UTF-8 bytes or a string). Never throws: a message is valid only
 * when libxml2 parsed it and the schema validator accepted it.
 */
export function validateSamlSchema(xml: string | Uint8Array): SchemaResult {
  let v: XsdValidator;
  try {
    v = getValidator();
  } catch (err) {
    return { valid: false, errors: [(err as Error).message] };
  }
  const bytes = typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml;
  // Belt and braces: the verifier refuses these before parsing; samlify's other flows land here too.
  if (/<!(DOCTYPE|ENTITY)/i.test(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'))) {
    return { valid: false, errors: ['DOCTYPE and ENTITY declarations are not allowed'] };
  }
  let doc: XmlDocument;
  try {
    doc = XmlDocument.fromBuffer(bytes, { option: MESSAGE_PARSE_OPTIONS, encoding: 'utf-8' });
  } catch (err) {
    return { valid: false, errors: ['not well-formed XML', ...messagesOf(err)] };
  }
  try {
    v.validate(doc);
    return { valid: true };
  } catch (err) {
    return { valid: false, errors: messagesOf(err) };
  } finally {
    doc.dispose();
  }
}

/** samlify's validator contract: resolve when valid, reject (fail closed) otherwise. */
export async function validate(xml: string): Promise<true> {
  const result = validateSamlSchema(xml);
  if (result.valid) return true;
  throw new SamlSchemaError(`ERR_SCHEMA_INVALID: ${result.errors[0] ?? 'invalid'}`, result.errors);
}

const SELF_TEST_VALID =
  '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ' +
  'ID="_selftest" Version="2.0" IssueInstant="2024-01-01T00:00:00Z"><saml:Issuer>x</saml:Issuer>' +
  '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>' +
  '<saml:Assertion ID="_a" Version="2.0" IssueInstant="2024-01-01T00:00:00Z"><saml:Issuer>x</saml:Issuer></saml:Assertion></samlp:Response>';
// A ds:Signature without SignedInfo: only an xmldsig schema that really was imported rejects it.
const SELF_TEST_INVALID = SELF_TEST_VALID.replace(
  '<saml:Issuer>x</saml:Issuer></saml:Assertion>',
  '<saml:Issuer>x</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignatureValue>AA==</ds:SignatureValue></ds:Signature></saml:Assertion>',
);

/**
 * Builds the validator (reads and compiles the schemas) and checks that the imports really
 * loaded. Call once at start-up; throws when the validator is unusable.
 */
export async function warmSamlValidator(): Promise<void> {
  getValidator();
  const ok = validateSamlSchema(SELF_TEST_VALID);
  if (!ok.valid) throw new Error(`SAML schema validator self-test failed (valid message refused): ${ok.errors.join('; ')}`);
  if (validateSamlSchema(SELF_TEST_INVALID).valid) {
    throw new Error('SAML schema validator self-test failed: the xmldsig schema was not imported');
  }
}

samlify.setSchemaValidator({ validate });
