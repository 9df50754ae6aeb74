import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';

// Adds .openapi() to zod schemas; imported by every schema module so it runs first.
extendZodWithOpenApi(z);

export { z };
