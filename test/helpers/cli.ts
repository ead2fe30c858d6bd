/** The `tether` command line run in-process, as the CLI tests drive it. */
import { main } from '../../src/cli/index.js';

/** Runs `tether <argv>` with `env` as its environment; resolves to its exit code and what it wrote to each stream. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => { out += t; }, err: (t) => { err += t; } }, env);
  return { code, out, err };
}
