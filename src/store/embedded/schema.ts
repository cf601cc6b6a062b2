import type Database from 'better-sqlite3';
import { storedReferences } from '../storedReferences';

/**
 * The embedded store's tables.
 *
 * `resource` holds one row per logical resource (its current version); `resource_version` holds every
 * version's JSON (the current one included), so history and vread read from one place. The `idx_*`
 * tables index the *current, non-deleted* version only, keyed by `resource.res`, so a search is a set
 * of `res IN (SELECT res FROM idx_… WHERE …)` conditions.
 *
 * `stored_reference` is the reference index erasure works from (DESIGN §3.2): every literal reference
 * of every version, wherever it stands in the resource (not only behind search parameters; extensions and
 * contained resources included), with the version that holds it. It is written in the same transaction
 * as the version, so it cannot miss one; it outlives the version only until an erasure removes both.
 */
const SCHEMA_VERSION = 4;

const DDL = `
CREATE TABLE IF NOT EXISTS resource (
  res INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated TEXT NOT NULL,
  lu_ms INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  UNIQUE (type, id)
);
CREATE INDEX IF NOT EXISTS resource_type_lu ON resource (type, deleted, lu_ms);
-- A type's current resources in storage order (a search without index filters, and its count).
CREATE INDEX IF NOT EXISTS resource_current ON resource (type) WHERE deleted = 0;

CREATE TABLE IF NOT EXISTS resource_version (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated TEXT NOT NULL,
  lu_ms INTEGER NOT NULL,
  method TEXT NOT NULL,
  content TEXT,
  UNIQUE (type, id, version)
);
CREATE INDEX IF NOT EXISTS resource_version_type_seq ON resource_version (type, seq);

CREATE TABLE IF NOT EXISTS idx_token (
  res INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
  system TEXT, code TEXT
);
CREATE INDEX IF NOT EXISTS idx_token_search ON idx_token (rtype, param, code, system, res);
CREATE INDEX IF NOT EXISTS idx_token_res ON idx_token (res, param, code, system);

CREATE TABLE IF NOT EXISTS idx_string (
  res INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
  norm TEXT NOT NULL, raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_string_search ON idx_string (rtype, param, norm, res);
CREATE INDEX IF NOT EXISTS idx_string_res ON idx_string (res, param, norm, raw);

CREATE TABLE IF NOT EXISTS idx_reference (
  res INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
  target_type TEXT, target_id TEXT, ref TEXT, id_system TEXT, id_value TEXT
);
CREATE INDEX IF NOT EXISTS idx_reference_target ON idx_reference (target_id, target_type);
CREATE INDEX IF NOT EXISTS idx_reference_search ON idx_reference (rtype, param, target_type, target_id, res);
CREATE INDEX IF NOT EXISTS idx_reference_ref ON idx_reference (rtype, param, ref, res);
CREATE INDEX IF NOT EXISTS idx_reference_ident ON idx_reference (rtype, param, id_value, id_system, res);
CREATE INDEX IF NOT EXISTS idx_reference_res ON idx_reference (res, param, target_type, target_id, ref);

CREATE TABLE IF NOT EXISTS idx_date (
  res INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
  lo INTEGER NOT NULL, hi INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_date_search ON idx_date (rtype, param, lo, hi, res);
CREATE INDEX IF NOT EXISTS idx_date_res ON idx_date (res, param, lo, hi);
CREATE INDEX IF NOT EXISTS idx_date_hi ON idx_date (rtype, param, hi, lo, res);
-- The widest range (hi - lo) any value of a date parameter has had: a value that reaches a bound from
-- below must start within that width of it, so a window search can bound lo on both sides (search.ts).
-- Only grows (a safe bound); holds no ids.
CREATE TABLE IF NOT EXISTS idx_date_width (
  rtype TEXT NOT NULL, param TEXT NOT NULL, width INTEGER NOT NULL,
  PRIMARY KEY (rtype, param)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS idx_number (
  res INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
  value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_number_search ON idx_number (rtype, param, value, res);
CREATE INDEX IF NOT EXISTS idx_number_res ON idx_number (res, param, value);

CREATE TABLE IF NOT EXISTS idx_quantity (
  res INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
  value REAL NOT NULL, system TEXT, code TEXT, unit TEXT
);
CREATE INDEX IF NOT EXISTS idx_quantity_search ON idx_quantity (rtype, param, value, res);
CREATE INDEX IF NOT EXISTS idx_quantity_res ON idx_quantity (res, param, value, system, code, unit);

CREATE TABLE IF NOT EXISTS idx_uri (
  res INTEGER NOT NULL, rtype TEXT NOT NULL, param TEXT NOT NULL,
  uri TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_uri_search ON idx_uri (rtype, param, uri, res);
CREATE INDEX IF NOT EXISTS idx_uri_res ON idx_uri (res, param, uri);

CREATE TABLE IF NOT EXISTS stored_reference (
  target_type TEXT NOT NULL, target_id TEXT NOT NULL,
  src_type TEXT NOT NULL, src_id TEXT NOT NULL, src_version INTEGER NOT NULL,
  PRIMARY KEY (target_type, target_id, src_type, src_id, src_version)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stored_reference_src ON stored_reference (src_type, src_id);
`;

/**
 * Schema 4: every search index ends in `res` and every per-resource index holds the searched columns,
 * so that a filter is read, counted and probed from its index alone (search.ts, EmbeddedStore.matches).
 */
const WIDENED_IN_4 = [
  'idx_token_search',
  'idx_token_res',
  'idx_string_search',
  'idx_string_res',
  'idx_reference_search',
  'idx_reference_ref',
  'idx_reference_ident',
  'idx_reference_res',
  'idx_date_search',
  'idx_date_res',
  'idx_date_hi',
  'idx_number_search',
  'idx_number_res',
  'idx_quantity_search',
  'idx_quantity_res',
  'idx_uri_search',
  'idx_uri_res',
];

export const INDEX_TABLES = [
  'idx_token',
  'idx_string',
  'idx_reference',
  'idx_date',
  'idx_number',
  'idx_quantity',
  'idx_uri',
] as const;

/** Pragmas first (WAL, NORMAL sync, secure_delete so erased rows are zeroed), then the tables. */
export function initialise(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('secure_delete = ON');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `The store file has schema version ${version}; this server understands ${SCHEMA_VERSION}.`,
    );
  }
  db.transaction(() => {
    if (version >= 1 && version < 4) {
      // Schema 4 widened the index tables' indexes (see DDL); the old ones are rebuilt under their names.
      for (const index of WIDENED_IN_4) db.exec(`DROP INDEX IF EXISTS ${index}`);
    }
    db.exec(DDL);
    if (version === 1) {
      migrateReferenceIndex(db);
    }
    if (version >= 1 && version < 3) {
      // Written before widths were kept: take them from the index.
      db.exec(
        'INSERT OR REPLACE INTO idx_date_width (rtype, param, width) SELECT rtype, param, MAX(hi - lo) FROM idx_date GROUP BY rtype, param',
      );
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  // Planner statistics: bounded ANALYZE work, refreshed now and then (see EmbeddedStore.put).
  db.pragma('analysis_limit = 1000');
  db.pragma('optimize = 0x10002');
}

/**
 * Schema 1 kept `ref_history`, fed from search parameters only. Schema 2's index is rebuilt from every
 * stored version, so a store written before it loses nothing erasure must find.
 */
function migrateReferenceIndex(db: Database.Database): void {
  const insert = db.prepare(
    'INSERT OR IGNORE INTO stored_reference (target_type, target_id, src_type, src_id, src_version) VALUES (?, ?, ?, ?, ?)',
  );
  const page = db.prepare(
    'SELECT seq, type, id, version, content FROM resource_version WHERE seq > ? AND content IS NOT NULL ORDER BY seq LIMIT 1000',
  );
  type Row = { seq: number; type: string; id: string; version: number; content: string };
  for (
    let rows = page.all(0) as Row[];
    rows.length > 0;
    rows = page.all(rows[rows.length - 1].seq) as Row[]
  ) {
    for (const v of rows) {
      for (const t of storedReferences(JSON.parse(v.content) as object)) {
        insert.run(t.targetType, t.targetId, v.type, v.id, v.version);
      }
    }
  }
  db.exec('DROP TABLE IF EXISTS ref_history');
}
