import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { EmbeddedStore } from '../../src/store/embedded';
import { startTestServer, type TestServer } from '../helpers/testServer';
import { reservation } from '../consent/fixtures';
import {
  baseResource,
  channelsFor,
  DNR_SYSTEM,
  FNR_SYSTEM,
  personReference,
  placeMarkers,
  referenceForms,
  resourceTypes,
  writePlan,
  type FuzzType,
  type Person,
  type ReferenceForm,
  type WritePlan,
} from './generators';
import { bytesOf, filesUnder } from '../helpers/files';
import { embeddedInspector, hapiInspector, type StoreInspector } from './inspect';
import { findMarkers, MarkerMint, type Hit, type Marker } from './markers';

/**
 * The privacy fuzzer (issue 10): random resources of every accepted type, about synthetic persons, with
 * markers (national ids, names, phone numbers, addresses) in random elements of every primitive type, in
 * extensions, contained resources and references of every form, sent by every write channel through the
 * real HTTP server. A write may be refused (4xx, nothing stored); one that is stored must hold no marker.
 * After each write and each run: no marker in any file under DATA_DIR (WAL included, read as bytes), in
 * the server log, or in another principal's responses. Then the persons reserve themselves: nothing that
 * referred to them may remain (an independent scan of every stored version for their Patient ids,
 * pseudonyms and national ids), and no write about them is accepted in any channel or reference form.
 *
 * Fixed seed in CI. Longer, e.g.
 *   NORPAIN_PRIVACY_RUNS=20 NORPAIN_PRIVACY_SEED=$RANDOM npx jest test/privacy
 * With HAPI as the clinical store: TEST_STORE=hapi HAPI_URL=… (as test/http).
 * NORPAIN_PRIVACY_REPORT=file.json writes every finding with a reproducing request.
 */
const RUNS = Number(process.env.NORPAIN_PRIVACY_RUNS ?? 3);
const SEED = Number(process.env.NORPAIN_PRIVACY_SEED ?? 20261207);
const REPORT = process.env.NORPAIN_PRIVACY_REPORT;
const PERSONS = 3;
const OTHER_UNIT = '999002';
const REASON_PREFIX = 'Rettet etter samtale med';

/** One HTTP request as sent, to reproduce a finding. */
interface Sent {
  role: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
}

interface Reply {
  status: number;
  text: string;
  location?: string;
  body: unknown;
}

interface Finding {
  kind: string;
  detail: string;
  request?: Sent;
  status?: number;
}

/** Findings grouped by class; each class keeps its smallest reproducing request. */
class Findings {
  readonly classes = new Map<string, { count: number; example: Finding }>();

  add(key: string, finding: Finding): void {
    const existing = this.classes.get(key);
    const size = (f: Finding) => JSON.stringify(f.request ?? '').length;
    if (!existing) {
      this.classes.set(key, { count: 1, example: finding });
    } else {
      existing.count++;
      if (size(finding) < size(existing.example)) existing.example = finding;
    }
  }

  keys(): string[] {
    return [...this.classes.keys()].sort();
  }
}

/**
 * Sites where the registry keeps what it is sent and can recognise only a national id (refused or
 * blanked there): a name, phone number or address found from one of these is a known gap, listed in the
 * report under `knownGaps`, not a failure. A national id from them still fails.
 */
const KEPT_AS_SENT: Record<string, string> = {
  '$correct reason (Provenance.reason.text)':
    'the one free text the registry keeps (src/dictionary/README.md), national ids blanked',
  'identifier.system:uri':
    'a business identifier keeps its system (the value is hashed) so conditional updates find it',
  'Coding.code:code':
    'a code of a clinical terminology (ICD-10, ICPC-2, NKPK, SNOMED CT, LOINC, UCUM) is kept without a look-up: those terminologies are not held here (FHIR, HL7 and NorPain codes are checked)',
  'Patient.address.district:string':
    'Address.district, .state and .country are kept as free text, national ids blanked',
};

let server: TestServer;
let inspector: StoreInspector;
const tokens: Record<string, string> = {};
const findings = new Findings();
const knownGaps = new Findings();
const mint = new MarkerMint(SEED);
/** Every write, by number (markers name it). */
const requests: Sent[] = [];
let logMark = 0;

beforeAll(async () => {
  const started = new Date(Date.now() - 1000).toISOString();
  server = await startTestServer();
  const hapi = server.config.store.kind === 'hapi' ? server.config.store.url : undefined;
  inspector = hapi
    ? hapiInspector(hapi, [...resourceTypes, 'Provenance', 'Practitioner', 'RelatedPerson'], started)
    : embeddedInspector(server.dataDir);
  tokens.clinic = await server.token('clinic');
  tokens.admin = await server.token('registry-admin');
  tokens.otherClinic = await server.token('clinic', { org: OTHER_UNIT });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

async function send(request: Sent): Promise<Reply> {
  const token = tokens[request.role] ?? (await portalToken(request.role));
  const response = await fetch(`${server.baseUrl}/${request.path}`, {
    method: request.method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(request.body === undefined ? {} : { 'content-type': 'application/fhir+json' }),
      ...request.headers,
    },
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: response.status, text, body, location: response.headers.get('location') ?? undefined };
}

/** `portal:<fnr>` roles get a portal token for that person. */
async function portalToken(role: string): Promise<string> {
  const pid = role.slice('portal:'.length);
  tokens[role] = await server.token('portal', { pid });
  return tokens[role];
}

/** Ids a reply names: Location, or each Bundle entry's response.location. */
function locations(reply: Reply): string[] {
  const found: string[] = [];
  if (reply.location) found.push(reply.location);
  const bundle = reply.body as Bundle | undefined;
  if (bundle?.resourceType === 'Bundle') {
    for (const entry of bundle.entry ?? []) {
      if (entry.response?.location) found.push(entry.response.location);
    }
  }
  const resource = reply.body as Resource | undefined;
  // $correct answers with a Parameters of the corrected resource and its Provenance.
  const resources =
    resource?.resourceType === 'Parameters'
      ? (resource.parameter ?? []).flatMap((p) => (p.resource ? [p.resource] : []))
      : resource && resource.resourceType !== 'Bundle'
        ? [resource]
        : [];
  for (const r of resources) {
    if (r.id) found.push(`${r.resourceType}/${r.id}`);
  }
  return found.map((l) => /([A-Za-z]+\/[A-Za-z0-9\-.]+)(\/_history\/[^/]+)?$/.exec(l)?.[1] ?? l);
}

/** The class of a place where bytes were found. */
function placeOf(file: string): string {
  if (file.startsWith(EmbeddedStore.defaultFile(server.dataDir))) return 'store';
  const name = path.relative(server.dataDir, file);
  if (/vault|identity/.test(name)) return 'vault';
  if (/audit/.test(name)) return 'audit';
  return name.replace(/\.sqlite.*$/, '');
}

/** Scans every file under DATA_DIR and the new log lines for the markers. */
function scanDataAndLog(markers: readonly Marker[], logsFrom: number): Hit[] {
  if (!markers.length) return [];
  const hits: Hit[] = [];
  for (const file of filesUnder(server.dataDir)) {
    hits.push(...findMarkers(bytesOf(file), markers, placeOf(file)));
  }
  const log = server.logs.slice(logsFrom).map((l) => JSON.stringify(l));
  hits.push(...findMarkers(Buffer.from(log.join('\n')), markers, 'log'));
  return hits;
}

/** Marker and place pairs already reported: a marker is reported where it first appears. */
const seen = new Set<string>();

/** Reports new hits, attributed to the write after which they appeared (`write`), or, for the markers
 * of a write itself, to that write. */
function report(hits: Hit[], write?: number): void {
  for (const hit of hits) {
    const key = `${hit.marker.needle}@${hit.where}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const by =
      hit.marker.origin.site.startsWith('person ') && write !== undefined ? write : hit.marker.origin.write;
    const request = requests[by];
    const how = by === hit.marker.origin.write ? '' : ` (sent as ${formOf.get(by) ?? 'a reference'})`;
    const gap = hit.marker.kind === 'national-id' ? undefined : KEPT_AS_SENT[hit.marker.origin.site];
    (gap ? knownGaps : findings).add(`marker in ${hit.where}: ${hit.marker.origin.site}${how}`, {
      kind: 'marker',
      detail: `${hit.marker.kind} "${hit.marker.text}" (write #${by}) found in ${hit.where}`,
      request,
    });
  }
}

/** Whether a reply accepted anything: a 2xx, and for a batch, an entry with a 2xx. */
function accepted(reply: Reply): boolean {
  const bundle = reply.body as Bundle | undefined;
  if (reply.status < 300 && bundle?.resourceType === 'Bundle' && bundle.type === 'batch-response') {
    return (bundle.entry ?? []).some((e) => e.response?.status?.startsWith('2'));
  }
  return reply.status < 300;
}

/** The person markers of the current run: each write is also checked for them. */
let personMarkers: Marker[] = [];
/** The reference form each write named its person in. */
const formOf = new Map<number, string>();

/** Sends a write and checks it: no server error; refused → nothing stored; no marker left anywhere. */
async function checkedWrite(request: Sent, markers: Marker[], write: number, scan = true): Promise<Reply> {
  const before = await inspector.fingerprint?.();
  const logsFrom = server.logs.length;
  const reply = await send(request);
  if (reply.status >= 500) {
    findings.add(`server error ${reply.status} on ${describe(request)}`, {
      kind: 'server-error',
      detail: reply.text.slice(0, 300),
      request,
      status: reply.status,
    });
  } else if (!accepted(reply) && (await inspector.fingerprint?.()) !== before) {
    findings.add(`refused (${reply.status}) but stored: ${describe(request)}`, {
      kind: 'refused-but-stored',
      detail: reply.text.slice(0, 300),
      request,
      status: reply.status,
    });
  }
  if (scan) report(scanDataAndLog([...markers, ...personMarkers], logsFrom), write);
  return reply;
}

function describe(request: Sent): string {
  return `${request.method} ${request.path.replace(/\/[A-Za-z0-9\-.]{20,}/g, '/<id>').replace(/\?.*/, '?…')}`;
}

// ---------------------------------------------------------------------------------------------------

async function createPerson(index: number, run: number): Promise<Person> {
  const write = requests.length;
  const origin = (site: string) => ({ write, site: `person ${site}` });
  const person: Person = {
    fnr: mint.nationalId(origin('Patient.identifier (FNR)')),
    dnr: mint.nationalId(origin('Patient.identifier (DNR)'), 'dnr'),
    name: mint.mint('name', origin('Patient.name')),
    phone: mint.mint('phone', origin('Patient.telecom')),
    address: mint.mint('address', origin('Patient.address')),
    patientIds: [],
  };
  const placeholder = `urn:uuid:${randomUUID()}`;
  const patient = baseResource(
    'Patient',
    person,
    personReference('literal', person, { patientId: '', base: '' }),
    0,
  );
  (patient as { identifier: unknown[] }).identifier.push({ system: DNR_SYSTEM, value: person.dnr.text });
  const episode = baseResource(
    'EpisodeOfCare',
    person,
    personReference('urn-uuid', person, { patientId: '', placeholder, base: '' }),
    0,
  );
  const request: Sent = {
    role: 'clinic',
    method: 'POST',
    path: '',
    body: {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: placeholder, resource: patient, request: { method: 'POST', url: 'Patient' } },
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: episode,
          request: { method: 'POST', url: 'EpisodeOfCare' },
        },
      ],
    },
  };
  requests.push(request);
  aboutPerson.set(write, person);
  formOf.set(write, 'the registration transaction');
  personMarkers.push(person.fnr, person.dnr, person.name, person.phone, person.address);
  const reply = await checkedWrite(request, [], write);
  if (reply.status !== 200) {
    throw new Error(`run ${run}: person ${index} could not be registered: ${reply.status} ${reply.text}`);
  }
  person.patientIds.push(
    ...locations(reply)
      .filter((l) => l.startsWith('Patient/'))
      .map((l) => l.slice(8)),
  );
  return person;
}

interface Outcome {
  plan: WritePlan;
  reply: Reply;
  /** Resources the write stored (Type/id). */
  stored: string[];
}

/** Creates a clean resource of the type about the person, for update and $correct to start from. */
async function cleanResource(type: FuzzType, person: Person): Promise<string | undefined> {
  if (type === 'Patient') return person.patientIds[0];
  const ref = personReference('literal', person, { patientId: person.patientIds[0], base: server.baseUrl });
  const reply = await send({
    role: 'clinic',
    method: 'POST',
    path: type,
    body: baseResource(type, person, ref, 1),
  });
  if (reply.status !== 201) {
    findings.add(`generator: a clean ${type} was refused`, {
      kind: 'generator',
      detail: reply.text.slice(0, 400),
    });
    return undefined;
  }
  return locations(reply)[0]?.split('/')[1];
}

/** Builds the request(s) of a plan and sends them, checked. */
async function carryOut(
  plan: WritePlan,
  person: Person,
  options: { checkMarkers: boolean; startFrom?: Person; other?: Person },
): Promise<Outcome | undefined> {
  const write = requests.length;
  requests.push({ role: '', method: '', path: '' }); // filled in below, before anything is sent
  aboutPerson.set(write, person);
  const placeholder = `urn:uuid:${randomUUID()}`;
  const inTransaction = plan.channel === 'transaction';
  const form: ReferenceForm = plan.form === 'urn-uuid' && !inTransaction ? 'literal' : plan.form;
  const ref = personReference(form, person, {
    patientId: person.patientIds[0],
    placeholder: inTransaction ? placeholder : undefined,
    base: server.baseUrl,
  });
  const resource = baseResource(plan.type, person, ref, write) as Resource & Record<string, unknown>;
  const markers = options.checkMarkers ? placeMarkers(resource, plan, ref, mint, write) : [];
  if (plan.secondPerson && options.other && Array.isArray(resource.identifier)) {
    resource.identifier.push({ system: DNR_SYSTEM, value: options.other.dnr.text });
  }
  const extra = (site: string) => {
    const marker = mint.mint(plan.sites[0]?.kind ?? 'national-id', { write, site });
    markers.push(marker);
    return marker;
  };
  const code = (m: Marker) => m.text.replace(/ /g, '-');
  let request: Sent;
  const type = plan.type;
  switch (plan.channel) {
    case 'create':
      request = { role: 'clinic', method: 'POST', path: type, body: resource };
      break;
    case 'update': {
      const id = await cleanResource(type, options.startFrom ?? person);
      if (!id) return undefined;
      request = { role: 'clinic', method: 'PUT', path: `${type}/${id}`, body: { ...resource, id } };
      break;
    }
    case 'update-as-create': {
      const id = code(extra('client-chosen id (PUT Type/<id>)')).replace(/[^A-Za-z0-9\-.]/g, '');
      request = { role: 'clinic', method: 'PUT', path: `${type}/${id}`, body: { ...resource, id } };
      break;
    }
    case 'conditional-create':
    case 'conditional-update': {
      let query: string;
      if (type === 'Patient') {
        query = `identifier=${FNR_SYSTEM}|${person.fnr.text}`;
      } else {
        const value = code(extra(`${plan.channel} query (identifier=sys|<marker>)`));
        query = `identifier=urn:fuzz:ids|${value}`;
        const identifier = { system: 'urn:fuzz:ids', value };
        if (type === 'QuestionnaireResponse') resource.identifier = identifier;
        else resource.identifier = [...((resource.identifier as unknown[]) ?? []), identifier];
      }
      request =
        plan.channel === 'conditional-create'
          ? {
              role: 'clinic',
              method: 'POST',
              path: type,
              headers: { 'if-none-exist': query },
              body: resource,
            }
          : { role: 'clinic', method: 'PUT', path: `${type}?${query}`, body: resource };
      break;
    }
    case 'transaction': {
      const entries: unknown[] = [];
      if (type !== 'Patient') {
        const patient = baseResource(
          'Patient',
          person,
          personReference('literal', person, { patientId: '', base: '' }),
          0,
        );
        entries.push({
          fullUrl: placeholder,
          resource: patient,
          request: { method: 'PUT', url: `Patient?identifier=${FNR_SYSTEM}|${person.fnr.text}` },
        });
      }
      entries.push({ fullUrl: `urn:uuid:${randomUUID()}`, resource, request: { method: 'POST', url: type } });
      request = {
        role: 'clinic',
        method: 'POST',
        path: '',
        body: { resourceType: 'Bundle', type: 'transaction', entry: entries },
      };
      break;
    }
    case 'batch':
      request = {
        role: 'clinic',
        method: 'POST',
        path: '',
        body: {
          resourceType: 'Bundle',
          type: 'batch',
          entry: [{ resource, request: { method: 'POST', url: type } }],
        },
      };
      break;
    case 'portal':
      request = { role: `portal:${person.fnr.text}`, method: 'POST', path: type, body: resource };
      break;
    case 'correct': {
      const id = await cleanResource(type, options.startFrom ?? person);
      if (!id) return undefined;
      const reason = extra('$correct reason (Provenance.reason.text)');
      request = {
        role: 'admin',
        method: 'POST',
        path: `${type}/${id}/$correct`,
        body: {
          resourceType: 'Parameters',
          parameter: [
            { name: 'resource', resource: { ...resource, id } },
            { name: 'reason', valueString: `${REASON_PREFIX} ${reason.text}` },
          ],
        },
      };
      break;
    }
  }
  requests[write] = request;
  formOf.set(write, `${plan.form}, ${plan.type} by ${plan.channel}`);
  const tally = `${plan.type} by ${plan.channel}`;
  const reply = await checkedWrite(request, markers, write, options.checkMarkers);
  if (plan.secondPerson && options.other && accepted(reply)) {
    findings.add(`a Patient naming two registered persons was accepted (${plan.channel})`, {
      kind: 'merge',
      detail: `${reply.status}`,
      request,
      status: reply.status,
    });
  }
  const stored = accepted(reply) ? locations(reply) : [];
  if (options.checkMarkers) {
    const counts = (statistics[tally] ??= { accepted: 0, refused: 0, reasons: [] });
    counts[stored.length ? 'accepted' : 'refused']++;
    const reason = stored.length ? undefined : `${reply.status} ${outcomeText(reply)}`;
    if (reason && counts.reasons.length < 4 && !counts.reasons.includes(reason)) counts.reasons.push(reason);
  }
  if (stored.length) writtenBy.set(write, plan);
  for (const l of stored) writeThatStored.set(l, write);
  if (type === 'Patient') {
    for (const l of stored) {
      if (l.startsWith('Patient/') && !person.patientIds.includes(l.slice(8)))
        person.patientIds.push(l.slice(8));
    }
  }
  return { plan, reply, stored };
}

// ---------------------------------------------------------------------------------------------------

/** Other principals read everything they can; none may see a marker. */
async function otherPrincipalsSeeNothing(persons: Person[], markers: Marker[]): Promise<void> {
  const reads: Sent[] = [
    ...[...resourceTypes, 'Provenance'].map((t) => ({
      role: 'otherClinic',
      method: 'GET',
      path: `${t}?_count=500`,
    })),
    ...persons.map((p) => ({
      role: 'otherClinic',
      method: 'GET',
      path: `Patient?identifier=${encodeURIComponent(`${FNR_SYSTEM}|${p.fnr.text}`)}`,
    })),
  ];
  for (const request of reads) {
    const reply = await send(request);
    for (const hit of findMarkers(Buffer.from(withoutEcho(reply)), markers, 'response to another unit')) {
      findings.add(`marker in a response to another unit: ${hit.marker.origin.site}`, {
        kind: 'other-principal',
        detail: `${describe(request)} shows ${hit.marker.kind} from write #${hit.marker.origin.write}`,
        request: requests[hit.marker.origin.write],
      });
    }
  }
  // Each person's own portal: nothing of the other persons.
  for (const person of persons) {
    const reply = await send({
      role: `portal:${person.fnr.text}`,
      method: 'GET',
      path: 'Patient/$everything',
    });
    const others = markers.filter((m) => !isAbout(m, person));
    for (const hit of findMarkers(Buffer.from(reply.text), others, "another person's portal")) {
      findings.add(`marker in another person's portal: ${hit.marker.origin.site}`, {
        kind: 'other-principal',
        detail: `Patient/$everything shows ${hit.marker.kind} from write #${hit.marker.origin.write}`,
        request: requests[hit.marker.origin.write],
      });
    }
  }
}

/** A reply without what only repeats the request (a search Bundle's self link echoes the query, which
 * may name a national id the reader sent): what the reader did not already know. */
function withoutEcho(reply: Reply): string {
  const body = reply.body as Bundle | undefined;
  return body?.resourceType === 'Bundle' ? JSON.stringify({ ...body, link: undefined }) : reply.text;
}

const aboutPerson = new Map<number, Person>();
function isAbout(marker: Marker, person: Person): boolean {
  return aboutPerson.get(marker.origin.write) === person;
}

/** What the store knows a person by: Patient ids and pseudonyms (read before the reservation). */
async function storeNames(person: Person): Promise<string[]> {
  const names = new Set(person.patientIds);
  for (const system of [FNR_SYSTEM, DNR_SYSTEM]) {
    const value = system === FNR_SYSTEM ? person.fnr.text : person.dnr.text;
    const reply = await send({
      role: 'admin',
      method: 'GET',
      path: `Patient?identifier=${encodeURIComponent(`${system}|${value}`)}`,
    });
    for (const entry of (reply.body as Bundle | undefined)?.entry ?? []) {
      const patient = entry.resource as { id?: string; identifier?: { value?: string }[] };
      if (patient.id) names.add(patient.id);
      for (const identifier of patient.identifier ?? []) {
        if (identifier.value) names.add(identifier.value);
      }
    }
  }
  return [...names].filter((n) => n.length >= 8);
}

async function reserveAndCheck(persons: Person[], stored: Map<Person, string[]>): Promise<void> {
  const names = new Map<Person, string[]>();
  for (const person of persons) names.set(person, await storeNames(person));
  // No two persons share a Patient or a pseudonym (a silent merge).
  for (const [i, a] of persons.entries()) {
    for (const b of persons.slice(i + 1)) {
      if (names.get(a)?.some((n) => names.get(b)?.includes(n))) {
        findings.add('two registered persons were merged into one Patient', {
          kind: 'merge',
          detail: "a Patient search by one person's national id finds the other's Patient",
        });
      }
    }
  }
  for (const person of persons) {
    const request: Sent = {
      role: 'admin',
      method: 'POST',
      path: 'Consent',
      body: reservation(person.fnr.text, { channel: 'letter' }),
    };
    const reply = await send(request);
    if (reply.status !== 201 && reply.status !== 200) {
      findings.add(`reservation failed with ${reply.status}`, {
        kind: 'reservation',
        detail: reply.text.slice(0, 300),
        request,
      });
    }
  }
  // The independent check: every stored version, read past the server.
  const versions = await inspector.versions();
  for (const person of persons) {
    const needles = [...(names.get(person) ?? []), person.fnr.text, person.dnr.text];
    for (const version of versions) {
      const found = needles.find((n) => version.json.includes(n));
      if (found) {
        const write = [...aboutPerson.entries()].find(([, p]) => p === person)?.[0];
        findings.add(`survives the reservation: ${version.type} (${classifyResidual(version.json, found)})`, {
          kind: 'residual',
          detail: `${version.type}/${version.id}/_history/${version.version} still holds ${found === person.fnr.text || found === person.dnr.text ? 'the national id' : 'a Patient id or pseudonym'}: ${version.json.slice(0, 400)}`,
          request: write === undefined ? undefined : requests[write],
        });
      }
    }
    for (const resource of stored.get(person) ?? []) {
      const [type, id] = resource.split('/');
      const left = versions.find((v) => v.type === type && v.id === id);
      const by = writeThatStored.get(resource);
      if (left && by !== undefined) {
        findings.add(
          `survives the reservation: ${type} stored with the person as ${writtenBy.get(by)?.form}`,
          {
            kind: 'residual',
            detail: `${type}/${id}: ${left.json.slice(0, 400)}`,
            request: requests[by],
          },
        );
      }
    }
    // And as bytes in the store's files (deleted rows, WAL).
    for (const file of inspector.files()) {
      const bytes = fs.readFileSync(file);
      for (const needle of needles) {
        const at = bytes.indexOf(needle);
        if (at >= 0) {
          const what = [person.fnr.text, person.dnr.text].includes(needle)
            ? 'the national id'
            : person.patientIds.includes(needle)
              ? 'a Patient id'
              : 'a pseudonym';
          const around = bytes
            .subarray(Math.max(0, at - 120), at + needle.length + 120)
            .toString('latin1')
            .replace(/[^\x20-\x7e]/g, '.');
          findings.add(`bytes survive the reservation in ${path.basename(file)}`, {
            kind: 'residual-bytes',
            detail: `${what} of a reserved person, at byte ${at}: ${around}`,
          });
        }
      }
    }
  }
}

/** How a residual refers to the person, for the class name: the JSON member holding the needle, with the
 * needle and any UUID replaced. */
function classifyResidual(json: string, needle: string): string {
  const at = json.indexOf(needle);
  const start = json.lastIndexOf('"', json.lastIndexOf('"', at) - 1);
  const member = /"([^"]*)":\s*"([^"]*)$/.exec(json.slice(Math.max(0, start - 40), at))?.[0] ?? '';
  return `${member}<person>`.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<id>');
}

const writeThatStored = new Map<string, number>();
const writtenBy = new Map<number, WritePlan>();
/** Writes accepted and refused by type and channel, for the report: a fuzzer whose writes are all
 * refused tests little. */
const statistics: Record<string, { accepted: number; refused: number; reasons: string[] }> = {};

/** The first diagnostics of a refusal (of a batch: of its first entry), shortened. */
function outcomeText(reply: Reply): string {
  const body = reply.body as
    | {
        issue?: { diagnostics?: string; details?: { text?: string } }[];
        entry?: { response?: { outcome?: unknown } }[];
      }
    | undefined;
  const outcome = (body?.entry?.[0]?.response?.outcome ?? body) as typeof body;
  const first = outcome?.issue?.[0];
  return (first?.details?.text ?? first?.diagnostics ?? '').slice(0, 160);
}

/** After the reservation: every channel and every reference form again, each refused, the store unchanged. */
async function noWriteAccepted(person: Person, carrier: Person): Promise<void> {
  const plans: WritePlan[] = [];
  for (const form of referenceForms) {
    for (const channel of channelsFor('Condition')) {
      plans.push({ person: 0, type: 'Condition', channel, form, sites: [] });
    }
  }
  for (const form of ['literal', 'logical-upper-case-system', 'logical-dnr'] as const) {
    for (const channel of channelsFor('Patient')) {
      plans.push({ person: 0, type: 'Patient', channel, form, sites: [] });
    }
  }
  plans.push({ person: 0, type: 'QuestionnaireResponse', channel: 'portal', form: 'literal', sites: [] });
  for (const plan of plans) {
    // update and $correct start from a resource of another, unreserved person (a Patient: the erased one).
    const outcome = await carryOut(plan, person, { checkMarkers: false, startFrom: carrier });
    if (outcome && accepted(outcome.reply)) {
      findings.add(
        `accepted after the reservation: ${plan.type} by ${plan.channel}, person as ${plan.form}`,
        {
          kind: 'reinclusion',
          detail: `${outcome.reply.status}`,
          request: requests[requests.length - 1],
          status: outcome.reply.status,
        },
      );
    }
  }
}

test('no marker is stored, logged or shown to another principal; a reservation leaves nothing and lets nothing in', async () => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(writePlan(PERSONS), { minLength: 12, maxLength: 24 }), async (plans) => {
      run++;
      personMarkers = [];
      const firstMarker = mint.minted.length;
      const persons: Person[] = [];
      for (let i = 0; i < PERSONS; i++) persons.push(await createPerson(i, run));
      const carrier = await createPerson(PERSONS, run);
      const stored = new Map<Person, string[]>(persons.map((p) => [p, []]));
      for (const plan of plans) {
        const person = persons[plan.person];
        const other = persons[(plan.person + 1) % PERSONS];
        const outcome = await carryOut(plan, person, { checkMarkers: true, other });
        if (outcome) stored.get(person)?.push(...outcome.stored);
      }
      const runMarkers = mint.minted.slice(firstMarker);
      // The whole run again, also after the server's own writes settled.
      report(scanDataAndLog(runMarkers, logMark));
      if (!inspector.files().length) {
        // HAPI: the stored versions, as the store returns them.
        const json = (await inspector.versions()).map((v) => v.json).join('\n');
        report(findMarkers(Buffer.from(json), runMarkers, 'store (HAPI)'));
      }
      logMark = server.logs.length;
      await otherPrincipalsSeeNothing(persons, runMarkers);
      await reserveAndCheck(persons, stored);
      await noWriteAccepted(persons[run % PERSONS], carrier);
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );
  if (REPORT) {
    fs.writeFileSync(
      REPORT,
      JSON.stringify(
        {
          statistics,
          findings: [...findings.classes.entries()].map(([key, v]) => ({
            key,
            count: v.count,
            ...v.example,
          })),
          knownGaps: [...knownGaps.classes.entries()].map(([key, v]) => ({
            key,
            why: KEPT_AS_SENT[key.replace(/^marker in [^:]*: /, '')],
            count: v.count,
            ...v.example,
          })),
        },
        null,
        2,
      ),
    );
  }
  expect(findings.keys()).toEqual([]);
}, 600_000);
