import type {
  OperationOutcomeIssue,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import { issue } from '../../fhir/outcomes';
import type { CompiledItem, CompiledQuestionnaire, CompiledVariable } from './compile';

export interface ScoredResponse {
  /** A copy of the response with every calculated item recomputed and `questionnaire` pinned to url|version. */
  response: QuestionnaireResponse;
  /** Warnings: expressions that failed or gave a value the item's type cannot hold. */
  issues: OperationOutcomeIssue[];
}

/** Anything that holds response items: the response itself, a group item, or an answer. */
interface ItemHolder {
  item?: QuestionnaireResponseItem[];
}

/**
 * Recomputes every SDC calculatedExpression of the Questionnaire on the server, never trusting the
 * value a client sent: a computed value replaces or inserts the item's answer (in Questionnaire order),
 * an empty result (e.g. an instrument's missing-item rule not met) removes it. The response is pinned
 * to the Questionnaire version that produced the scores.
 *
 * One walk over the scored parts of the response does it all, with SDC's scoping: the Questionnaire's
 * variables are evaluated once against the response, an item's variables once per instance of the item
 * (against that response item), and each calculatedExpression with `%resource`, `%questionnaire` and
 * the variables in scope, its context being the item's own response item. Items are computed in
 * Questionnaire order on the response as updated so far, so a score may build on an earlier one.
 */
export function applyScores(
  compiled: CompiledQuestionnaire,
  response: QuestionnaireResponse,
): ScoredResponse {
  const scored = structuredClone(response);
  scored.questionnaire = compiled.canonical;
  const run = new ScoreRun();
  const env = run.bind(
    { resource: scored, questionnaire: compiled.questionnaire },
    compiled.variables,
    scored,
  );
  run.level(compiled.root, scored, env);
  return { response: scored, issues: run.issues };
}

type Env = Record<string, unknown>;

class ScoreRun {
  readonly issues: OperationOutcomeIssue[] = [];

  /** The environment extended with `variables` evaluated against `context`. */
  bind(env: Env, variables: readonly CompiledVariable[], context: unknown): Env {
    if (!variables.length) {
      return env;
    }
    const scope: Env = { ...env };
    for (const variable of variables) {
      scope[variable.name] =
        variable.constant ??
        this.evaluate(variable.expr.evaluate, context, scope, `the variable %${variable.name}`);
    }
    return scope;
  }

  /** Computes the scored items among `parentDef`'s children inside one holder (the response, an item or an answer). */
  level(parentDef: CompiledItem, holder: ItemHolder, env: Env): void {
    for (const def of parentDef.children) {
      if (!def.scored) {
        continue;
      }
      if (def.calculated) {
        const existing = holder.item?.find((i) => i.linkId === def.linkId);
        const scope = this.bind(env, def.variables, existing ?? { linkId: def.linkId });
        const result = this.evaluate(
          def.calculated.evaluate,
          existing ?? { linkId: def.linkId },
          scope,
          `'${def.linkId}'`,
        );
        setAnswer(holder, def, existing, this.toAnswer(def, result));
      }
      if (!def.children.some((c) => c.scored)) {
        continue;
      }
      const instances = holder.item?.filter((i) => i.linkId === def.linkId) ?? [];
      if (def.type === 'group' && !instances.length) {
        // An absent group may still get a score (from items elsewhere): compute into a provisional
        // instance and keep it only if something was computed.
        const provisional: QuestionnaireResponseItem = {
          linkId: def.linkId,
          ...(def.text ? { text: def.text } : {}),
          item: [],
        };
        this.level(def, provisional, this.bind(env, def.variables, provisional));
        if (provisional.item?.length) {
          insertItem(holder, def, provisional);
        }
        continue;
      }
      for (const instance of instances) {
        const scope = this.bind(env, def.variables, instance);
        if (def.type === 'group') {
          this.level(def, instance, scope);
        } else {
          for (const answer of instance.answer ?? []) {
            this.level(def, answer, scope);
          }
        }
      }
    }
  }

  private evaluate(
    fn: (input: unknown, env: Env) => unknown[],
    input: unknown,
    env: Env,
    what: string,
  ): unknown[] {
    try {
      return fn(input, env);
    } catch {
      this.issues.push(
        issue(
          'processing',
          `${what} could not be computed; what depends on it was left out`,
          'QuestionnaireResponse',
          'warning',
        ),
      );
      return [];
    }
  }

  private toAnswer(def: CompiledItem, result: unknown[]): QuestionnaireResponseItemAnswer | undefined {
    if (!result.length) {
      return undefined;
    }
    const answer = toAnswer(def, result[0]);
    if (!answer) {
      this.issues.push(
        issue(
          'processing',
          `The computed value of '${def.linkId}' does not fit its type ${def.type}; it was left out`,
          'QuestionnaireResponse',
          'warning',
        ),
      );
    }
    return answer;
  }
}

/** Sets, replaces or (when `answer` is undefined) removes the answer of calculated item `def` in `holder`. */
function setAnswer(
  holder: ItemHolder,
  def: CompiledItem,
  existing: QuestionnaireResponseItem | undefined,
  answer: QuestionnaireResponseItemAnswer | undefined,
): void {
  if (answer) {
    if (existing) {
      existing.answer = [answer];
    } else {
      insertItem(holder, def, {
        linkId: def.linkId,
        ...(def.text ? { text: def.text } : {}),
        answer: [answer],
      });
    }
  } else if (existing) {
    delete existing.answer;
    if (!existing.item?.length) {
      holder.item = holder.item?.filter((i) => i !== existing);
    }
  }
}

function toAnswer(def: CompiledItem, value: unknown): QuestionnaireResponseItemAnswer | undefined {
  switch (def.type) {
    case 'integer':
      return typeof value === 'number' && isFinite(value) ? { valueInteger: Math.round(value) } : undefined;
    case 'decimal': {
      if (typeof value !== 'number' || !isFinite(value)) {
        return undefined;
      }
      const places = def.decimalPlaces;
      return { valueDecimal: places === undefined ? value : Number(value.toFixed(places)) };
    }
    case 'boolean':
      return typeof value === 'boolean' ? { valueBoolean: value } : undefined;
    case 'string':
    case 'text':
      return value === undefined || value === null ? undefined : { valueString: String(value) };
    case 'date':
      return typeof value === 'string' ? { valueDate: value } : undefined;
    case 'dateTime':
      return typeof value === 'string' ? { valueDateTime: value } : undefined;
    case 'choice':
    case 'open-choice':
      return typeof value === 'object' && value !== null && 'code' in value
        ? { valueCoding: value as QuestionnaireResponseItemAnswer['valueCoding'] }
        : undefined;
    case 'quantity':
      return typeof value === 'object' && value !== null && 'value' in value
        ? { valueQuantity: value as QuestionnaireResponseItemAnswer['valueQuantity'] }
        : undefined;
    default:
      return undefined;
  }
}

/** Inserts `item` into `holder.item` at the place Questionnaire order gives `def`; returns the item. */
function insertItem(
  holder: ItemHolder,
  def: CompiledItem,
  item: QuestionnaireResponseItem,
): QuestionnaireResponseItem {
  const siblings = (holder.item ??= []);
  const parentDef = def.parent;
  const position = siblings.findIndex((s) => {
    const sibling = parentDef?.childIndex.get(s.linkId);
    return sibling !== undefined && sibling.index > def.index;
  });
  siblings.splice(position < 0 ? siblings.length : position, 0, item);
  return item;
}
