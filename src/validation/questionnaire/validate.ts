import type {
  OperationOutcomeIssue,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import { issue } from '../../fhir/outcomes';
import { isOption, valueKeyOf, type AnswerValueKey, type OptionSet } from './answers';
import type { CompiledItem, CompiledQuestionnaire } from './compile';

/** Where a response item sits: its item, the Questionnaire item it answers, and its enclosing item. */
interface Occurrence {
  readonly item: QuestionnaireResponseItem;
  readonly def: CompiledItem;
  readonly parent: Occurrence | undefined;
  readonly depth: number;
}

/** What one level of the response held for each Questionnaire item, for required and occurrence checks. */
interface Seen {
  instances: number;
  answers: number;
  firstPath: Path;
}

/**
 * Checks a QuestionnaireResponse against its compiled Questionnaire the way the HL7 validator does:
 * linkIds in place and in order, answer types, repeats, required items when enabled (only for
 * completed/amended responses), enableWhen, answerOption membership and value constraints, groups and
 * display items without answers, an exclusive answer option (questionnaire-optionExclusive) alone,
 * item text as the Questionnaire has it (a warning), answer counts within questionnaire-minOccurs/maxOccurs, Codings
 * with a system, referenced resource types (questionnaire-referenceResource), quantities against their
 * limits and units through UCUM (quantity.ts), attachments (attachment.ts), answer ValueSets that are not
 * the Questionnaire's own and displays against code systems we hold (terminology.ts).
 * Returns OperationOutcome issues whose expressions point into the response; no errors means valid.
 * Answers of calculated items are checked like any other, as the HL7 validator does (it does not compute
 * them); the scoring then replaces them and warns when the value sent differs (scoring.ts).
 */
export function validateQuestionnaireResponse(
  compiled: CompiledQuestionnaire,
  response: QuestionnaireResponse,
): OperationOutcomeIssue[] {
  return new ResponseCheck(compiled, response).run();
}

class ResponseCheck {
  private readonly issues: OperationOutcomeIssue[] = [];
  private readonly occurrences = new Map<QuestionnaireResponseItem, Occurrence>();
  private readonly byLinkId = new Map<string, Occurrence[]>();
  private readonly enabledMemo = new Map<Occurrence, boolean>();
  private readonly visiting = new Set<Occurrence>();
  private readonly strictRequired: boolean;

  constructor(
    private readonly compiled: CompiledQuestionnaire,
    private readonly response: QuestionnaireResponse,
  ) {
    this.strictRequired = response.status === 'completed' || response.status === 'amended';
  }

  run(): OperationOutcomeIssue[] {
    if (this.compiled.hasEnableWhen) {
      this.bind(this.compiled.root, this.response.item, undefined);
    }
    this.level(this.compiled.root, this.response.item, ROOT, undefined);
    return this.issues;
  }

  private error(
    text: string,
    expression: Path | string,
    code: OperationOutcomeIssue['code'] = 'structure',
    severity: OperationOutcomeIssue['severity'] = 'error',
  ): void {
    this.issues.push(
      issue(code, text, typeof expression === 'string' ? expression : expression.text(), severity),
    );
  }

  /** Maps response items to Questionnaire items, so enableWhen can find the answers it depends on. */
  private bind(
    parentDef: CompiledItem,
    items: QuestionnaireResponseItem[] | undefined,
    parent: Occurrence | undefined,
  ): void {
    if (!items) {
      return;
    }
    for (const item of items) {
      const def = parentDef.childIndex.get(item.linkId);
      if (!def) {
        continue;
      }
      const occurrence: Occurrence = { item, def, parent, depth: parent ? parent.depth + 1 : 0 };
      this.occurrences.set(item, occurrence);
      const list = this.byLinkId.get(item.linkId);
      if (list) {
        list.push(occurrence);
      } else {
        this.byLinkId.set(item.linkId, [occurrence]);
      }
      this.bind(def, item.item, occurrence);
      if (item.answer) {
        for (const answer of item.answer) {
          this.bind(def, answer.item, occurrence);
        }
      }
    }
  }

  /** Checks the items of one level (the response root, a group, or an answer) against `parentDef`'s children. */
  private level(
    parentDef: CompiledItem,
    items: QuestionnaireResponseItem[] | undefined,
    basePath: Path,
    parent: Occurrence | undefined,
  ): void {
    const seen = new Map<CompiledItem, Seen>();
    let last: CompiledItem | undefined;
    items?.forEach((item, i) => {
      const path = new Path(basePath, 'item', i);
      const def = parentDef.childIndex.get(item.linkId);
      if (!def) {
        this.misplaced(item, path, parentDef);
        return;
      }
      if (last && def.index < last.index) {
        this.error(`Item ${def.label} is out of order: the Questionnaire puts it before ${last.label}`, path);
      }
      const record = seen.get(def);
      if (record) {
        record.instances++;
        if (def.type !== 'group') {
          this.error(
            `Question ${def.label} appears more than once; all its answers belong in one item`,
            path,
          );
        } else if (!def.repeats) {
          this.error(`Group ${def.label} does not repeat but appears more than once`, path);
        }
      } else {
        seen.set(def, { instances: 1, answers: item.answer?.length ?? 0, firstPath: path });
      }
      if (!last || def.index > last.index) {
        last = def;
      }
      this.item(def, item, path);
    });
    this.occurrenceRules(parentDef, seen, basePath, parent);
  }

  private misplaced(item: QuestionnaireResponseItem, path: Path, parentDef: CompiledItem): void {
    const elsewhere = this.compiled.byLinkId.get(item.linkId);
    if (!elsewhere) {
      this.error(
        `linkId '${item.linkId}' is not in Questionnaire ${this.compiled.canonical}`,
        `${path.text()}.linkId`,
      );
      return;
    }
    const where = elsewhere.parent?.linkId ? `inside '${elsewhere.parent.linkId}'` : 'at the top level';
    const here = parentDef.linkId ? `inside '${parentDef.linkId}'` : 'at the top level';
    this.error(
      `Item '${item.linkId}' is not allowed ${here}; the Questionnaire places it ${where}`,
      `${path.text()}.linkId`,
    );
  }

  private item(def: CompiledItem, item: QuestionnaireResponseItem, path: Path): void {
    // A warning, not an error: the item text is the Questionnaire's, and a sender's own wording (an EPR
    // may put free text there) is not stored anyway (the data dictionary drops item.text). HAPI 8.8's
    // validator (core 6.7.9, Questionnaire_QR_Item_Text) makes it an error: a known disagreement.
    if (item.text !== undefined && item.text !== def.text) {
      this.error(
        `The text of item '${def.linkId}' differs from the Questionnaire's; send it as the Questionnaire has it, or leave it out`,
        `${path.text()}.text`,
        'invalid',
        'warning',
      );
    }
    const occurrence = this.occurrences.get(item);
    if (occurrence && !this.enabled(occurrence)) {
      if (hasAnswer(item)) {
        this.error(
          `Item ${def.label} is not enabled (its enableWhen conditions are not met), so it must not be answered`,
          path,
          'business-rule',
        );
      }
      return;
    }
    if (def.type === 'group' || def.type === 'display') {
      if (item.answer?.length) {
        const what = def.type === 'group' ? 'Group' : 'Display item';
        this.error(
          `${what} ${def.label} cannot carry answers${def.type === 'group' ? '; answer its items instead' : ''}`,
          `${path.text()}.answer[0]`,
        );
      }
      if (def.type === 'display' && item.item?.length) {
        this.error(`Display item ${def.label} cannot contain items`, `${path.text()}.item[0]`);
        return;
      }
      if (def.type === 'group') {
        this.level(def, item.item, path, occurrence);
      }
      return;
    }
    if (item.item?.length) {
      this.error(
        def.children.length
          ? `Items nested in question ${def.label} belong under its answer (item.answer.item), not under the item`
          : `Question ${def.label} has no nested items in the Questionnaire`,
        `${path.text()}.item[0]`,
      );
    }
    const answers = item.answer ?? [];
    if (answers.length > 1 && !def.repeats) {
      this.error(
        `Question ${def.label} takes one answer; ${answers.length} were given`,
        `${path.text()}.answer[1]`,
      );
    }
    if (def.maxOccurs !== undefined && answers.length > def.maxOccurs) {
      this.error(
        `Question ${def.label} takes at most ${def.maxOccurs} answers; ${answers.length} were given`,
        path,
      );
    }
    if (def.minOccurs !== undefined && answers.length < def.minOccurs) {
      this.error(
        `Question ${def.label} takes at least ${def.minOccurs} answers; ${answers.length} were given`,
        path,
        'required',
      );
    }
    if (answers.length > 1 && def.options?.exclusive) {
      this.exclusiveAnswer(def, def.options.exclusive, answers, path);
    }
    answers.forEach((answer, j) => {
      const answerPath = new Path(path, 'answer', j);
      this.answer(def, answer, answerPath);
      if (answer.item?.length || def.children.length) {
        this.level(def, answer.item, answerPath, occurrence);
      }
    });
  }

  /** An answer option marked questionnaire-optionExclusive (e.g. «ingen smerter») must stand alone. */
  private exclusiveAnswer(
    def: CompiledItem,
    exclusive: OptionSet,
    answers: QuestionnaireResponseItemAnswer[],
    path: Path,
  ): void {
    const j = answers.findIndex((answer) => {
      const key = valueKeyOf(answer);
      return key !== undefined && isOption(exclusive, key, (answer as Record<string, unknown>)[key]);
    });
    if (j < 0) {
      return;
    }
    const answer = answers[j];
    const key = valueKeyOf(answer) as AnswerValueKey;
    const shown = answer.valueCoding?.display ? ` «${answer.valueCoding.display}»` : '';
    this.error(
      `${describe(answer, key)}${shown} excludes every other answer of ${def.label}, but ${answers.length - 1} ` +
        `other answer${answers.length > 2 ? 's were' : ' was'} given; keep either it or the others`,
      new Path(path, 'answer', j),
      'business-rule',
    );
  }

  private answer(def: CompiledItem, answer: QuestionnaireResponseItemAnswer, path: Path): void {
    const key = valueKeyOf(answer);
    if (!key) {
      if (!answer.item?.length) {
        this.error(`The answer to ${def.label} has no value`, path, 'required');
      }
      return;
    }
    if (!def.valueKeys.has(key)) {
      this.error(
        `Question ${def.label} is of type ${def.type} and takes ${[...def.valueKeys].join(' or ')}, not ${key}`,
        path,
        'value',
      );
      return;
    }
    if (key === 'valueCoding' && this.systemless(def, answer, path)) {
      return;
    }
    const freeText = def.type === 'open-choice' && key === 'valueString';
    if (def.options && !freeText && !isOption(def.options, key, (answer as Record<string, unknown>)[key])) {
      this.error(
        `${describe(answer, key)} is not one of the permitted answers of ${def.label} (permitted: ${def.options.summary})`,
        path,
        'code-invalid',
      );
    }
    for (const check of def.checks) {
      const problem = check(answer, key);
      if (typeof problem === 'string') {
        this.error(`${problem} for ${def.label}`, path, 'value');
      } else if (problem) {
        this.error(`${problem.text} for ${def.label}`, path, problem.code ?? 'value', problem.severity);
      }
    }
  }

  /**
   * A Coding answer without a system means nothing outside this form: refused, unless the Questionnaire's
   * own option has no system either (the HL7 validator compares both). Returns whether it was refused.
   */
  private systemless(def: CompiledItem, answer: QuestionnaireResponseItemAnswer, path: Path): boolean {
    const coding = answer.valueCoding ?? {};
    if (coding.system !== undefined || (def.options && isOption(def.options, 'valueCoding', coding))) {
      return false;
    }
    this.error(
      `The Coding answer to ${def.label} has no system; a code means nothing without its code system (set valueCoding.system)`,
      `${path.text()}.valueCoding`,
      'required',
    );
    return true;
  }

  /** Required items, minOccurs and maxOccurs of one level, each only when the item is enabled here. */
  private occurrenceRules(
    parentDef: CompiledItem,
    seen: Map<CompiledItem, Seen>,
    basePath: Path,
    parent: Occurrence | undefined,
  ): void {
    for (const def of parentDef.children) {
      const record = seen.get(def);
      const needsRequired = this.strictRequired && def.required && def.type !== 'display';
      const needsCount = def.type === 'group' && (def.minOccurs !== undefined || def.maxOccurs !== undefined);
      if (!needsRequired && !needsCount) {
        continue;
      }
      if (!this.enabledIn(def, parent)) {
        continue;
      }
      if (needsRequired) {
        if (!record) {
          this.error(`Required item ${def.label} is missing`, basePath, 'required');
        } else if (def.type !== 'group' && record.answers === 0) {
          this.error(`Required question ${def.label} has no answer`, record.firstPath, 'required');
        }
      }
      if (needsCount && this.strictRequired) {
        const count = record?.instances ?? 0;
        if (def.minOccurs !== undefined && count < def.minOccurs) {
          this.error(
            `Group ${def.label} must appear at least ${def.minOccurs} times; it appears ${count}`,
            basePath,
            'required',
          );
        }
        if (def.maxOccurs !== undefined && count > def.maxOccurs) {
          this.error(
            `Group ${def.label} may appear at most ${def.maxOccurs} times; it appears ${count}`,
            basePath,
          );
        }
      }
    }
  }

  private enabled(occurrence: Occurrence): boolean {
    const memo = this.enabledMemo.get(occurrence);
    if (memo !== undefined) {
      return memo;
    }
    if (this.visiting.has(occurrence)) {
      return false; // a cycle of enableWhen conditions: treat as disabled rather than loop
    }
    this.visiting.add(occurrence);
    const result =
      (!occurrence.parent || this.enabled(occurrence.parent)) &&
      this.enabledIn(occurrence.def, occurrence.parent);
    this.visiting.delete(occurrence);
    this.enabledMemo.set(occurrence, result);
    return result;
  }

  /** Whether `def`'s own enableWhen holds for an instance whose enclosing item is `scope`. */
  private enabledIn(def: CompiledItem, scope: Occurrence | undefined): boolean {
    const enableWhen = def.enableWhen;
    if (!enableWhen) {
      return true;
    }
    for (const condition of enableWhen.conditions) {
      const holds = condition.test(this.answersOf(condition.question, scope));
      if (enableWhen.any && holds) {
        return true;
      }
      if (!enableWhen.any && !holds) {
        return false;
      }
    }
    return !enableWhen.any;
  }

  /**
   * The answers of question `linkId` as seen from `scope`: the occurrences closest to it (within the same
   * repeating-group instance when there is one), counting a disabled question as unanswered.
   */
  private answersOf(linkId: string, scope: Occurrence | undefined): QuestionnaireResponseItemAnswer[] {
    const candidates = this.byLinkId.get(linkId);
    if (!candidates) {
      return [];
    }
    let chosen = candidates;
    if (candidates.length > 1) {
      const ancestors = new Set<Occurrence>();
      for (let s = scope; s; s = s.parent) {
        ancestors.add(s);
      }
      let best = -1;
      chosen = [];
      for (const candidate of candidates) {
        let shared = -1;
        for (let p: Occurrence | undefined = candidate; p; p = p.parent) {
          if (ancestors.has(p)) {
            shared = p.depth;
            break;
          }
        }
        if (shared > best) {
          best = shared;
          chosen = [candidate];
        } else if (shared === best) {
          chosen.push(candidate);
        }
      }
    }
    const answers: QuestionnaireResponseItemAnswer[] = [];
    for (const occurrence of chosen) {
      if (occurrence.item.answer && this.enabled(occurrence)) {
        answers.push(...occurrence.item.answer);
      }
    }
    return answers;
  }
}

/**
 * Where a response element sits (`QuestionnaireResponse.item[2].answer[0]`), kept as a chain of steps and
 * written out only when an issue needs it: valid responses, the common case, never pay for the strings.
 */
class Path {
  constructor(
    private readonly parent: Path | undefined,
    private readonly step: string,
    private readonly index?: number,
  ) {}

  text(): string {
    const own = this.index === undefined ? this.step : `${this.step}[${this.index}]`;
    return this.parent ? `${this.parent.text()}.${own}` : own;
  }
}

const ROOT = new Path(undefined, 'QuestionnaireResponse');

function hasAnswer(item: QuestionnaireResponseItem): boolean {
  return (
    (item.answer?.some((a) => valueKeyOf(a) !== undefined || a.item?.some(hasAnswer)) ?? false) ||
    (item.item?.some(hasAnswer) ?? false)
  );
}

function describe(answer: QuestionnaireResponseItemAnswer, key: string): string {
  if (key === 'valueCoding') {
    const c = answer.valueCoding;
    return `The code '${c?.code ?? ''}'${c?.system ? ` (${c.system})` : ''}`;
  }
  return `The answer '${String((answer as Record<string, unknown>)[key])}'`;
}
