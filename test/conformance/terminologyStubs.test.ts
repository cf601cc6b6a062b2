import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CodeSystem, ValueSet } from '@medplum/fhirtypes';
import { readNorPainQuestionnaires } from '../../src/validation/questionnaire/norpain';
import { writeTerminologyStubs } from './terminologyStubs';

/**
 * HAPI's validator stops with HAPI-0650 on a ValueSet that includes a whole urn:oid code system it cannot
 * find (validator/, docs/conformance.md): each one the NorPain Questionnaires include must have a stub.
 */
let dir: string;
let stubs: CodeSystem[];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-stubs-'));
  writeTerminologyStubs(dir);
  stubs = fs
    .readdirSync(dir)
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CodeSystem);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('every whole urn:oid code system a NorPain Questionnaire includes has a stub, with no codes', () => {
  const included = readNorPainQuestionnaires()
    .flatMap((q) => (q.contained ?? []).filter((r): r is ValueSet => r.resourceType === 'ValueSet'))
    .flatMap((vs) => vs.compose?.include ?? [])
    .filter((include) => !include.concept && !include.filter && include.system?.startsWith('urn:oid:'))
    .map((include) => include.system);
  expect(included.length).toBeGreaterThan(0);
  const stubbed = new Set(stubs.map((s) => s.url));
  expect(included.filter((system) => !stubbed.has(system))).toEqual([]);
  expect(stubs.every((s) => s.content === 'not-present' && s.concept === undefined)).toBe(true);
});

test('adversarial: code systems the registry holds, or that the validator knows by name, get no stub', () => {
  const urls = stubs.map((s) => s.url);
  expect(urls).not.toContain('https://norpain.no/fhir/CodeSystem/right-to-care-decision');
  expect(urls).not.toContain('urn:oid:2.16.578.1.12.4.1.1.3402'); // municipality numbers: shaped, held
  expect(urls).not.toContain('http://snomed.info/sct');
});
