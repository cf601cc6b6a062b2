import type { Identifier } from '@medplum/fhirtypes';
import { errors, issue } from '../fhir/outcomes';
import { literalKey, parseReference } from '../fhir/reference';

/**
 * Norwegian person identifiers as HL7 Norway no-basis sends them (reference: norway-fhir-and-law.md §1).
 * The registry only needs to know that a value is a well-formed identifier of a given kind; it never
 * derives sex or century from it (the 2032 numbers make both impossible, and the registry must not
 * depend on them).
 */
export type NationalIdKind = 'fnr' | 'dnr' | 'fhn' | 'hnr';

export interface NationalId {
  kind: NationalIdKind;
  /** The 11 digits, as sent (spaces removed). */
  value: string;
  /** For local H-numbers only: who issued it ("system|value" of the assigner's identifier, or its reference). */
  assigner?: string;
  /** A Test-Norge/Tenor synthetic number (month + 80). */
  synthetic: boolean;
}

export const nationalIdSystems = {
  fnr: ['urn:oid:2.16.578.1.12.4.1.4.1', 'http://hl7.no/fhir/NamingSystem/FNR'],
  dnr: ['urn:oid:2.16.578.1.12.4.1.4.2', 'http://hl7.no/fhir/NamingSystem/DNR'],
  fhn: ['urn:oid:2.16.578.1.12.4.1.4.3', 'http://hl7.no/fhir/NamingSystem/FHNR'],
} as const;

/** The preferred system of each kind, used when the registry itself writes an identifier. */
export const preferredSystem = {
  fnr: nationalIdSystems.fnr[0],
  dnr: nationalIdSystems.dnr[0],
  fhn: nationalIdSystems.fhn[0],
};

/** no-basis recognises a local H-number by its type (Volven 8327 "HNR"), not by its system. */
export const hnrTypeSystem = 'urn:oid:2.16.578.1.12.4.1.1.8327';
export const hnrTypeCode = 'HNR';

/**
 * The one form in which the registry compares identifier systems. Parts that RFC 3986/8141 make
 * case-insensitive are lower-cased: a URN's `urn:` and namespace (`URN:OID:2.16…` is `urn:oid:2.16…`;
 * an OID holds only digits and dots, so the whole URN), and a URL's scheme and host. The rest of a
 * URL stays as sent (paths are case-sensitive). Without this, `URN:OID:2.16.578.1.12.4.1.4.1` would
 * not be taken for a fødselsnummer system: the number would escape exclusion and make a second person.
 */
function canonicalSystem(system: string): string;
function canonicalSystem(system: string | undefined): string | undefined;
function canonicalSystem(system: string | undefined): string | undefined {
  if (system === undefined) {
    return undefined;
  }
  const urn = /^urn:([A-Za-z0-9][A-Za-z0-9-]{0,31}):/i.exec(system);
  if (urn) {
    const namespace = urn[1].toLowerCase();
    const rest = system.slice(urn[0].length);
    return `urn:${namespace}:${namespace === 'oid' || namespace === 'uuid' ? rest.toLowerCase() : rest}`;
  }
  const url = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)/.exec(system);
  if (url) {
    return `${url[1].toLowerCase()}${url[2].toLowerCase()}${system.slice(url[0].length)}`;
  }
  return system;
}

/** True when two identifier systems are the same system (compared in canonical form). */
export function sameSystem(a: string | undefined, b: string | undefined): boolean {
  return canonicalSystem(a) === canonicalSystem(b);
}

const kindBySystem = new Map<string, Exclude<NationalIdKind, 'hnr'>>();
for (const kind of ['fnr', 'dnr', 'fhn'] as const) {
  for (const system of nationalIdSystems[kind]) {
    kindBySystem.set(canonicalSystem(system), kind);
  }
}

const kindNames: Record<NationalIdKind, string> = {
  fnr: 'fødselsnummer',
  dnr: 'D-number',
  fhn: 'felles hjelpenummer',
  hnr: 'local H-number',
};

/** The kind an identifier claims by its system or type, or undefined for any other identifier. */
export function nationalIdKindOf(identifier: Identifier): NationalIdKind | undefined {
  const bySystem =
    identifier.system === undefined ? undefined : kindBySystem.get(canonicalSystem(identifier.system));
  if (bySystem) {
    return bySystem;
  }
  if (
    identifier.type?.coding?.some(
      (c) => sameSystem(c.system, hnrTypeSystem) && c.code?.toUpperCase() === hnrTypeCode,
    )
  ) {
    return 'hnr';
  }
  return undefined;
}

/** True for a system that carries a person's national id; such values must never reach the clinical store. */
export function isNationalIdSystem(system: string | undefined): boolean {
  return system !== undefined && kindBySystem.has(canonicalSystem(system));
}

/** Where a national id stands in a text: [start, end) and its 11 digits. */
export interface NationalIdSpan {
  start: number;
  end: number;
  digits: string;
}

/** A national id's digits as written: 11 in a row, or "DDMMYY NNNNN", or "DDMMYY-NNNNN". */
const DIGITS = String.raw`(\d{6})[ -]?(\d{5})`;
const CANDIDATE = new RegExp(String.raw`(?<!\d)${DIGITS}(?!\d)`, 'g');
const DIGITS_ANYWHERE = new RegExp(DIGITS);

/**
 * THE national-id detector (DESIGN §3.1, §3.4): the pseudonymisation policy, the audit guard, the log
 * and search translation all ask this one function. A national id is an 11-digit run, also written
 * "DDMMYY NNNNN" or "DDMMYY-NNNNN", that is not part of a longer run of digits and whose two mod-11
 * check digits hold (with the 2032 rule's four K1 values; that covers FNR, D-, H- and synthetic
 * numbers and felles hjelpenummer, without the date part). Letters around it do not hide it:
 * `abc01818040071` holds one. Server-assigned ids never look like one (src/identity/serverId.ts);
 * callers that handle ids they know to be ids (search by reference) decide not to ask.
 */
function findNationalIds(text: string): NationalIdSpan[] {
  if (!/\d{5}/.test(text)) {
    return []; // fast path: most strings hold no long digit run
  }
  const spans: NationalIdSpan[] = [];
  for (const match of text.matchAll(CANDIDATE)) {
    const digits = match[1] + match[2];
    if (checkDigitsValid(digits)) {
      spans.push({ start: match.index, end: match.index + match[0].length, digits });
    }
  }
  return spans;
}

export function containsNationalId(text: string): boolean {
  return findNationalIds(text).length > 0;
}

/**
 * A fast over-approximation of `containsNationalId` for a text that values were written into, such as
 * serialised JSON: false means no value written into it holds a national id, as long as writing kept
 * digits, spaces and hyphens as they were. The candidate's guard against longer runs of digits is left
 * out, because writing can put digits next to a national id: JSON writes a control character as
 * `\u0000`, whose hex digits then run on into the number.
 */
export function mayContainNationalId(text: string): boolean {
  return DIGITS_ANYWHERE.test(text);
}

/** What logs and audit entries show where a national id was. */
const nationalIdRemoved = '[national id removed]';

/** The text with every national id replaced. */
export function redactNationalIdsWith(text: string, replacement = nationalIdRemoved): string {
  const spans = findNationalIds(text);
  let out = '';
  let at = 0;
  for (const span of spans) {
    out += text.slice(at, span.start) + replacement;
    at = span.end;
  }
  return spans.length === 0 ? text : out + text.slice(at);
}

const weightsK1 = [3, 7, 6, 1, 8, 9, 4, 5, 2];
const weightsK2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2];

function weightedSum(digits: readonly number[], weights: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < weights.length; i++) {
    sum += digits[i] * weights[i];
  }
  return sum;
}

/**
 * The K1 values that are valid for the first nine digits. Before 2032 only remainder 0 was used; from
 * 2032 Skatteetaten issues numbers whose K1 uses remainder 0, 1, 2 or 3 (10 stays impossible). Numbers
 * already issued keep working because remainder 0 is among the four.
 */
export function validK1(digits: readonly number[]): number[] {
  const values: number[] = [];
  for (let offset = 0; offset <= 3; offset++) {
    const k1 = k1WithOffset(digits, offset);
    if (k1 !== 10) {
      values.push(k1);
    }
  }
  return values;
}

/** K1 computed with the given remainder offset (0 = the classic rule); 10 means no such number. */
export function k1WithOffset(digits: readonly number[], offset: number): number {
  return (11 + offset - (weightedSum(digits, weightsK1) % 11)) % 11;
}

/** K2 for the first ten digits, or undefined when no number with these ten digits can exist. */
export function computeK2(digits: readonly number[]): number | undefined {
  const k2 = (11 - (weightedSum(digits, weightsK2) % 11)) % 11;
  return k2 === 10 ? undefined : k2;
}

function checkDigitsValid(value: string): boolean {
  const digits = toDigits(value);
  return validK1(digits).includes(digits[9]) && computeK2(digits) === digits[10];
}

function toDigits(value: string): number[] {
  const digits = new Array<number>(value.length);
  for (let i = 0; i < value.length; i++) {
    digits[i] = value.charCodeAt(i) - 48;
  }
  return digits;
}

/** Why a value is not a valid identifier of its kind. The text never contains the value. */
export type NationalIdProblem =
  'not-11-digits' | 'check-digits' | 'date' | 'wrong-kind' | 'synthetic-in-production' | 'missing-assigner';

const problemTexts: Record<NationalIdProblem, string> = {
  'not-11-digits': 'must be exactly 11 digits',
  'check-digits': 'its check digits do not match (mod 11)',
  date: 'its first six digits are not a valid date',
  'wrong-kind': 'its digits do not have the form of this kind of number',
  'synthetic-in-production': 'it is a synthetic test number, which production does not accept',
  'missing-assigner':
    'a local H-number needs Identifier.assigner, because it is unique only within its issuer',
};

export type ParseResult = { ok: true; id: NationalId } | { ok: false; problem: NationalIdProblem };

export interface ParseOptions {
  /** Production refuses synthetic (Test-Norge/Tenor, month + 80) numbers. */
  production: boolean;
}

/**
 * Validates an 11-digit value as the given kind. Offsets removed before the date check: D-number +4 on
 * the first digit, H-number +40 on the month (with D+H allowed), synthetic +80 on the month (with D+T
 * allowed). Felles hjelpenummer start with 8 or 9 and carry no date. Local H-numbers from older
 * systems also start with 8 or 9.
 */
export function parseNationalIdValue(
  kind: NationalIdKind,
  raw: string,
  options: ParseOptions,
  assigner?: string,
): ParseResult {
  const value = raw.replace(/\s+/g, '');
  if (!/^\d{11}$/.test(value)) {
    return { ok: false, problem: 'not-11-digits' };
  }
  if (kind === 'hnr' && !assigner) {
    return { ok: false, problem: 'missing-assigner' };
  }
  const digits = toDigits(value);
  const first = digits[0];
  let day = digits[0] * 10 + digits[1];
  let month = digits[2] * 10 + digits[3];
  const year = digits[4] * 10 + digits[5];
  let synthetic = false;
  let datePart = true;

  switch (kind) {
    case 'fnr':
      if (first > 3) {
        return { ok: false, problem: 'wrong-kind' };
      }
      break;
    case 'dnr':
      if (first < 4 || first > 7) {
        return { ok: false, problem: 'wrong-kind' };
      }
      day -= 40;
      break;
    case 'fhn':
      if (first < 8) {
        return { ok: false, problem: 'wrong-kind' };
      }
      datePart = false;
      break;
    case 'hnr':
      if (first >= 8) {
        datePart = false; // older local systems: first digit 8 or 9, no date
      } else {
        if (month < 41 || month > 52) {
          return { ok: false, problem: 'wrong-kind' };
        }
        month -= 40;
        if (first >= 4) {
          day -= 40; // D+H
        }
      }
      break;
  }
  if (datePart && kind !== 'hnr' && month > 80) {
    month -= 80;
    synthetic = true;
  }
  if (datePart && !validDate(day, month, year)) {
    return { ok: false, problem: 'date' };
  }
  if (!checkDigitsValid(value)) {
    return { ok: false, problem: 'check-digits' };
  }
  if (synthetic && options.production) {
    return { ok: false, problem: 'synthetic-in-production' };
  }
  const id: NationalId = { kind, value, synthetic };
  if (kind === 'hnr') {
    id.assigner = assigner;
  }
  return { ok: true, id };
}

/**
 * The national id a token's `pid` claim names. The claim holds the bare number, without a system, so
 * its kind is read from its first digit (0–3 fødselsnummer, 4–7 D-number, 8–9 felles hjelpenummer);
 * with no issuer it cannot be a local H-number. White space is removed before the kind is read, as it
 * is from any identifier's value. Every reader of the claim asks this function, so a token names the
 * same person, or nobody, wherever it is used.
 */
export function nationalIdOfPid(pid: string, options: ParseOptions): ParseResult {
  const value = pid.replace(/\s+/g, '');
  const first = value.charAt(0);
  return parseNationalIdValue(first <= '3' ? 'fnr' : first <= '7' ? 'dnr' : 'fhn', value, options);
}

const daysInMonth = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The century is unknown (and must stay so), so 29 February is valid whenever some century makes YY a leap year. */
function validDate(day: number, month: number, year: number): boolean {
  if (month < 1 || month > 12 || day < 1) {
    return false;
  }
  if (month === 2 && day === 29) {
    return year % 4 === 0;
  }
  return day <= daysInMonth[month - 1];
}

/**
 * A stable text for an H-number's issuer, from Identifier.assigner, in canonical form: the same issuer
 * written differently (an upper-case OID system, spaces around the value, a reference with a version,
 * a name in other case or spacing) gives the same key, so the
 * same H-number is one person and its reservation holds however the assigner is spelt.
 */
export function assignerKey(identifier: Identifier): string | undefined {
  const assigner = identifier.assigner;
  if (!assigner) {
    return undefined;
  }
  const value = assigner.identifier?.value?.trim();
  if (value) {
    return `${canonicalSystem(assigner.identifier?.system?.trim()) ?? ''}|${value}`;
  }
  const reference = assigner.reference?.trim();
  if (reference) {
    const parsed = parseReference(reference);
    return parsed.ok && parsed.reference.kind === 'literal' ? literalKey(parsed.reference) : reference;
  }
  const display = assigner.display?.normalize('NFC').trim().replace(/\s+/g, ' ').toLowerCase();
  return display || undefined;
}

/**
 * The national ids among a resource's identifiers. Throws a 422 FhirError naming the offending
 * identifier (e.g. `Patient.identifier[0]`) when one claims to be a national id but is not a valid one;
 * the message never contains the value.
 */
export function extractNationalIds(
  identifiers: readonly Identifier[] | undefined,
  expressionPrefix: string,
  options: ParseOptions,
): { index: number; id: NationalId }[] {
  const found: { index: number; id: NationalId }[] = [];
  (identifiers ?? []).forEach((identifier, index) => {
    const kind = nationalIdKindOf(identifier);
    if (!kind) {
      return;
    }
    const expression = `${expressionPrefix}[${index}]`;
    if (typeof identifier.value !== 'string') {
      throw errors.unprocessable([
        issue('required', `${expression} is a ${kindNames[kind]} identifier without a value.`, expression),
      ]);
    }
    const result = parseNationalIdValue(kind, identifier.value, options, assignerKey(identifier));
    if (!result.ok) {
      throw invalidNationalId(kind, result.problem, expression);
    }
    found.push({ index, id: result.id });
  });
  return found;
}

/** "a valid fødselsnummer: its check digits do not match (mod 11)", for messages other than a resource's. */
export function describeNationalIdProblem(kind: NationalIdKind, problem: NationalIdProblem): string {
  return `a valid ${kindNames[kind]}: ${problemTexts[problem]}`;
}

/** Why a token's pid names nobody, for the refusal; never the value. */
export function describePidProblem(problem: NationalIdProblem): string {
  return `a valid fødselsnummer, D-number or felles hjelpenummer: ${problemTexts[problem]}`;
}

export function invalidNationalId(kind: NationalIdKind, problem: NationalIdProblem, expression: string) {
  return errors.unprocessable([
    issue(
      problem === 'missing-assigner' ? 'required' : 'value',
      `${expression} is not a valid ${kindNames[kind]}: ${problemTexts[problem]}. Correct the identifier and send the resource again.`,
      expression,
    ),
  ]);
}

/**
 * The canonical text a pseudonym is computed from. FNR, D-number and FH-number digit patterns cannot
 * collide (first digit 0–3, 4–7, 8–9), so the digits alone identify a national id; a local H-number
 * is only unique together with its issuer.
 */
export function canonicalNationalId(id: NationalId): string {
  return id.kind === 'hnr' ? `hnr|${id.assigner ?? ''}|${id.value}` : id.value;
}

/** Which id names the person when several are known: an FNR outranks a D-number, which outranks help numbers. */
export const kindRank: Record<NationalIdKind, number> = { fnr: 0, dnr: 1, fhn: 2, hnr: 3 };
