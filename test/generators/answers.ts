import type {
  Questionnaire,
  QuestionnaireItem,
  QuestionnaireItemAnswerOption,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import {
  applyScores,
  compileQuestionnaire,
  readNorPainQuestionnaires,
  type CompiledQuestionnaire,
} from '../../src/validation/questionnaire';
import { EXT } from '../../src/validation/questionnaire/answers';

/**
 * Plausible answers to the registry's real Questionnaires (questionnaires/*.json), for the synthetic
 * cohort. The form is walked as a renderer would: display items and calculated items are not answered,
 * an item is answered only when its enableWhen holds on what was answered before it, required items
 * always, others with a small item non-response. Instrument items (pain NRS, BPI, HSCL-25, ISI, CFQ,
 * EQ-5D, PCS) follow one latent severity per person and time point, so the scores correlate as real
 * ones do; PGIC follows the change between baseline and 12 months. The scores are then computed by the
 * server's own scoring (applyScores), exactly as ingest stores them.
 */
export interface AnswerProfile {
  /** 0 (no complaint) – 1 (worst) at this time point. */
  severity: number;
  /** Baseline severity minus this one (positive = better); only the 12-month form uses it. */
  improvement: number;
  random: () => number;
}

/** Items whose answers follow the severity (higher option or value = worse). */
const SEVERITY_ITEM = /^(nrs-|bpi-\d|hscl-\d|isi-\d|cfq-\d|eq5d-\d|pcs-\d)/;
/** Item non-response for optional items. */
const SKIP = 0.03;

let compiled: Map<string, CompiledQuestionnaire> | undefined;

/** The shipped Questionnaires, compiled once, by canonical URL. */
function norpainQuestionnaire(url: string): CompiledQuestionnaire {
  compiled ??= new Map(
    readNorPainQuestionnaires().map((q: Questionnaire) => [q.url as string, compileQuestionnaire(q)]),
  );
  const found = compiled.get(url);
  if (!found) {
    throw new Error(`no shipped Questionnaire ${url}`);
  }
  return found;
}

/** A completed, scored response (without id, subject and authored: the caller adds those). */
export function answerQuestionnaire(url: string, profile: AnswerProfile): QuestionnaireResponse {
  const form = norpainQuestionnaire(url);
  const answered = new Map<string, QuestionnaireResponseItemAnswer[]>();
  const items = answerItems(form, form.questionnaire.item ?? [], profile, answered);
  const response: QuestionnaireResponse = {
    resourceType: 'QuestionnaireResponse',
    questionnaire: form.canonical,
    status: 'completed',
    item: items,
  };
  return applyScores(form, response).response;
}

function answerItems(
  form: CompiledQuestionnaire,
  items: readonly QuestionnaireItem[],
  profile: AnswerProfile,
  answered: Map<string, QuestionnaireResponseItemAnswer[]>,
): QuestionnaireResponseItem[] {
  const out: QuestionnaireResponseItem[] = [];
  for (const item of items) {
    const compiledItem = form.byLinkId.get(item.linkId);
    if (item.type === 'display' || compiledItem?.calculated || !enabled(form, item, answered)) {
      continue;
    }
    if (item.type === 'group') {
      const children = answerItems(form, item.item ?? [], profile, answered);
      if (children.length > 0) {
        out.push({ linkId: item.linkId, item: children });
      }
      continue;
    }
    if (!item.required && profile.random() < SKIP) {
      continue;
    }
    const answer = answerOf(item, profile);
    if (answer.length > 0) {
      answered.set(item.linkId, answer);
      out.push({ linkId: item.linkId, answer });
    }
  }
  return out;
}

function enabled(
  form: CompiledQuestionnaire,
  item: QuestionnaireItem,
  answered: ReadonlyMap<string, QuestionnaireResponseItemAnswer[]>,
): boolean {
  const rule = form.byLinkId.get(item.linkId)?.enableWhen;
  if (!rule) {
    return true;
  }
  const results = rule.conditions.map((c) => c.test(answered.get(c.question) ?? []));
  return rule.any ? results.some(Boolean) : results.every(Boolean);
}

function answerOf(item: QuestionnaireItem, profile: AnswerProfile): QuestionnaireResponseItemAnswer[] {
  const { random } = profile;
  const level = levelFor(item.linkId, profile);
  switch (item.type) {
    case 'choice': {
      const options = (item.answerOption ?? []).filter((o) => o.valueCoding);
      if (options.length === 0) {
        return [];
      }
      if (item.repeats) {
        const plain = options.filter((o) => !isExclusive(o));
        const count = 1 + Math.floor(random() * Math.min(3, plain.length));
        const chosen = new Set<number>();
        while (chosen.size < count) {
          chosen.add(Math.floor(random() * plain.length));
        }
        return [...chosen].sort((a, b) => a - b).map((i) => coding(plain[i]));
      }
      const index =
        level === undefined
          ? Math.floor(random() * options.length)
          : Math.round(level * (options.length - 1));
      return [coding(options[index])];
    }
    case 'integer': {
      const min = bound(item, EXT.minValue) ?? 0;
      const max = bound(item, EXT.maxValue) ?? 10;
      const at = level ?? 0.25 + 0.5 * random();
      return [{ valueInteger: Math.round(min + at * (max - min)) }];
    }
    case 'boolean':
      return [{ valueBoolean: random() < 0.5 }];
    default:
      // The registry's forms have no free-text, date or other questions a patient answers.
      return [];
  }
}

/** Where in its range an item's answer lies (0–1), or undefined for items not driven by severity. */
function levelFor(linkId: string, profile: AnswerProfile): number | undefined {
  const noise = (profile.random() - 0.5) * 0.3;
  const clamp = (x: number) => Math.min(1, Math.max(0, x));
  if (linkId.startsWith('pgic-')) {
    // 1 = very much better … 7 = very much worse; no change (4) at improvement 0.
    return clamp(0.5 - profile.improvement * 1.6 + noise);
  }
  if (linkId === 'eq5d-vas') {
    return clamp(0.85 - 0.6 * profile.severity + noise);
  }
  return SEVERITY_ITEM.test(linkId) ? clamp(profile.severity + noise) : undefined;
}

function isExclusive(option: QuestionnaireItemAnswerOption): boolean {
  return (option.extension ?? []).some((e) => e.url === EXT.optionExclusive && e.valueBoolean === true);
}

/** The answer as stored: system and code only (the dictionary keeps no display). */
function coding(option: QuestionnaireItemAnswerOption): QuestionnaireResponseItemAnswer {
  const { system, code } = option.valueCoding ?? {};
  return { valueCoding: { system, code } };
}

function bound(item: QuestionnaireItem, url: string): number | undefined {
  const ext = (item.extension ?? []).find((e) => e.url === url);
  return ext?.valueInteger ?? ext?.valueDecimal;
}
