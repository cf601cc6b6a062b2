import fs from 'node:fs';
import path from 'node:path';
import type { CodeSystem } from '@medplum/fhirtypes';
import { terminology } from '../../src/dictionary/terminology';

/**
 * The clinical terminologies the registry binds but does not hold (ICD-10, ICPC-2, NKPK: published in
 * Volven), as CodeSystem resources with `content: not-present`, for HAPI's validator (validator/). The
 * clinician Questionnaire's contained ValueSets include the whole of ICD-10 and ICPC-2 by `urn:oid`; a
 * system the validator cannot find by url it then looks up by identifier, which HAPI 8.8's worker context
 * does not support (HAPI-0650, an exception that stops the validation). Told the system exists and that
 * its codes are not here, it validates the Questionnaire and reports the codes as not checked.
 * Only `urn:oid` systems: SNOMED CT, LOINC and UCUM the validator knows by name.
 * Returns the number of files written to `dir`.
 */
export function writeTerminologyStubs(dir: string): number {
  fs.mkdirSync(dir, { recursive: true });
  const unheld = Object.entries(terminology).filter(
    ([, entry]) => !entry.codes && entry.url.startsWith('urn:oid:'),
  );
  for (const [key, entry] of unheld) {
    const stub: CodeSystem = {
      resourceType: 'CodeSystem',
      id: key,
      url: entry.url,
      name: key,
      title: entry.name,
      status: 'active',
      content: 'not-present',
    };
    fs.writeFileSync(path.join(dir, `CodeSystem-${key}.json`), JSON.stringify(stub, null, 2));
  }
  return unheld.length;
}
