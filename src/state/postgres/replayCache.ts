import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ReplayCache } from '../../auth/dpop';
import { stateError } from '../unavailable';

/** How often expired proofs are deleted, at most. */
const SWEEP_INTERVAL_MS = 60_000;

/**
 * The DPoP replay cache shared by the replicas (RFC 9449 §11.1): a proof id is recorded with its expiry in
 * one statement that succeeds only if no unexpired record of it exists, so a proof replayed to another
 * replica — even at the same moment — is refused. The table is UNLOGGED: after a crash of PostgreSQL it
 * is empty, which lets no old proof in, since a proof older than its expiry is refused by its `iat`.
 */
export class PgReplayCache implements ReplayCache {
  private nextSweep = 0;

  constructor(private readonly pool: pg.Pool) {}

  async remember(key: string, expiresAtMs: number): Promise<boolean> {
    try {
      return await this.insert(key, expiresAtMs);
    } catch (err) {
      throw stateError(err);
    }
  }

  private async insert(key: string, expiresAtMs: number): Promise<boolean> {
    const now = Date.now();
    if (now >= this.nextSweep) {
      this.nextSweep = now + SWEEP_INTERVAL_MS;
      await this.pool.query('DELETE FROM dpop_proof WHERE expires_at <= $1', [now]);
    }
    const { rowCount } = await this.pool.query(
      `INSERT INTO dpop_proof (proof_hash, expires_at) VALUES ($1, $2)
       ON CONFLICT (proof_hash) DO UPDATE SET expires_at = excluded.expires_at
       WHERE dpop_proof.expires_at <= $3`,
      [createHash('sha256').update(key, 'utf8').digest('base64url'), expiresAtMs, now],
    );
    return rowCount === 1;
  }
}
