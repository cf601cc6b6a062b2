import { getSearchParameters } from '@medplum/core';
import type { Identifier, OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Principal } from '../auth/principal';
import { errors, FhirError, issue, operationOutcome } from '../fhir/outcomes';
import { publicIdentifierSystems } from '../dictionary/dictionary';
import { parseReference } from '../fhir/reference';
import {
  containsNationalId,
  describeNationalIdProblem,
  nationalIdKindOf,
  parseNationalIdValue,
  sameSystem,
} from './nationalId';
import { isHashedIdentifierValue, type Pseudonymiser, registryPseudonymSystem } from './pseudonym';
import { hasServerIdForm } from './serverId';
import type { IdentityVault } from './vault/IdentityVault';

/**
 * Search translation (DESIGN §3.1, §4): the clinical store holds pseudonyms and keyed hashes, never the
 * national ids and EPR business identifiers clients know. Every query passes through here on its way
 * in — GET and POST `_search`, batch GET entries (src/fhir/interactions.ts), and the conditional
 * queries of creates, updates and deletes (src/ingest/pseudonymise.ts) — so that a client searches by
 * what it knows and matches what was stored:
 *
 * - `Patient?identifier=<FNR|D-number|FH system>|<number>` → `identifier=<registry pseudonym system>|<pseudonym>`
 * - `<Patient reference>:identifier=`, `<ref>.identifier=`, `<ref>:Patient.identifier=` with a national
 *   id (or the registry pseudonym) → `<ref>=Patient/<id>`
 * - `identifier=<system>|<value>` on every other type, `<ref>:identifier=` and `<ref>.identifier=` with
 *   business identifiers → the keyed hashes of the value under every configured key version (an OR
 *   list), as the pseudonymisation policy stored them; public systems (RESH, HPR, organisation number),
 *   the pseudonym and values already hashed pass unchanged, so the translation is idempotent.
 *
 * The translation is for the store only: responses (paging links) echo the query as the client sent it,
 * so that an answer never shows a person's pseudonym or Patient id, nor whether the vault knows them.
 *
 * A person the vault does not know matches nothing: a search never creates a vault entry. An invalid
 * number, or a national id anywhere else in a query, is refused naming the parameter; the value itself
 * is never echoed or logged.
 *
 * Researchers may not search by national id at all (DESIGN §3.5: they see project pseudonyms only; an
 * answer would also tell them whether a named person is in the registry): 403, before the number is
 * validated or looked up, so the refusal says nothing about the number either.
 */
export interface SearchTranslationDeps {
  vault: IdentityVault;
  pseudonymiser: Pseudonymiser;
  /** Production refuses synthetic national ids. */
  production: boolean;
}

/** Stands for a person the vault does not know: no Patient id or pseudonym can have this form. */
const UNKNOWN_PERSON = 'unknown-person';

/**
 * - `search`: a search; bad values are 400, naming the parameter.
 * - `conditional`: the query of a conditional write; bad values are 422, naming `expression` (the
 *   request or entry the query came with), as for the rest of the write.
 */
export type TranslationMode =
  { kind: 'search'; researcher: boolean } | { kind: 'conditional'; expression: string };

/** What a token of an identifier-valued parameter denotes. */
type Token =
  | { kind: 'person'; reference: string; pseudonym: string }
  | { kind: 'pseudonym'; value: string }
  | { kind: 'other'; system: string | undefined; value: string };

/** Where in a query an identifier token stands. */
type Slot =
  /** Patient?identifier: the Patient's own identifier (only the pseudonym is stored). */
  | { kind: 'patient-identifier' }
  /** A reference that can point at a Patient, searched by identifier (`:identifier` or chained). */
  | { kind: 'person-reference'; code: string; patientOnly: boolean }
  /** A business identifier (stored as a keyed hash). */
  | { kind: 'business' };

export class SearchTranslator {
  constructor(private readonly deps: SearchTranslationDeps) {}

  /** The parameters of a search by `principal`, as the store must see them. */
  params(resourceType: string, params: URLSearchParams, principal: Pick<Principal, 'role'>): URLSearchParams {
    const out = new URLSearchParams();
    const mode: TranslationMode = { kind: 'search', researcher: principal.role === 'researcher' };
    for (const [name, value] of params) {
      const [key, translated] = this.translate(resourceType, name, value, mode);
      out.append(key, translated);
    }
    return out;
  }

  /** A conditional query string (`identifier=sys|val&...`), as the store must see it. */
  query(resourceType: string, query: string, expression: string): string {
    const parts: string[] = [];
    for (const [name, value] of new URLSearchParams(query)) {
      const [key, translated] = this.translate(resourceType, name, value, {
        kind: 'conditional',
        expression,
      });
      parts.push(`${encodeQueryPart(key)}=${encodeQueryPart(translated)}`);
    }
    return parts.join('&');
  }

  private translate(
    resourceType: string,
    name: string,
    value: string,
    mode: TranslationMode,
  ): [string, string] {
    const slot = value === '' ? undefined : slotOf(resourceType, name);
    if (!slot) {
      this.refuseNationalIdIn(name, withoutServerIds(resourceType, name, value), mode);
      return [name, value];
    }
    const tokens = value.split(',').map((token) => this.token(token, name, mode));
    switch (slot.kind) {
      case 'patient-identifier':
        return [name, tokens.map((t) => this.asPatientIdentifier(t, name, mode)).join(',')];
      case 'person-reference': {
        const persons = tokens.filter((t) => t.kind !== 'other');
        if (persons.length === 0) {
          return slot.patientOnly ? [name, this.unchanged(tokens, name, mode)] : [name, this.hashed(tokens)];
        }
        if (persons.length < tokens.length) {
          throw this.fail(
            mode,
            name,
            'invalid',
            `Search parameter '${name}' mixes persons (national ids, registry pseudonyms) with other identifiers; search them in separate requests.`,
          );
        }
        const references = [...new Set(persons.map((t) => this.reference(t)))];
        return [slot.code, references.join(',')];
      }
      case 'business':
        if (tokens.some((t) => t.kind === 'person')) {
          throw this.fail(
            mode,
            name,
            'value',
            `${resourceType} cannot be matched by a national id in '${name}'; search by the person with patient:identifier or subject:identifier instead.`,
          );
        }
        return [name, this.hashed(tokens)];
    }
  }

  /** One `system|value` token; a national id is validated and looked up (never linked). */
  private token(text: string, name: string, mode: TranslationMode): Token {
    const bar = text.indexOf('|');
    const system = bar < 0 ? undefined : text.slice(0, bar);
    const value = bar < 0 ? text : text.slice(bar + 1);
    if (sameSystem(system, registryPseudonymSystem) && value !== '') {
      return { kind: 'pseudonym', value };
    }
    const identifier: Identifier = { system, value };
    const kind = nationalIdKindOf(identifier);
    if (!kind) {
      return { kind: 'other', system, value };
    }
    if (mode.kind === 'search' && mode.researcher) {
      throw new FhirError(
        403,
        operationOutcome([
          issue(
            'forbidden',
            `A research token cannot search by national id ('${name}'); search the study's project pseudonyms instead.`,
            name,
          ),
        ]),
      );
    }
    if (value === '') {
      throw this.fail(
        mode,
        name,
        'required',
        `Search parameter '${name}' names a national id system without a number.`,
      );
    }
    const parsed = parseNationalIdValue(kind, value, { production: this.deps.production });
    if (!parsed.ok) {
      throw this.invalidNumber(mode, name, describeNationalIdProblem(kind, parsed.problem));
    }
    const person = this.deps.vault.find(parsed.id);
    return person
      ? { kind: 'person', reference: `Patient/${person.patientId}`, pseudonym: person.pseudonym }
      : { kind: 'person', reference: `Patient/${UNKNOWN_PERSON}`, pseudonym: UNKNOWN_PERSON };
  }

  private asPatientIdentifier(token: Token, name: string, mode: TranslationMode): string {
    switch (token.kind) {
      case 'person':
        return `${registryPseudonymSystem}|${token.pseudonym}`;
      case 'pseudonym':
        return `${registryPseudonymSystem}|${token.value}`;
      case 'other':
        return this.unchanged([token], name, mode);
    }
  }

  private reference(token: Token): string {
    if (token.kind === 'person') {
      return token.reference;
    }
    if (token.kind === 'pseudonym') {
      const person = this.deps.vault.findByPseudonym(token.value);
      return `Patient/${person?.patientId ?? UNKNOWN_PERSON}`;
    }
    throw new Error('only person tokens become references');
  }

  /** Tokens the store matches as they are; a national id hidden in one (no system, other system) is refused. */
  private unchanged(tokens: Token[], name: string, mode: TranslationMode): string {
    const text = tokens.map((t) => (t.kind === 'other' ? joinToken(t.system, t.value) : '')).join(',');
    this.refuseNationalIdIn(name, text, mode);
    return text;
  }

  /** Business identifiers as the policy stored them: keyed hashes under every key version. */
  private hashed(tokens: Token[]): string {
    return tokens
      .flatMap((token) => {
        if (token.kind === 'pseudonym') {
          return [joinToken(registryPseudonymSystem, token.value)];
        }
        if (token.kind !== 'other') {
          return [];
        }
        const { system, value } = token;
        if (
          value === '' ||
          isHashedIdentifierValue(value) ||
          (system !== undefined && publicIdentifierSystems.has(system))
        ) {
          return [joinToken(system, value)];
        }
        // `|value` is an identifier without a system; a bare `value` is any system, which a hash cannot
        // express: it is hashed as stored without a system.
        return this.deps.pseudonymiser
          .hashIdentifierAllVersions(system === '' ? undefined : system, value)
          .map((hash) => joinToken(system, hash));
      })
      .join(',');
  }

  private refuseNationalIdIn(name: string, value: string, mode: TranslationMode): void {
    if (containsNationalId(value)) {
      throw this.fail(
        mode,
        name,
        'value',
        mode.kind === 'search'
          ? `Search parameter '${name}' holds what looks like a national id. Search a person by national id with its system: Patient?identifier=<system>|<number>, or patient:identifier=<system>|<number> on other resources.`
          : 'A conditional query may carry a national id only in identifier or patient:identifier.',
      );
    }
  }

  private invalidNumber(mode: TranslationMode, name: string, problem: string): FhirError {
    return this.fail(
      mode,
      name,
      'value',
      `Search parameter '${name}' does not hold ${problem}. Correct the number and ${mode.kind === 'search' ? 'search' : 'send the request'} again.`,
    );
  }

  private fail(
    mode: TranslationMode,
    name: string,
    code: OperationOutcomeIssue['code'],
    text: string,
  ): FhirError {
    return mode.kind === 'search'
      ? new FhirError(400, operationOutcome([issue(code, text, name)]))
      : errors.unprocessable([issue(code, text, mode.expression)]);
  }
}

/**
 * Which identifier slot a query parameter is, by its name: `code`, `code:modifier`, `code.chain` or
 * `code:Type.chain` (the forms src/fhir/search.ts accepts). Undefined for every other parameter.
 */
function slotOf(resourceType: string, name: string): Slot | undefined {
  const match = /^([A-Za-z_][A-Za-z0-9_-]*)(?::([A-Za-z-]+))?(?:\.(.+))?$/.exec(name);
  if (!match) {
    return undefined;
  }
  const [, code, modifier, chain] = match;
  if (code === 'identifier' && chain === undefined && (modifier === undefined || modifier === 'not')) {
    return resourceType === 'Patient' ? { kind: 'patient-identifier' } : { kind: 'business' };
  }
  const param = getSearchParameters(resourceType)?.[code];
  if (param?.type !== 'reference') {
    return undefined;
  }
  const canBePatient = (param.target ?? []).includes('Patient');
  if (modifier === 'identifier' && chain === undefined) {
    return canBePatient ? { kind: 'person-reference', code, patientOnly: false } : { kind: 'business' };
  }
  if (chain === 'identifier') {
    if (modifier === 'Patient' || (modifier === undefined && canBePatient)) {
      return { kind: 'person-reference', code, patientOnly: modifier === 'Patient' };
    }
    return modifier === undefined || /^[A-Z]/.test(modifier) ? { kind: 'business' } : undefined;
  }
  return undefined;
}

/**
 * The value of a parameter as the national-id check must see it: for `_id` and a plain reference
 * parameter, tokens that are ids of the server's form (`<uuid>` or `Type/<uuid>`) are left out. They
 * are ids the server handed out, and a digit run inside one is not a national id; checking them made
 * about one resource in 7,200 unsearchable by reference.
 */
function withoutServerIds(resourceType: string, name: string, value: string): string {
  const isIdParam = name === '_id' || getSearchParameters(resourceType)?.[name]?.type === 'reference';
  if (!isIdParam) {
    return value;
  }
  return value
    .split(',')
    .filter((token) => {
      const parsed = parseReference(token);
      const id = parsed.ok && parsed.reference.kind === 'literal' ? parsed.reference.id : token;
      return !hasServerIdForm(id);
    })
    .join(',');
}

function joinToken(system: string | undefined, value: string): string {
  return system === undefined ? value : `${system}|${value}`;
}

/** Percent-encodes a query part, but keeps the FHIR token separators readable. */
function encodeQueryPart(text: string): string {
  return encodeURIComponent(text)
    .replace(/%7C/g, '|')
    .replace(/%2C/g, ',')
    .replace(/%3A/g, ':')
    .replace(/%2F/g, '/');
}
