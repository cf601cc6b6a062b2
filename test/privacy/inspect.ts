import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Bundle } from '@medplum/fhirtypes';
import { EmbeddedStore } from '../../src/store/embedded';

/**
 * An independent look at the clinical store, past the server: every stored version of every resource, and
 * a fingerprint that changes with any write. Embedded: the SQLite file read directly. HAPI: its REST API
 * (history since the test started: other tests share that server).
 */
export interface StoredVersion {
  type: string;
  id: string;
  version: string;
  json: string;
}

export interface StoreInspector {
  /** Changes whenever anything is written; absent for HAPI, which other tests write to meanwhile. */
  fingerprint?: () => Promise<string>;
  versions(): Promise<StoredVersion[]>;
  /** The files holding the store's bytes (empty for HAPI: PostgreSQL is scanned by its own test). */
  files(): string[];
}

export function embeddedInspector(dataDir: string): StoreInspector {
  const file = EmbeddedStore.defaultFile(dataDir);
  const withDb = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    fingerprint: async () =>
      withDb((db) => {
        const row = db.prepare('SELECT count(*) AS n, max(seq) AS s FROM resource_version').get() as {
          n: number;
          s: number;
        };
        return `${row.n}/${row.s}`;
      }),
    versions: async () =>
      withDb((db) =>
        (
          db.prepare('SELECT type, id, version, content FROM resource_version').all() as {
            type: string;
            id: string;
            version: number;
            content: string | null;
          }[]
        ).map((r) => ({ type: r.type, id: r.id, version: String(r.version), json: r.content ?? '' })),
      ),
    files: () =>
      fs
        .readdirSync(dataDir)
        .filter((f) => f.startsWith(path.basename(file)))
        .map((f) => path.join(dataDir, f)),
  };
}

/** HAPI over REST: every version of the given types written since `since` (paged history). */
export function hapiInspector(hapiUrl: string, types: readonly string[], since: string): StoreInspector {
  const versions = async (): Promise<StoredVersion[]> => {
    const out: StoredVersion[] = [];
    for (const type of types) {
      let url: string | undefined =
        `${hapiUrl}/${type}/_history?_since=${encodeURIComponent(since)}&_count=500`;
      while (url) {
        const response = await fetch(url, { headers: { accept: 'application/fhir+json' } });
        const bundle = (await response.json()) as Bundle;
        for (const entry of bundle.entry ?? []) {
          const r = entry.resource;
          if (r) {
            out.push({ type, id: r.id ?? '', version: r.meta?.versionId ?? '', json: JSON.stringify(r) });
          }
        }
        url = bundle.link?.find((l) => l.relation === 'next')?.url;
      }
    }
    return out;
  };
  return { versions, files: () => [] };
}
