import type { OperationOutcomeIssue, QuestionnaireItem, ResearchStudy } from '@medplum/fhirtypes';
import { dataDictionary } from '../dictionary';
import { issue } from '../fhir/outcomes';
import type { IngestCheck } from '../ingest/check';
import { issueAtEntry } from '../ingest/write';
import type { QuestionnaireSource } from '../validation/questionnaire/registry';
import { isStudyResourceType, parseVariable, STUDY_RESOURCE_TYPES, variablesOf } from './approval';

/**
 * An approval names variables of the data dictionary only (issue 13): each approved variable of a
 * ResearchStudy written by staff must be an element the dictionary stores of a type in the study view, or
 * an item of one of the registry's Questionnaires; an identifier, free text, a birth date (ages are given
 * as bands) or anything the registry does not store can never be approved. Each variable that fails is
 * one error naming it (422 on a write, reported by $validate).
 */

/** Questionnaire item types whose answers are free text (or a file or link): never approvable. */
const FREE_TEXT_ITEMS = new Set(['string', 'text', 'attachment', 'url', 'reference', 'display']);

/** Why an element may not be approved, or undefined when it may. */
function elementRefusal(type: string, path: string): string | undefined {
  if (!isStudyResourceType(type)) {
    return `${type} is not in the study view; approvable types are ${STUDY_RESOURCE_TYPES.join(', ')}`;
  }
  if (path === 'id' || path === 'meta' || path.startsWith('meta.')) {
    return 'ids and last-updated times are in every study view (as project pseudonyms, coarsened); they are not variables';
  }
  if (type === 'QuestionnaireResponse' && (path === 'item' || path.startsWith('item.'))) {
    return 'answers are approved item by item, as <Questionnaire url>#<linkId>';
  }
  if (type === 'Patient' && path === 'birthDate') {
    return 'birth dates are never given out: ages are, in bands (set the age-band extension)';
  }
  const element = dataDictionary.resources[type]?.elements?.[path];
  if (element === undefined) {
    return 'the data dictionary does not list it, so the registry does not store it';
  }
  if (path === 'identifier' || element.transform === 'pseudonym' || element.transform === 'keyed-hash') {
    return 'identifiers can never be approved';
  }
  if (element.freeText) {
    return 'free text can never be approved';
  }
  return undefined;
}

function findItem(items: QuestionnaireItem[] | undefined, linkId: string): QuestionnaireItem | undefined {
  for (const item of items ?? []) {
    if (item.linkId === linkId) return item;
    const inner = findItem(item.item, linkId);
    if (inner) return inner;
  }
  return undefined;
}

export function approvalCheck(questionnaires: QuestionnaireSource): IngestCheck {
  return async (write) => {
    const issues: OperationOutcomeIssue[] = [];
    for (const [index, entry] of write.entries.entries()) {
      if (entry.resourceType !== 'ResearchStudy' || entry.resource === undefined) continue;
      for (const { text, index: at } of variablesOf(entry.resource as ResearchStudy)) {
        const expression = `ResearchStudy.extension[${at}].valueString`;
        const refuse = (why: string) =>
          issues.push(
            issueAtEntry(
              issue(
                'business-rule',
                `The approved variable '${text}' cannot be approved: ${why}.`,
                expression,
              ),
              write,
              index,
            ),
          );
        const variable = parseVariable(text);
        if (variable === undefined) {
          refuse(
            'it is neither a resource element (EpisodeOfCare.period) nor a Questionnaire item (<url>#<linkId>)',
          );
          continue;
        }
        if (variable.kind === 'element') {
          const why = elementRefusal(variable.type, variable.path);
          if (why !== undefined) refuse(why);
          continue;
        }
        const found = await questionnaires.find(variable.questionnaire);
        if (found.length === 0) {
          refuse('it is not an item of a Questionnaire the registry holds');
          continue;
        }
        const item = found.map((q) => findItem(q.item, variable.linkId)).find((i) => i !== undefined);
        if (item === undefined) {
          refuse(`the Questionnaire has no item with linkId '${variable.linkId}'`);
        } else if (FREE_TEXT_ITEMS.has(item.type ?? '')) {
          refuse(`it is a ${item.type} item: free text (or what only displays) can never be approved`);
        }
      }
    }
    return { write, issues };
  };
}
