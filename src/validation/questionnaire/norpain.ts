import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Questionnaire } from '@medplum/fhirtypes';
import type { FhirStore } from '../../store/FhirStore';
import { storeQuestionnaireSource } from './registry';

/** The repository's questionnaires/ folder; the same depth from src/ and from the built dist/. */
const NORPAIN_QUESTIONNAIRE_DIR = resolve(__dirname, '../../../questionnaires');

/** The canonical URLs of the shipped Questionnaires: the patient's two time points and the clinician's form. */
export const NORPAIN_QUESTIONNAIRE_URLS = {
  baseline: 'https://norpain.no/fhir/Questionnaire/norpain-baseline',
  followUp12m: 'https://norpain.no/fhir/Questionnaire/norpain-followup-12m',
  clinician: 'https://norpain.no/fhir/Questionnaire/norpain-clinician-episode',
} as const;

/** The NorPain Questionnaires shipped with the server (every questionnaires/*.json). */
export function readNorPainQuestionnaires(dir = NORPAIN_QUESTIONNAIRE_DIR): Questionnaire[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Questionnaire)
    .filter((r) => r.resourceType === 'Questionnaire');
}

/**
 * Makes sure the store holds each shipped Questionnaire version, so responses can name them and the
 * portal can read them. A url|version already stored with the same content is left alone (its history
 * stays quiet across restarts); a stored one whose content differs is replaced; a new one is created
 * under the id in its file.
 */
export async function loadNorPainQuestionnaires(
  store: FhirStore,
  dir = NORPAIN_QUESTIONNAIRE_DIR,
): Promise<number> {
  const source = storeQuestionnaireSource(store);
  let written = 0;
  for (const questionnaire of readNorPainQuestionnaires(dir)) {
    if (!questionnaire.url || !questionnaire.id) {
      throw new Error('Each shipped Questionnaire needs an id and a url');
    }
    const [existing] = await source.find(questionnaire.url, questionnaire.version);
    if (existing && sameContent(existing, questionnaire)) {
      continue;
    }
    await store.update({ ...questionnaire, id: existing?.id ?? questionnaire.id });
    written++;
  }
  return written;
}

function sameContent(a: Questionnaire, b: Questionnaire): boolean {
  const strip = ({ id: _id, meta: _meta, ...rest }: Questionnaire): string => JSON.stringify(rest);
  return strip(a) === strip(b);
}
