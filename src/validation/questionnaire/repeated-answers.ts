import { deepEquals } from '@medplum/core';
import type {
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import type { CompiledItem, CompiledQuestionnaire } from './compile';

/**
 * Joins the answers of a repeating question that a renderer split over sibling items into the first of
 * them, as FHIR R4 wants it (`Questionnaire.item.repeats`: one response item, several answers; qrs-2).
 *
 * helsenorge's Refero shows «Legg til» under a multi-select question; a patient who clicks it gets a copy
 * of the question, and Refero sends the question as two items with the same linkId. Refusing that would
 * lose the patient's whole response, and the meaning is unambiguous, so the server takes it as one item.
 * Answers keep their order and their nested items; exact duplicate answers and copies without answers
 * are dropped. Only questions with `repeats: true` are joined: a duplicated non-repeating question or a
 * duplicated group stays as sent, for the validator to refuse. The merged set is then checked like any
 * other (answerOption, maxOccurs, exclusive options), so a merge cannot slip a bad combination through.
 *
 * This runs before base validation, on input not yet known to be well-formed: anything not shaped as
 * expected is left untouched for the validators to report. Returns `response` itself when nothing was
 * joined, otherwise a copy (the input is never modified).
 */
export function mergeRepeatedAnswers(
  compiled: CompiledQuestionnaire,
  response: QuestionnaireResponse,
): QuestionnaireResponse {
  const item = mergeLevel(compiled.root, response.item);
  return item === response.item ? response : { ...response, item };
}

type Items = QuestionnaireResponseItem[] | undefined;

/** The items of one level (the response, a group instance or an answer) with split questions joined. */
function mergeLevel(parentDef: CompiledItem, items: Items): Items {
  if (!Array.isArray(items)) {
    return items;
  }
  let changed = false;
  const merged: QuestionnaireResponseItem[] = [];
  const firstIndex = new Map<string, number>();
  for (const item of items) {
    const def =
      isObject(item) && typeof item.linkId === 'string' ? parentDef.childIndex.get(item.linkId) : undefined;
    if (!def) {
      merged.push(item);
      continue;
    }
    const inner = mergeBelow(def, item);
    changed ||= inner !== item;
    if (!isRepeatingQuestion(def)) {
      merged.push(inner);
      continue;
    }
    const at = firstIndex.get(def.linkId);
    if (at === undefined) {
      firstIndex.set(def.linkId, merged.length);
      merged.push(inner);
      continue;
    }
    const joined = join(merged[at], inner);
    if (!joined) {
      merged.push(inner); // not joinable (malformed answers): left for the validators
      continue;
    }
    merged[at] = joined;
    changed = true;
  }
  return changed ? merged : items;
}

/** The item with the levels below it (group items, items nested in answers) merged. */
function mergeBelow(def: CompiledItem, item: QuestionnaireResponseItem): QuestionnaireResponseItem {
  if (def.type === 'group') {
    const children = mergeLevel(def, item.item);
    return children === item.item ? item : { ...item, item: children };
  }
  if (!Array.isArray(item.answer) || def.children.length === 0) {
    return item;
  }
  let changed = false;
  const answers = item.answer.map((answer) => {
    if (!isObject(answer)) {
      return answer;
    }
    const nested = mergeLevel(def, answer.item);
    if (nested === answer.item) {
      return answer;
    }
    changed = true;
    return { ...answer, item: nested };
  });
  return changed ? { ...item, answer: answers } : item;
}

/** `first` with `copy`'s answers (and any items under it) added; undefined when either is malformed. */
function join(
  first: QuestionnaireResponseItem,
  copy: QuestionnaireResponseItem,
): QuestionnaireResponseItem | undefined {
  const have = first.answer ?? [];
  const add = copy.answer ?? [];
  const items = [first.item ?? [], copy.item ?? []];
  if (!Array.isArray(have) || !Array.isArray(add) || !items.every(Array.isArray)) {
    return undefined;
  }
  const answers: QuestionnaireResponseItemAnswer[] = [...have];
  for (const answer of add) {
    if (!answers.some((a) => deepEquals(a, answer))) {
      answers.push(answer);
    }
  }
  // Items directly under a question are invalid; they are kept so that the validator reports them.
  const children = items.flat();
  const joined: QuestionnaireResponseItem = { ...first };
  if (answers.length) {
    joined.answer = answers;
  }
  if (children.length) {
    joined.item = children;
  }
  return joined;
}

function isRepeatingQuestion(def: CompiledItem): boolean {
  return def.repeats && def.type !== 'group' && def.type !== 'display';
}

function isObject<T>(value: T): value is T & object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
