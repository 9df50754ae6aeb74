import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';


/** Routes register here as they are mounted, from the very schemas that validate them. */
export function createRegistry(): OpenAPIRegistry {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http', scheme: 'bearer', description: 'An org admin key (osk_…) or the operator token.',
  });
  return registry;
}

export function buildDocument(registry: OpenAPIRegistry, serverUrl: string) {
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'orgsync admin API',
      version: '1',
      description: 'Errors are application/problem+json; rule violations answer 409 with a `type` ending in the rule name.',
    },
    servers: [{ url: serverUrl }],
    security: [{ bearer: [] }],
  });
}
