import fc from 'fast-check';
import type { Questionnaire, Resource } from '@medplum/fhirtypes';
import { clinicalResourceTypes, type ClinicalResourceType } from '../../src/dictionary/dictionary';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire';
import { fillResponse } from '../validation/responses';
import type { Marker, MarkerKind, MarkerMint } from './markers';

/**
 * Generators of the privacy fuzzer (test/privacy/privacy.fuzz.test.ts): plans of writes, each a valid
 * resource of a type the registry accepts, about one synthetic person, with markers (national ids, names,
 * phone numbers, addresses) placed in elements of every primitive type, in extensions, in contained
 * resources and in references, sent by one of the write channels with the person named in one of the
 * reference forms. Plans are plain data, so fast-check prints and replays them; markers are minted when a
 * plan is carried out.
 */

export const FNR_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.4.1';
export const DNR_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.4.2';
export const RESH_SYSTEM = 'urn:oid:2.16.578.1.12.4.1.4.102';
export const UNIT = '999001';
const ICD10 = 'urn:oid:2.16.578.1.12.4.1.1.7110';
const NCSP = 'urn:oid:2.16.578.1.12.4.1.1.7275';
const FUZZ_EXTENSION = 'https://norpain.no/fhir/StructureDefinition/fuzz-unknown';

/** The person data the clinics and the portal send, as the data dictionary lists them. */
export const resourceTypes = clinicalResourceTypes;
export type FuzzType = ClinicalResourceType;

export const channels = [
  'create',
  'update',
  'update-as-create',
  'conditional-create',
  'conditional-update',
  'transaction',
  'batch',
  'portal',
  'correct',
] as const;
export type Channel = (typeof channels)[number];

/**
 * How a write names its person: for a clinical resource, the form of its subject/patient reference; for a
 * Patient, the form of its national identifier.
 */
export const referenceForms = [
  'literal',
  'lower-case-type',
  'trailing-slash',
  'versioned',
  'absolute-own-base',
  'absolute-other-server',
  'conditional',
  'conditional-encoded',
  'conditional-extra-parameter',
  'conditional-upper-case-system',
  'logical-identifier',
  'logical-upper-case-system',
  'logical-dnr',
  'urn-uuid',
  'contained',
] as const;
export type ReferenceForm = (typeof referenceForms)[number];

/** Where an extension with a marker stands. */
export const extensionPositions = ['resource', 'element', 'primitive', 'nested', 'modifier'] as const;
export type ExtensionPosition = (typeof extensionPositions)[number];

/** The person a write is about, as the fuzzer knows it. */
export interface Person {
  fnr: Marker;
  dnr: Marker;
  name: Marker;
  phone: Marker;
  address: Marker;
  /** Patient ids the server gave this person's Patients. */
  patientIds: string[];
}

export interface SitePlan {
  site: string;
  kind: MarkerKind;
  position: ExtensionPosition;
}

export interface WritePlan {
  person: number;
  type: FuzzType;
  channel: Channel;
  form: ReferenceForm;
  sites: SitePlan[];
  /** A Patient that also carries another registered person's D-number (two persons in one write). */
  secondPerson?: boolean;
}

type Node = Record<string, unknown>;

/** Formats a marker for an element of a FHIR primitive type. */
const as = {
  string: (m: Marker) => `opplysning: ${m.text}.`,
  code: (m: Marker) => m.text.replace(/ /g, '-'),
  id: (m: Marker) => m.text.replace(/ /g, '-'),
  uri: (m: Marker) => `urn:fuzz:${m.text.replace(/ /g, '-')}`,
  url: (m: Marker) => `https://fuzz.example.org/${m.text.replace(/ /g, '-')}`,
  oid: (m: Marker) => `urn:oid:2.16.578.1.${m.text.replace(/\D/g, '') || '0'}`,
  integer: (m: Marker) => Number(m.text.replace(/\D/g, '') || '0'),
};

function array<T = Node>(node: Node, key: string): T[] {
  const existing = node[key];
  if (Array.isArray(existing)) {
    return existing as T[];
  }
  const created: T[] = [];
  node[key] = created;
  return created;
}

function object(node: Node, key: string): Node {
  const existing = node[key];
  if (existing && typeof existing === 'object' && !Array.isArray(existing)) {
    return existing as Node;
  }
  const created: Node = {};
  node[key] = created;
  return created;
}

/** The element of each type that holds a CodeableConcept worth coding, created when absent. */
function codeableSlot(resource: Node): Node {
  switch (resource.resourceType as FuzzType) {
    case 'Patient':
      return object(resource, 'maritalStatus');
    case 'EpisodeOfCare':
    case 'Encounter': {
      const list = array(resource, 'type');
      if (!list.length) list.push({});
      return list[0];
    }
    case 'Condition':
    case 'Procedure':
      return object(resource, 'code');
    case 'QuestionnaireResponse': {
      const ext: Node = { url: FUZZ_EXTENSION, valueCodeableConcept: {} };
      array(resource, 'extension').push(ext);
      return ext.valueCodeableConcept as Node;
    }
  }
}

/** A Reference element to another actor (a health professional), created when absent. */
function actorSlot(resource: Node): Node {
  const ref: Node = {};
  switch (resource.resourceType as FuzzType) {
    case 'Patient':
      array(resource, 'generalPractitioner').push(ref);
      break;
    case 'EpisodeOfCare':
      resource.careManager = ref;
      break;
    case 'Encounter':
      array(resource, 'participant').push({ individual: ref });
      break;
    case 'Condition':
      resource.asserter = ref;
      break;
    case 'Procedure':
      array(resource, 'performer').push({ actor: ref });
      break;
    case 'QuestionnaireResponse':
      resource.author = ref;
      break;
  }
  return ref;
}

/** The first answered item of a QuestionnaireResponse (its item carries text and definition). */
function firstAnswered(resource: Node): Node | undefined {
  const walk = (items: Node[] | undefined): Node | undefined => {
    for (const item of items ?? []) {
      if (Array.isArray(item.answer) && item.answer.length) return item;
      const inner = walk(item.item as Node[] | undefined);
      if (inner) return inner;
    }
    return undefined;
  };
  return walk(resource.item as Node[] | undefined);
}

/** The value[x] an extension carries for a marker, by FHIR data type. */
const extensionValues: Record<string, (m: Marker, person: PersonReference) => Node> = {
  valueString: (m) => ({ valueString: as.string(m) }),
  valueCode: (m) => ({ valueCode: as.code(m) }),
  valueUri: (m) => ({ valueUri: as.uri(m) }),
  valueUrl: (m) => ({ valueUrl: as.url(m) }),
  valueCanonical: (m) => ({ valueCanonical: as.url(m) }),
  valueId: (m) => ({ valueId: as.id(m) }),
  valueMarkdown: (m) => ({ valueMarkdown: `**${m.text}**` }),
  valueOid: (m) => ({ valueOid: as.oid(m) }),
  valueInteger: (m) => ({ valueInteger: as.integer(m) }),
  valueDecimal: (m) => ({ valueDecimal: as.integer(m) }),
  valueCodingCode: (m) => ({ valueCoding: { system: 'urn:fuzz:codes', code: as.code(m) } }),
  valueCodingDisplay: (m) => ({ valueCoding: { system: ICD10, code: 'R52', display: as.string(m) } }),
  valueCodeableConceptText: (m) => ({ valueCodeableConcept: { text: as.string(m) } }),
  valueIdentifier: (m) => ({ valueIdentifier: { system: 'urn:fuzz:ids', value: as.code(m) } }),
  valueIdentifierFnrSystem: (m) => ({ valueIdentifier: { system: FNR_SYSTEM, value: as.code(m) } }),
  valueHumanName: (m) => ({ valueHumanName: { family: m.text, given: ['Kari'] } }),
  valueAddress: (m) => ({ valueAddress: { line: [m.text], city: 'Trondheim' } }),
  valueAddressDistrict: (m) => ({ valueAddress: { district: m.text } }),
  valueContactPoint: (m) => ({ valueContactPoint: { system: 'phone', value: m.text } }),
  valueAnnotation: (m) => ({ valueAnnotation: { text: as.string(m) } }),
  valueReferenceDisplay: (m) => ({ valueReference: { display: as.string(m) } }),
  valueReferencePractitioner: (m) => ({ valueReference: { reference: `Practitioner/${as.id(m)}` } }),
  valueReferenceIdentifier: (m) => ({
    valueReference: { identifier: { system: FNR_SYSTEM, value: as.code(m) } },
  }),
  /** The person again, in the write's reference form, inside an extension (and a marker beside it). */
  valueReferencePerson: (m, person) => ({ valueReference: { ...person.reference, display: as.string(m) } }),
  url: () => ({ valueBoolean: true }),
};

/** Puts an extension at the planned position. */
function placeExtension(resource: Node, position: ExtensionPosition, extension: Node): void {
  switch (position) {
    case 'resource':
      array(resource, 'extension').push(extension);
      return;
    case 'element':
      array(object(resource, 'meta'), 'extension').push(extension);
      return;
    case 'primitive': {
      // On a primitive element present in every type: the status (Patient: gender), as `_status`.
      const key = resource.resourceType === 'Patient' ? '_gender' : '_status';
      array(object(resource, key), 'extension').push(extension);
      return;
    }
    case 'nested':
      array(resource, 'extension').push({ url: FUZZ_EXTENSION, extension: [{ ...extension, url: 'part' }] });
      return;
    case 'modifier':
      array(resource, 'modifierExtension').push(extension);
      return;
  }
}

/** What a site needs of the write: the person's reference in the write's form. */
export interface PersonReference {
  reference: Node;
  contained?: Node;
}

type Place = (resource: Node, m: Marker, plan: SitePlan, person: PersonReference) => void;

/**
 * Every place a marker can go. Named `path:datatype` for the report. Sites that do not fit a type fall
 * back to an extension of the same data type, so every site applies to every type.
 */
export const sites: Record<string, Place> = {
  'meta.tag.code:code': (r, m) =>
    array(object(r, 'meta'), 'tag').push({ system: 'urn:fuzz:tag', code: as.code(m) }),
  'meta.tag.display:string': (r, m) =>
    array(object(r, 'meta'), 'tag').push({ system: 'urn:fuzz:tag', code: 'x', display: m.text }),
  'meta.tag.system:uri': (r, m) => array(object(r, 'meta'), 'tag').push({ system: as.uri(m), code: 'x' }),
  'meta.security.code:code': (r, m) =>
    array(object(r, 'meta'), 'security').push({ system: 'urn:fuzz:security', code: as.code(m) }),
  'meta.source:uri': (r, m) => {
    object(r, 'meta').source = as.uri(m);
  },
  'meta.profile:canonical': (r, m) => array<string>(object(r, 'meta'), 'profile').push(as.url(m)),
  'language:code': (r, m) => {
    r.language = as.code(m);
  },
  'text.div:xhtml': (r, m) => {
    r.text = { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${m.text}</div>` };
  },
  'identifier.value:string': (r, m) => pushIdentifier(r, { system: 'urn:fuzz:ids', value: as.code(m) }),
  'identifier.system:uri': (r, m) => pushIdentifier(r, { system: as.uri(m), value: 'x1' }),
  'identifier.fnr-system:string': (r, m) => pushIdentifier(r, { system: FNR_SYSTEM, value: as.code(m) }),
  'identifier.type.text:string': (r, m) =>
    pushIdentifier(r, { system: 'urn:fuzz:ids', value: 'x2', type: { text: m.text } }),
  'CodeableConcept.text:string': (r, m) => {
    codeableSlot(r).text = as.string(m);
  },
  'Coding.display:string': (r, m) =>
    array(codeableSlot(r), 'coding').push({ system: ICD10, code: 'R52', display: as.string(m) }),
  'Coding.code:code': (r, m) => array(codeableSlot(r), 'coding').push({ system: ICD10, code: as.code(m) }),
  'Coding.system:uri': (r, m) => array(codeableSlot(r), 'coding').push({ system: as.uri(m), code: 'R52' }),
  'Annotation.text:markdown': (r, m) => {
    if (r.resourceType === 'Condition' || r.resourceType === 'Procedure') {
      array(r, 'note').push({ text: m.text, authorString: 'Dr. Lege' });
    } else {
      array(r, 'extension').push({ url: FUZZ_EXTENSION, valueAnnotation: { text: m.text } });
    }
  },
  'subject.display:string': (r, m) => {
    const ref = personReferenceElement(r);
    if (ref) ref.display = m.text;
    else array(r, 'extension').push({ url: FUZZ_EXTENSION, valueReference: { display: m.text } });
  },
  'actor.reference:reference': (r, m) => {
    actorSlot(r).reference = `Practitioner/${as.id(m)}`;
  },
  'actor.identifier:Identifier': (r, m) => {
    actorSlot(r).identifier = { system: FNR_SYSTEM, value: as.code(m) };
  },
  'actor.display:string': (r, m) => {
    actorSlot(r).display = m.text;
  },
  'contained.Practitioner:resource': (r, m) => {
    array(r, 'contained').push({
      resourceType: 'Practitioner',
      id: 'prac1',
      name: [{ family: m.text }],
      telecom: [{ system: 'phone', value: m.text }],
      address: [{ line: [m.text] }],
      identifier: [{ system: FNR_SYSTEM, value: m.text }],
    });
    actorSlot(r).reference = '#prac1';
  },
  'contained.RelatedPerson:resource': (r, m, _plan, person) => {
    array(r, 'contained').push({
      resourceType: 'RelatedPerson',
      id: 'rel1',
      patient: person.reference,
      name: [{ text: m.text }],
      telecom: [{ system: 'phone', value: m.text }],
    });
    array(r, 'extension').push({ url: FUZZ_EXTENSION, valueReference: { reference: '#rel1' } });
  },
  'Patient.name:HumanName': (r, m) => {
    if (r.resourceType === 'Patient') array(r, 'name').push({ family: m.text, given: ['Kari'] });
    else array(r, 'extension').push({ url: FUZZ_EXTENSION, valueHumanName: { family: m.text } });
  },
  'Patient.telecom:ContactPoint': (r, m) => {
    const point = { system: 'phone', value: m.text };
    if (r.resourceType === 'Patient') array(r, 'telecom').push(point);
    else array(r, 'extension').push({ url: FUZZ_EXTENSION, valueContactPoint: point });
  },
  'Patient.address.line:Address': (r, m) => {
    const address = { line: [m.text], postalCode: '7030', city: 'Trondheim' };
    if (r.resourceType === 'Patient') array(r, 'address').push(address);
    else array(r, 'extension').push({ url: FUZZ_EXTENSION, valueAddress: address });
  },
  'Patient.address.district:string': (r, m) => {
    if (r.resourceType === 'Patient') array(r, 'address').push({ district: m.text, city: m.text });
    else array(r, 'extension').push({ url: FUZZ_EXTENSION, valueAddress: { district: m.text } });
  },
  'Patient.contact.name:HumanName': (r, m) => {
    if (r.resourceType === 'Patient') array(r, 'contact').push({ name: { text: m.text } });
    else array(r, 'extension').push({ url: FUZZ_EXTENSION, valueHumanName: { text: m.text } });
  },
  'item.text:string': (r, m) => {
    const item = firstAnswered(r);
    if (item) item.text = m.text;
    else codeableSlot(r).text = m.text;
  },
  'item.definition:uri': (r, m) => {
    const item = firstAnswered(r);
    if (item) item.definition = as.uri(m);
    else array(r, 'extension').push({ url: FUZZ_EXTENSION, valueUri: as.uri(m) });
  },
  'answer.valueString:string': (r, m) => {
    const item = firstAnswered(r);
    if (item) (item.answer as Node[]).push({ valueString: m.text });
    else array(r, 'extension').push({ url: FUZZ_EXTENSION, valueString: m.text });
  },
  'answer.valueCoding.display:string': (r, m) => {
    const answer = (firstAnswered(r)?.answer as Node[] | undefined)?.[0];
    if (answer?.valueCoding) (answer.valueCoding as Node).display = m.text;
    else array(codeableSlot(r), 'coding').push({ system: ICD10, code: 'R52', display: m.text });
  },
  'unknown-element:json': (r, m) => {
    r.fuzzElement = m.text;
  },
  ...Object.fromEntries(
    Object.entries(extensionValues).map(([name, value]): [string, Place] => [
      `extension.${name}`,
      (r, m, plan, person) =>
        placeExtension(
          r,
          plan.position,
          name === 'url'
            ? { url: `${FUZZ_EXTENSION}/${as.id(m)}`, valueBoolean: true }
            : { url: FUZZ_EXTENSION, ...value(m, person) },
        ),
    ]),
  ),
};
export const siteNames = Object.keys(sites);

function pushIdentifier(resource: Node, identifier: Node): void {
  if (resource.resourceType === 'QuestionnaireResponse') {
    // QuestionnaireResponse.identifier is 0..1.
    resource.identifier = identifier;
  } else {
    array(resource, 'identifier').push(identifier);
  }
}

/** The element that names the person: subject, or patient for EpisodeOfCare. */
export function personReferenceElement(resource: Node): Node | undefined {
  const key = resource.resourceType === 'EpisodeOfCare' ? 'patient' : 'subject';
  return resource[key] as Node | undefined;
}

// ---------------------------------------------------------------------------------------------------
// Base resources: valid, before any marker.

const questionnaires = readNorPainQuestionnaires();
const clinicianQuestionnaire = questionnaires.find((q) => q.url?.endsWith('/norpain-clinician-episode'));
const patientQuestionnaires = questionnaires.filter((q) => q !== clinicianQuestionnaire);

/** A valid resource of the type about the person (reference in `person`), with nothing identifying in it
 * but the Patient's own identifiers, name, phone and address (markers of the person). */
export function baseResource(
  type: FuzzType,
  person: Person,
  ref: PersonReference,
  variant: number,
): Resource {
  const subject = { ...ref.reference };
  const contained = ref.contained ? { contained: [ref.contained] } : {};
  switch (type) {
    case 'Patient':
      return {
        resourceType: 'Patient',
        identifier: [patientIdentifier(person, ref)],
        name: [{ family: person.name.text, given: ['Kari'] }],
        telecom: [{ system: 'phone', value: person.phone.text, use: 'mobile' }],
        address: [{ line: [person.address.text], postalCode: '7030', city: 'Trondheim' }],
        gender: 'female',
        birthDate: '1980-01-15',
      } as Resource;
    case 'EpisodeOfCare':
      return {
        resourceType: 'EpisodeOfCare',
        ...contained,
        extension: [
          { url: 'https://norpain.no/fhir/StructureDefinition/referral-date', valueDate: '2024-03-01' },
        ],
        status: 'active',
        patient: subject,
        managingOrganization: { identifier: { system: RESH_SYSTEM, value: UNIT } },
        period: { start: '2024-03-04' },
      } as Resource;
    case 'Encounter':
      return {
        resourceType: 'Encounter',
        ...contained,
        status: 'finished',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
        subject,
        serviceProvider: { identifier: { system: RESH_SYSTEM, value: UNIT } },
        period: { start: '2024-03-04T10:00:00+01:00', end: '2024-03-04T11:00:00+01:00' },
      } as Resource;
    case 'Condition':
      return {
        resourceType: 'Condition',
        ...contained,
        clinicalStatus: {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }],
        },
        code: { coding: [{ system: ICD10, code: 'M79.7' }] },
        subject,
        recordedDate: '2024-03-04',
      } as Resource;
    case 'Procedure':
      return {
        resourceType: 'Procedure',
        ...contained,
        status: 'completed',
        code: { coding: [{ system: NCSP, code: 'AAXX' }] },
        subject,
        performedDateTime: '2024-03-05',
      } as Resource;
    case 'QuestionnaireResponse': {
      const q = patientQuestionnaires[variant % patientQuestionnaires.length] as Questionnaire;
      return { ...fillResponse(q, {}, variant), ...contained, subject } as Resource;
    }
  }
}

/** The Patient's national identifier in the planned form. */
function patientIdentifier(person: Person, ref: PersonReference): Node {
  const form = ref.patientForm ?? 'literal';
  switch (form) {
    case 'conditional-upper-case-system':
    case 'logical-upper-case-system':
      return { system: FNR_SYSTEM.toUpperCase(), value: person.fnr.text };
    case 'logical-dnr':
      return { system: DNR_SYSTEM, value: person.dnr.text };
    default:
      return { system: FNR_SYSTEM, value: person.fnr.text };
  }
}

export interface PersonReference {
  patientForm?: ReferenceForm;
}

/**
 * The person's reference in a form. `patientId` is a Patient id the server gave the person; `placeholder`
 * the urn:uuid of the Patient entry of the same transaction; `base` this server's FHIR base.
 */
export function personReference(
  form: ReferenceForm,
  person: Person,
  context: { patientId: string; placeholder?: string; base: string },
): PersonReference {
  const id = context.patientId;
  const fnr = person.fnr.text;
  const ref = (reference: string): PersonReference => ({ reference: { reference }, patientForm: form });
  switch (form) {
    case 'literal':
      return ref(`Patient/${id}`);
    case 'lower-case-type':
      return ref(`patient/${id}`);
    case 'trailing-slash':
      return ref(`Patient/${id}/`);
    case 'versioned':
      return ref(`Patient/${id}/_history/1`);
    case 'absolute-own-base':
      return ref(`${context.base}/Patient/${id}`);
    case 'absolute-other-server':
      return ref(`https://other.example.org/fhir/Patient/${id}`);
    case 'conditional':
      return ref(`Patient?identifier=${FNR_SYSTEM}|${fnr}`);
    case 'conditional-encoded':
      return ref(`Patient?identifier=${encodeURIComponent(`${FNR_SYSTEM}|${fnr}`)}`);
    case 'conditional-extra-parameter':
      return ref(`Patient?identifier=${FNR_SYSTEM}|${fnr}&_count=1`);
    case 'conditional-upper-case-system':
      return ref(`Patient?identifier=${FNR_SYSTEM.toUpperCase()}|${fnr}`);
    case 'logical-identifier':
      return { reference: { identifier: { system: FNR_SYSTEM, value: fnr } }, patientForm: form };
    case 'logical-upper-case-system':
      return {
        reference: { identifier: { system: FNR_SYSTEM.toUpperCase(), value: fnr } },
        patientForm: form,
      };
    case 'logical-dnr':
      return { reference: { identifier: { system: DNR_SYSTEM, value: person.dnr.text } }, patientForm: form };
    case 'urn-uuid':
      return context.placeholder ? ref(context.placeholder) : ref(`Patient/${id}`);
    case 'contained':
      return {
        reference: { reference: '#pat1' },
        contained: {
          resourceType: 'Patient',
          id: 'pat1',
          identifier: [{ system: FNR_SYSTEM, value: fnr }],
          name: [{ family: person.name.text }],
        },
        patientForm: form,
      };
  }
}

/** Places the planned markers in a resource; returns the markers placed. */
export function placeMarkers(
  resource: Resource,
  plan: WritePlan,
  person: PersonReference,
  mint: MarkerMint,
  write: number,
): Marker[] {
  const placed: Marker[] = [];
  for (const site of plan.sites) {
    const where = site.site.startsWith('extension.') ? `${site.site}@${site.position}` : site.site;
    const marker = mint.mint(site.kind, { write, site: where });
    sites[site.site](resource as unknown as Node, marker, site, person);
    placed.push(marker);
  }
  return placed;
}

// ---------------------------------------------------------------------------------------------------
// fast-check arbitraries.

const markerKinds: MarkerKind[] = ['national-id', 'name', 'phone', 'address'];

export const sitePlan: fc.Arbitrary<SitePlan> = fc.record({
  site: fc.constantFrom(...siteNames),
  kind: fc.constantFrom(...markerKinds),
  position: fc.constantFrom(...extensionPositions),
});

/** Channels that fit a type: the portal writes only QuestionnaireResponses, a Patient is not corrected. */
function channelsFor(type: FuzzType): Channel[] {
  return channels.filter(
    (c) => (c !== 'portal' || type === 'QuestionnaireResponse') && (c !== 'correct' || type !== 'Patient'),
  );
}

export function writePlan(persons: number): fc.Arbitrary<WritePlan> {
  return fc.constantFrom(...resourceTypes).chain((type) =>
    fc.record({
      person: fc.integer({ min: 0, max: persons - 1 }),
      type: fc.constant(type),
      // The portal is one channel of one type: as likely as all the others together for that type.
      channel:
        type === 'QuestionnaireResponse'
          ? fc.oneof(fc.constant<Channel>('portal'), fc.constantFrom(...channelsFor(type)))
          : fc.constantFrom(...channelsFor(type)),
      form: fc.constantFrom(...referenceForms),
      sites: fc.array(sitePlan, { minLength: 0, maxLength: 3 }),
      secondPerson: type === 'Patient' ? fc.boolean() : fc.constant(false),
    }),
  );
}

export { channelsFor };
