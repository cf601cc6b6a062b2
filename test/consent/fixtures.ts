import { randomUUID } from 'node:crypto';
import type { Bundle, Condition, Consent, Resource } from '@medplum/fhirtypes';
import { seededRandom, syntheticNationalId } from '../../src/identity/synthetic';
import type { TestServer } from '../helpers/testServer';

export const FNR_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.4.1';
export const DNR_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.4.2';
export const RESH = 'urn:oid:2.16.578.1.12.4.1.4.102';
export const CHANNEL = 'https://norpain.no/fhir/StructureDefinition/reservation-channel';
/** Conditions carry the test person's tag as an ICD-10 code and the answer as an ICPC-2 code (both code
 * systems the data dictionary keeps on Condition.code), so a test can find them per person. */
export const TAG_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.1.7110';
export const ANSWER_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.1.7170';
/** When this test file started (each file loads its own copy): on a shared HAPI server, the searches below
 * see only what this run stored, not the same tags from earlier runs. */
export const STARTED = new Date().toISOString();

export function people(seed: number, n: number, kind: 'fnr' | 'dnr' = 'fnr'): string[] {
  const random = seededRandom(seed);
  const out = new Set<string>();
  while (out.size < n) {
    out.add(syntheticNationalId(kind, { random }));
  }
  return [...out];
}

export interface Reply<T = Resource> {
  status: number;
  body: T;
  text: string;
}

/** A FHIR call with a token of the given role (and options). */
export async function call<T = Resource>(
  server: TestServer,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const response = await fetch(`${server.baseUrl}/${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/fhir+json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, body: (text ? JSON.parse(text) : undefined) as T };
}

/** The reply's body, once its status is the one expected (else the failure shows the reply). */
export function ok<T>(reply: Reply<T>, status: number): T {
  if (reply.status !== status) {
    throw new Error(`expected ${status}, got ${reply.status}: ${reply.text}`);
  }
  return reply.body;
}

/** A clinic's transaction: the Patient (national id, birth date), an episode and answers as Conditions. */
export function submission(
  ids: { system: string; value: string }[],
  tag: string,
  answers: string[],
  options: { birthDate?: string; start?: string; unit?: string } = {},
): Bundle {
  const patientUrl = `urn:uuid:${randomUUID()}`;
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: patientUrl,
        resource: {
          resourceType: 'Patient',
          identifier: ids,
          name: [{ family: 'Testesen', given: ['Test'] }],
          birthDate: options.birthDate ?? '1980-01-15',
        },
        request: { method: 'POST', url: 'Patient' },
      },
      {
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: {
          resourceType: 'EpisodeOfCare',
          // The NorPain EpisodeOfCare profile requires the referral date (at the latest, the start).
          extension: [
            {
              url: 'https://norpain.no/fhir/StructureDefinition/referral-date',
              valueDate: (options.start ?? '2024-03-04').slice(0, 10),
            },
          ],
          status: 'active',
          patient: { reference: patientUrl },
          managingOrganization: { identifier: { system: RESH, value: options.unit ?? '999001' } },
          period: { start: options.start ?? '2024-03-04' },
        },
        request: { method: 'POST', url: 'EpisodeOfCare' },
      },
      ...answers.map((answer) => ({
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: condition(tag, answer, { reference: patientUrl }),
        request: { method: 'POST' as const, url: 'Condition' },
      })),
    ],
  };
}

export function condition(
  tag: string,
  answer: string,
  subject: { reference?: string; identifier?: { system: string; value: string } },
): Resource {
  return {
    resourceType: 'Condition',
    code: {
      coding: [
        { system: TAG_SYSTEM, code: tag },
        { system: ANSWER_SYSTEM, code: answer },
      ],
    },
    subject,
  };
}

export function reservation(
  fnr: string,
  options: { status?: 'active' | 'inactive'; channel?: string; system?: string } = {},
): Consent {
  return {
    resourceType: 'Consent',
    ...(options.channel ? { extension: [{ url: CHANNEL, valueCode: options.channel }] } : {}),
    status: options.status ?? 'active',
    scope: {
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }],
    },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { identifier: { system: options.system ?? FNR_SYSTEM, value: fnr } },
    dateTime: '2024-05-02T09:00:00+02:00',
    policyRule: {
      coding: [{ system: 'https://norpain.no/fhir/CodeSystem/consent-policy', code: 'reservasjonsrett' }],
    },
    provision: { type: 'deny' },
  };
}

/** The answers (the Conditions' ICPC-2 codes) the store holds per person tag. */
export async function answersByTag(server: TestServer, token: string): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  let path: string | undefined =
    `Condition?code=${encodeURIComponent(`${TAG_SYSTEM}|`)}&_lastUpdated=ge${STARTED}&_count=1000`;
  while (path) {
    const reply: Reply<Bundle> = await call<Bundle>(server, token, 'GET', path);
    if (reply.status !== 200) {
      throw new Error(`search failed: ${reply.status} ${reply.text}`);
    }
    for (const entry of reply.body.entry ?? []) {
      // On a shared HAPI server other tests' Conditions carry ICD-10 codes too: only a tag with an answer
      // is one of these fixtures'.
      const codings = (entry.resource as Condition).code?.coding ?? [];
      const tag = codings.find((c) => c.system === TAG_SYSTEM)?.code;
      const answer = codings.find((c) => c.system === ANSWER_SYSTEM)?.code;
      if (tag === undefined || answer === undefined) {
        continue;
      }
      if (!out.has(tag)) {
        out.set(tag, new Set());
      }
      out.get(tag)?.add(answer);
    }
    const next = reply.body.link?.find((l) => l.relation === 'next')?.url;
    path = next ? next.slice(server.baseUrl.length + 1) : undefined;
  }
  return out;
}

/** The operations of the reservation race (race.property.test.ts, test/replicas). */
export type RaceOpKind = 'submit' | 'submit-by-identifier' | 'reserve' | 'withdraw';

/**
 * Sends one race operation about the person with this fødselsnummer: a clinic's transaction or a Condition
 * naming them by identifier (carrying `answer` under the person's `tag`), or staff reserving or withdrawing
 * by letter. Returns the HTTP status.
 */
export async function sendRaceOp(
  server: TestServer,
  tokens: { clinic: string; admin: string },
  op: { kind: RaceOpKind; fnr: string; tag: string; answer: string },
): Promise<number> {
  const { fnr, tag, answer } = op;
  switch (op.kind) {
    case 'submit':
      return (
        await call(
          server,
          tokens.clinic,
          'POST',
          '',
          submission([{ system: FNR_SYSTEM, value: fnr }], tag, [answer]),
        )
      ).status;
    case 'submit-by-identifier':
      return (
        await call(
          server,
          tokens.clinic,
          'POST',
          'Condition',
          condition(tag, answer, { identifier: { system: FNR_SYSTEM, value: fnr } }),
        )
      ).status;
    case 'reserve':
      return (await call(server, tokens.admin, 'POST', 'Consent', reservation(fnr, { channel: 'letter' })))
        .status;
    case 'withdraw':
      return (
        await call(
          server,
          tokens.admin,
          'POST',
          'Consent',
          reservation(fnr, { status: 'inactive', channel: 'letter' }),
        )
      ).status;
  }
}
