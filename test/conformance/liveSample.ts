/**
 * A sample of the server's live responses for HAPI's validator (validator/, issue 16): starts the real
 * server on the embedded store, performs the interactions an EPR and the portal perform (capabilities,
 * transaction and batch, reads, history, searches empty and not, `_summary=count`, `$validate`, and
 * requests that fail) and writes each response body to OUT/NN-name.json. It also writes OUT/../terminology:
 * the code systems the registry names but does not hold, so the validator knows they exist.
 *
 * Usage: tsx test/conformance/liveSample.ts OUT
 */
import fs from 'node:fs';
import path from 'node:path';
import type {
  Bundle,
  BundleEntry,
  EpisodeOfCare,
  Identifier,
  Patient,
  QuestionnaireResponse,
  Resource,
} from '@medplum/fhirtypes';
import { terminology } from '../../src/dictionary/terminology';
import { seededRandom, syntheticIdentifier } from '../../src/identity';
import {
  NORPAIN_QUESTIONNAIRE_URLS,
  readNorPainQuestionnaires,
} from '../../src/validation/questionnaire/norpain';
import { DEFAULT_PROFILES_DIR } from '../../src/validation/profiles';
import { RESH_SYSTEM, readUnits } from '../../src/units/units';
import { fillResponse } from '../validation/responses';
import { clientFor, type Client } from '../http/client';
import { startTestServer } from '../helpers/testServer';
import { writeTerminologyStubs } from './terminologyStubs';

const random = seededRandom(1616);

function example<T extends Resource>(file: string): T {
  return JSON.parse(fs.readFileSync(path.join(DEFAULT_PROFILES_DIR, file), 'utf8')) as T;
}

/** A completed response to a NorPain form by a person, as the portal or the EPR sends it. */
function answered(url: string, subject: string): QuestionnaireResponse {
  const form = readNorPainQuestionnaires().find((q) => q.url === url);
  if (!form) {
    throw new Error(`no shipped Questionnaire ${url}`);
  }
  return { ...fillResponse(form), subject: { reference: subject } };
}

const baselineResponse = (subject: string): QuestionnaireResponse =>
  answered(NORPAIN_QUESTIONNAIRE_URLS.baseline, subject);

const token = (identifier: Identifier): string => `${identifier.system}|${identifier.value}`;

function entry(fullUrl: string, resource: Resource, url: string): BundleEntry {
  return { fullUrl, resource, request: { method: 'POST', url } };
}

/** A Patient, an EpisodeOfCare and a baseline response in one transaction, linked by urn:uuid. */
function intake(person: Identifier, unit: string): Bundle {
  const patientUrn = 'urn:uuid:0b7e2a40-5f3c-4c1e-9a51-1e16a0c0f001';
  const patient: Patient = { resourceType: 'Patient', identifier: [person], gender: 'female' };
  const episode: EpisodeOfCare = {
    ...example<EpisodeOfCare>('EpisodeOfCare-norpain-episodeofcare-example.json'),
    id: undefined,
    patient: { reference: patientUrn },
    managingOrganization: { identifier: { system: RESH_SYSTEM, value: unit } },
  };
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      entry(patientUrn, patient, 'Patient'),
      entry('urn:uuid:0b7e2a40-5f3c-4c1e-9a51-1e16a0c0f002', episode, 'EpisodeOfCare'),
      entry(
        'urn:uuid:0b7e2a40-5f3c-4c1e-9a51-1e16a0c0f003',
        baselineResponse(patientUrn),
        'QuestionnaireResponse',
      ),
    ],
  };
}

async function sample(fhir: Client, out: string, unit: string): Promise<number> {
  let n = 0;
  const save = async (name: string, reply: Promise<{ status: number; text: string }>): Promise<void> => {
    const { status, text } = await reply;
    n++;
    const file = path.join(out, `${String(n).padStart(2, '0')}-${name}.json`);
    // A response without a body (a 204) has nothing to validate: say so rather than write an empty file.
    if (!text) {
      throw new Error(`${name}: status ${status} without a body`);
    }
    fs.writeFileSync(file, text);
  };

  await save('metadata', fhir.get('metadata'));
  const person = syntheticIdentifier('fnr', { random });
  const created = await fhir.post<Bundle>('', intake(person, unit));
  if (created.status !== 200) {
    throw new Error(`the intake transaction failed (${created.status}): ${created.text}`);
  }
  await save('transaction-response', Promise.resolve(created));
  const [patientRef, episodeRef, responseRef] = (created.body.entry ?? []).map(
    (e) => e.response?.location?.split('/_history')[0] ?? '',
  );

  // The clinician's form and the 12-month follow-up, and a diagnosis coded in ICD-10.
  const clinician = await fhir.post(
    'QuestionnaireResponse',
    answered(NORPAIN_QUESTIONNAIRE_URLS.clinician, patientRef),
  );
  await save('create-clinician-response', Promise.resolve(clinician));
  await save(
    'create-followup-response',
    fhir.post('QuestionnaireResponse', answered(NORPAIN_QUESTIONNAIRE_URLS.followUp12m, patientRef)),
  );
  await save(
    'create-condition',
    fhir.post('Condition', {
      resourceType: 'Condition',
      code: { coding: [{ system: terminology.icd10.url, code: 'M79.7' }] },
      subject: { reference: patientRef },
    }),
  );
  await save('read-patient', fhir.get(patientRef));
  await save('read-episodeofcare', fhir.get(episodeRef));
  await save('read-questionnaireresponse', fhir.get(responseRef));
  await save('history-patient', fhir.get(`${patientRef}/_history`));
  await save('search-patient', fhir.get(`Patient?identifier=${token(person)}`));
  await save(
    'search-patient-include',
    fhir.get(`EpisodeOfCare?patient=${patientRef}&_include=EpisodeOfCare:patient`),
  );
  await save(
    'search-revinclude',
    fhir.get(`Patient?_id=${patientRef.split('/')[1]}&_revinclude=QuestionnaireResponse:subject`),
  );
  await save('search-empty', fhir.get(`Patient?identifier=${token(syntheticIdentifier('fnr', { random }))}`));
  await save('search-count', fhir.get('QuestionnaireResponse?_summary=count'));
  await save('search-questionnaire', fhir.get(`Questionnaire?url=${NORPAIN_QUESTIONNAIRE_URLS.clinician}`));

  // The read-modify-write an EPR does, a conditional create that matches, and the history they leave.
  const patient = (await fhir.get<Patient>(patientRef)).body;
  await save('update-patient', fhir.put(patientRef, { ...patient, gender: 'other' }));
  await save('vread-patient', fhir.get(`${patientRef}/_history/1`));
  await save('history-patient-updated', fhir.get(`${patientRef}/_history`));
  await save(
    'conditional-create-match',
    fhir.post(
      'Patient',
      { resourceType: 'Patient', identifier: [person] },
      { 'if-none-exist': `identifier=${token(person)}` },
    ),
  );
  await save('history-type', fhir.get('Patient/_history?_count=5'));
  // A second response, so that a page of one has a next page, and that next page.
  await fhir.post('QuestionnaireResponse', baselineResponse(patientRef));
  const firstPage = await fhir.get<Bundle>('QuestionnaireResponse?_count=1');
  await save('search-page-1', Promise.resolve(firstPage));
  const next = firstPage.body.link?.find((l) => l.relation === 'next')?.url;
  if (next) {
    await save('search-page-2', fhir.get(next));
  }
  await save('search-task', fhir.get('Task?_count=5'));
  await save('search-provenance', fhir.get('Provenance?_count=5'));
  await save('search-auditevent', fhir.get('AuditEvent?_count=5'));
  await save('search-operationdefinition', fhir.get('OperationDefinition'));
  await save('read-operationdefinition', fhir.get('OperationDefinition/stats'));
  await save('stats', fhir.get('$stats?groupBy=unit&from=2026&to=2026'));

  const batch: Bundle = {
    resourceType: 'Bundle',
    type: 'batch',
    entry: [
      { request: { method: 'GET', url: patientRef } },
      { request: { method: 'GET', url: 'Patient/does-not-exist' } },
      { request: { method: 'POST', url: 'QuestionnaireResponse' }, resource: baselineResponse(patientRef) },
    ],
  };
  await save('batch-response', fhir.post('', batch));

  await save('validate-valid', fhir.post('QuestionnaireResponse/$validate', baselineResponse(patientRef)));
  await save(
    'validate-invalid',
    fhir.post('QuestionnaireResponse/$validate', { ...baselineResponse(patientRef), status: 'finished' }),
  );
  await save(
    'validate-profile',
    fhir.post('QuestionnaireResponse/$validate', {
      resourceType: 'Parameters',
      parameter: [
        { name: 'resource', resource: baselineResponse(patientRef) },
        {
          name: 'profile',
          valueUri: 'https://norpain.no/fhir/StructureDefinition/norpain-questionnaireresponse',
        },
        { name: 'mode', valueCode: 'create' },
      ],
    }),
  );
  // A delete answers 204 without a body; reading what it deleted answers 410 with an OperationOutcome.
  await fhir.del(episodeRef);
  await save('error-gone', fhir.get(episodeRef));
  await save('error-not-found', fhir.get('Patient/does-not-exist'));
  await save('error-unknown-parameter', fhir.get('Patient?no-such-parameter=1'));
  await save(
    'error-unprocessable',
    fhir.post('QuestionnaireResponse', {
      ...baselineResponse(patientRef),
      item: [{ linkId: 'no-such-item' }],
    }),
  );
  await save(
    'error-not-json',
    fhir.request('POST', 'Patient', { raw: '{', headers: { 'content-type': 'application/fhir+json' } }),
  );
  return n;
}

async function main(): Promise<void> {
  const out = process.argv[2];
  if (!out) {
    throw new Error('usage: tsx test/conformance/liveSample.ts OUT');
  }
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  const stubs = writeTerminologyStubs(path.join(out, '..', 'terminology'));
  const server = await startTestServer();
  try {
    const n = await sample(await clientFor(server), out, readUnits(server.config.unitsFile)[0].resh);
    console.log(`wrote ${n} responses to ${out} and ${stubs} code system stubs`);
  } finally {
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
