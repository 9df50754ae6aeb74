import { readFileSync } from 'node:fs';

/** `--help` for a bench script: prints the script's leading doc comment, then exits. */
export function printHeaderHelpAndExit(scriptUrl: string): never {
  const head = readFileSync(new URL(scriptUrl), 'utf8').split('*/')[0]!;
  process.stdout.write(`${head.replace(/^\/\*\*\n?| ?\* ?/gm, '')}\n`);
  process.exit(0);
}
