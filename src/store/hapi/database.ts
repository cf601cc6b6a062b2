import { Pool } from 'pg';
import { errors } from '../../fhir/outcomes';

/**
 * The façade's direct line to HAPI's PostgreSQL database (HAPI_DATABASE_URL), for what HAPI's REST API
 * cannot do and an erasure needs (DESIGN §3.2, §7):
 * - an independent check of what is left, by reading every stored version's text (`hfj_res_ver`);
 * - dropping HAPI's cached searches that name an erased resource or the person (`hfj_search` keeps the
 *   query string of every search, e.g. `?_id=<Patient id>`, until its own clean-up hours later);
 * - `VACUUM FULL` of the tables an erasure touched: `$expunge` only marks rows dead, and PostgreSQL
 *   keeps their bytes in the table and index files until the table is rewritten.
 * HAPI 8 stores every version's JSON inline in `hfj_res_ver.res_text_vc` (the large-object column is no
 * longer written), so a text scan there sees every stored version. Read-only towards HAPI's resources:
 * nothing here writes a resource.
 */
export class HapiDatabase {
  private readonly pool: Pool;

  constructor(url: string) {
    this.pool = new Pool({ connectionString: url, max: 2, application_name: 'norpain-erasure' });
    // An idle client losing its connection must not take the process down; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  /**
   * Stored versions (of any resource, current or history) whose JSON holds one of `texts`, plus
   * resources whose id is one of them (HAPI keeps the id outside the JSON), plus conditional-create
   * URLs that name one of them.
   */
  async traces(texts: readonly string[]): Promise<number> {
    const { rows } = await this.pool.query<{ n: string }>(
      `SELECT (SELECT COUNT(*) FROM hfj_res_ver v
                WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) t WHERE strpos(v.res_text_vc, t) > 0))
            + (SELECT COUNT(*) FROM hfj_resource r WHERE r.fhir_id = ANY($1::text[]))
            + (SELECT COUNT(*) FROM hfj_res_search_url u
                WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) t WHERE strpos(u.res_search_url, t) > 0)) AS n`,
      [texts],
    );
    return Number(rows[0].n);
  }

  /** Removes HAPI's cached searches whose query names one of `texts` (ids of erased resources, pseudonym). */
  async forgetSearches(texts: readonly string[]): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ pid: string }>(
        `SELECT pid FROM hfj_search s
          WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) t
                         WHERE strpos(s.search_query_string_vc, t) > 0
                            OR position(convert_to(t, 'UTF8') IN s.search_param_map_bin) > 0)`,
        [texts],
      );
      const pids = rows.map((r) => r.pid);
      if (pids.length > 0) {
        await client.query('DELETE FROM hfj_search_result WHERE search_pid = ANY($1::bigint[])', [pids]);
        await client.query('DELETE FROM hfj_search_include WHERE search_pid = ANY($1::bigint[])', [pids]);
        await client.query('DELETE FROM hfj_search WHERE pid = ANY($1::bigint[])', [pids]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * VACUUM FULL of every table an erasure changes, with its TOAST table and indexes: each is rewritten
   * into new files and the old files are deleted. A plain VACUUM only marks a dead row's space free and
   * leaves its bytes in the file until something overwrites them (measured: the pseudonym stayed in
   * hfj_resource, hfj_res_ver, hfj_spidx_* and their indexes), so it does not erase. The price is an
   * exclusive lock on each table while it is rewritten; see docs/hapi.md.
   *
   * A dead row that a transaction still open elsewhere may see (HAPI's scheduled jobs open one every few
   * seconds) is copied into the new file, not dropped: PostgreSQL says so for each table ("N dead row
   * versions cannot be removed yet"). The vacuum is then run again, a little later each time, and if
   * such rows outlive every try, the erasure is not complete: 503, and the background recovery erases
   * again (src/consent/reservation.ts).
   */
  async vacuum(): Promise<void> {
    const client = await this.pool.connect();
    let kept = 0;
    const count = (notice: { detail?: string }) => {
      const held = /(\d+) dead row versions cannot be removed yet/.exec(notice.detail ?? '');
      kept += held === null ? 0 : Number(held[1]);
    };
    client.on('notice', count);
    try {
      for (let attempt = 1; ; attempt++) {
        kept = 0;
        await client.query(`VACUUM (FULL, VERBOSE) ${ERASED_TABLES.join(', ')}`);
        if (kept === 0) return;
        if (attempt === VACUUM_ATTEMPTS) {
          throw errors.serviceUnavailable(
            "The erasure is recorded but not yet complete: HAPI's database still holds rows an open transaction may see. It completes by itself; the reservation stands.",
            30,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    } finally {
      client.off('notice', count);
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** How many times an erasure's VACUUM FULL runs while rows it must drop are still visible elsewhere. */
const VACUUM_ATTEMPTS = 8;

/** HAPI 8.8's tables that hold a resource, its versions, its index rows or a search about it. */
const ERASED_TABLES = [
  'hfj_resource',
  'hfj_res_ver',
  'hfj_res_ver_prov',
  'hfj_res_tag',
  'hfj_history_tag',
  'hfj_res_link',
  'hfj_res_param_present',
  'hfj_res_search_url',
  'hfj_idx_cmp_string_uniq',
  'hfj_idx_cmb_tok_nu',
  'hfj_spidx_coords',
  'hfj_spidx_date',
  'hfj_spidx_number',
  'hfj_spidx_quantity',
  'hfj_spidx_quantity_nrml',
  'hfj_spidx_string',
  'hfj_spidx_token',
  'hfj_spidx_uri',
  'hfj_resource_modified',
  'hfj_search',
  'hfj_search_result',
  'hfj_search_include',
] as const;
