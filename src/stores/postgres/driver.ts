/**
 * pg, loaded when a store makes its own pool rather than at import, so importing tether/postgres never
 * fails without pg installed; and a look at a database that creates nothing in it.
 * @module
 */
import { createRequire } from 'node:module';
import { OptionsInvalidError } from '../../core/errors.js';
import { schemaNames } from './schema.js';

export function loadPg(): typeof import('pg') {
  try {
    return createRequire(import.meta.url)('pg') as typeof import('pg');
  } catch (err) {
    throw new OptionsInvalidError(`PostgresStore needs the pg package (npm install pg), or pass options.pool: ${(err as Error).message}`);
  }
}

/** Bound on connecting and on the query of holdsStore. */
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Whether the database holds a PostgresStore's table and its migrations record, read without creating
 * anything: a store's first call migrates, which would give any database it is pointed at (another app's,
 * or a mistyped tableName) the store's tables. Null when the server cannot be asked (down, refused,
 * pg missing), which opening the store then reports.
 */
export async function holdsStore(connectionString: string, tableName: string, schema: string | undefined): Promise<boolean | null> {
  const names = schemaNames(tableName, schema);
  let client: import('pg').Client | undefined;
  try {
    client = new (loadPg().Client)({ connectionString, connectionTimeoutMillis: PROBE_TIMEOUT_MS, query_timeout: PROBE_TIMEOUT_MS, application_name: 'tether' });
    await client.connect();
    const { rows } = await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS present', [names.table, names.migrations]);
    return rows[0]?.present ?? null;
  } catch {
    return null;
  } finally {
    await client?.end().catch(() => {});
  }
}
