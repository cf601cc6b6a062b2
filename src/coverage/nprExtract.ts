import fs from 'node:fs';
import { parse } from 'csv-parse';
import {
  describeNationalIdProblem,
  parseNationalIdValue,
  type NationalId,
  type NationalIdKind,
  type NationalIdProblem,
} from '../identity/nationalId';

/**
 * Reads an extract from the Norwegian patient register (NPR) for coverage (docs/npr-extract.md): a
 * CSV with a header row, `;` or `,` separated, one row per contact:
 *
 *   national_id;resh;contact_date;contact_end;icd10
 *
 * The extract holds national ids, so nothing read here is ever echoed: a row that cannot be used is
 * counted under its reason (the column and what is wrong, never the value) with its line number, and
 * the ids of good rows live only in memory while coverage is computed.
 */
export const NPR_COLUMNS = ['national_id', 'resh', 'contact_date', 'contact_end', 'icd10'] as const;

export interface NprContact {
  id: NationalId;
  resh: string;
  /** YYYY-MM-DD */
  date: string;
  end?: string;
  icd10: string;
}

export interface NprExtract {
  contacts: NprContact[];
  rows: number;
  /** Rows not used, by reason (no value in any reason). */
  malformed: Record<string, number>;
  /** Line numbers (1 = header) of the first few malformed rows, so the sender can find them. */
  malformedLines: number[];
  /** Lines of rows whose national id is valid but not synthetic (refused outside production). */
  realIdLines: number[];
}

/** Thrown for a file that cannot be read as an extract at all (no header, wrong columns). */
export class NprExtractError extends Error {
  override name = 'NprExtractError';
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
/** ICD-10 as NPR delivers it: letter, two digits, optionally a point and one or two more characters. */
const ICD10 = /^[A-Z]\d{2}(\.?[0-9A-Z]{1,2})?$/;
/** In the order tried: the first digit tells them apart (0–3, 4–7, 8–9). */
const KINDS: readonly NationalIdKind[] = ['fnr', 'dnr', 'fhn'];
const KEEP_LINES = 10;

export async function readNprExtract(file: string, options: { production: boolean }): Promise<NprExtract> {
  const extract: NprExtract = { contacts: [], rows: 0, malformed: {}, malformedLines: [], realIdLines: [] };
  const parser = fs.createReadStream(file).pipe(
    parse({ delimiter: [';', ','], relax_column_count: true, skip_empty_lines: true, trim: true, bom: true }),
  );
  let line = 0;
  for await (const record of parser as AsyncIterable<string[]>) {
    line++;
    if (line === 1) {
      const header = record.map((h) => h.toLowerCase());
      if (NPR_COLUMNS.some((c, i) => header[i] !== c) || header.length !== NPR_COLUMNS.length) {
        throw new NprExtractError(
          `the first line must be the header ${NPR_COLUMNS.join(';')} (see docs/npr-extract.md)`,
        );
      }
      continue;
    }
    extract.rows++;
    const row = readRow(record, options);
    if ('reason' in row) {
      extract.malformed[row.reason] = (extract.malformed[row.reason] ?? 0) + 1;
      if (extract.malformedLines.length < KEEP_LINES) {
        extract.malformedLines.push(line);
      }
      continue;
    }
    if (!row.id.synthetic && extract.realIdLines.length < KEEP_LINES) {
      extract.realIdLines.push(line);
    }
    extract.contacts.push(row);
  }
  if (line === 0) {
    throw new NprExtractError('the file is empty; it must start with the header (see docs/npr-extract.md)');
  }
  return extract;
}

function readRow(record: string[], options: { production: boolean }): NprContact | { reason: string } {
  if (record.length !== NPR_COLUMNS.length) {
    return { reason: `not ${NPR_COLUMNS.length} columns` };
  }
  const [rawId, resh, date, end, icd10] = record;
  const id = parseId(rawId, options);
  if ('problem' in id) {
    return { reason: `national_id is not ${id.problem}` };
  }
  if (!/^\d{1,9}$/.test(resh)) {
    return { reason: 'resh is not 1-9 digits' };
  }
  if (!isDate(date)) {
    return { reason: 'contact_date is not a date (YYYY-MM-DD)' };
  }
  if (end !== '' && !isDate(end)) {
    return { reason: 'contact_end is not empty or a date (YYYY-MM-DD)' };
  }
  if (end !== '' && end < date) {
    return { reason: 'contact_end is before contact_date' };
  }
  if (!ICD10.test(icd10)) {
    return { reason: 'icd10 is not an ICD-10 code' };
  }
  return { id, resh, date, ...(end !== '' ? { end } : {}), icd10 };
}

/** The id as the kind its first digit says; the problem text names the kind, never the value. */
function parseId(raw: string, options: { production: boolean }): NationalId | { problem: string } {
  let problem: { kind: NationalIdKind; problem: NationalIdProblem } | undefined;
  for (const kind of KINDS) {
    const parsed = parseNationalIdValue(kind, raw, options);
    if (parsed.ok) {
      return parsed.id;
    }
    if (parsed.problem !== 'wrong-kind') {
      problem = { kind, problem: parsed.problem };
      break;
    }
  }
  return { problem: problem ? describeNationalIdProblem(problem.kind, problem.problem) : 'a national id' };
}

function isDate(text: string): boolean {
  return DATE.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`)) &&
    new Date(`${text}T00:00:00Z`).toISOString().startsWith(text);
}
