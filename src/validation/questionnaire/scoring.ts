import type {
  OperationOutcomeIssue,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import { issue } from '../../fhir/outcomes';
import { valueKeyOf } from './answers';
import type { CompiledExpression, CompiledItem, CompiledQuestionnaire, CompiledVariable } from './compile';
import { resolved, type Bindings, type Value } from './fhirpath-subset';

export interface ScoredResponse {
  /**
   * The response with every calculated item recomputed and `questionnaire` pinned to url|version. A new
   * object that shares the parts scoring did not touch with the input: neither may be changed in place.
   */
  response: QuestionnaireResponse;
  /**
   * Warnings: expressions that failed or gave a value the item's type cannot hold, and answers the client
   * sent for calculated items that the computed value replaced or removed.
   */
  issues: OperationOutcomeIssue[];
}

export interface ScoreOptions {
  /** Evaluate every expression with `fhirpath` (the reference), never the compiled subset. For tests. */
  referenceOnly?: boolean;
}

/** Anything that holds response items: the response itself, a group item, or an answer. */
interface ItemHolder {
  item?: QuestionnaireResponseItem[];
}

/**
 * A binding of `%name` for both engines: the subset's value (when it computed one) and fhirpath's,
 * computed on demand: only an expression the subset hands over needs fhirpath's values.
 */
interface Binding extends Bindings {
  readonly next: Binding | undefined;
  reference(): unknown;
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
 *
 * Expressions run on the compiled FHIRPath subset where they lie within it, else on `fhirpath`
 * (fhirpath-subset.ts). The input is not changed: the walk copies only the items on the way to a
 * computed answer (copy on write), instead of cloning the whole response.
 */
export function applyScores(
  compiled: CompiledQuestionnaire,
  response: QuestionnaireResponse,
  options: ScoreOptions = {},
): ScoredResponse {
  const scored: QuestionnaireResponse = { ...response, questionnaire: compiled.canonical };
  const run = new ScoreRun(!options.referenceOnly);
  const base: Binding = {
    name: 'questionnaire',
    fast: undefined,
    reference: () => compiled.questionnaire,
    next: {
      name: 'resource',
      fast: [{ kind: 'response', data: scored }],
      reference: () => scored,
      next: undefined,
    },
  };
  const env = run.bind(base, compiled.variables, { kind: 'response', data: scored });
  run.level(compiled.root, scored, env);
  return { response: scored, issues: run.issues };
}

class ScoreRun {
  readonly issues: OperationOutcomeIssue[] = [];

  constructor(private readonly useSubset: boolean) {}

  /** The bindings extended with `variables` evaluated against `context`. */
  bind(env: Binding, variables: readonly CompiledVariable[], context: Value): Binding {
    for (const variable of variables) {
      const outer = env;
      if (variable.constant) {
        const constant = variable.constant;
        env = { name: variable.name, fast: variable.fastConstant, reference: () => constant, next: outer };
        continue;
      }
      const binding = new VariableBinding(this, variable, context, outer);
      if (!binding.fast) {
        binding.reference(); // as the reference engine does: every variable is evaluated, failures reported now
      }
      env = binding;
    }
    return env;
  }

  /** Computes the scored items among `parentDef`'s children inside one holder (the response, an item or an answer), which is this run's own copy. */
  level(parentDef: CompiledItem, holder: ItemHolder, env: Binding): void {
    if (holder.item) {
      holder.item = holder.item.slice();
    }
    for (const def of parentDef.children) {
      if (!def.scored) {
        continue;
      }
      if (def.calculated) {
        const existing = holder.item?.find((i) => i.linkId === def.linkId);
        const context: Value = { kind: 'item', data: existing ?? { linkId: def.linkId } };
        const scope = this.bind(env, def.variables, context);
        const answer = this.toAnswer(def, this.calculate(def.calculated, context, scope, `'${def.linkId}'`));
        this.reportOverwrite(def, existing, answer);
        setAnswer(holder, def, existing, answer);
      }
      if (!def.children.some((c) => c.scored)) {
        continue;
      }
      const siblings = holder.item ?? [];
      const instances: QuestionnaireResponseItem[] = [];
      siblings.forEach((item, i) => {
        if (item.linkId === def.linkId) {
          const copy = { ...item };
          siblings[i] = copy;
          instances.push(copy);
        }
      });
      if (def.type === 'group' && !instances.length) {
        // An absent group may still get a score (from items elsewhere): compute into a provisional
        // instance and keep it only if something was computed.
        const provisional: QuestionnaireResponseItem = {
          linkId: def.linkId,
          ...(def.text ? { text: def.text } : {}),
          item: [],
        };
        this.level(def, provisional, this.bind(env, def.variables, { kind: 'item', data: provisional }));
        if (provisional.item?.length) {
          insertItem(holder, def, provisional);
        }
        continue;
      }
      for (const instance of instances) {
        const scope = this.bind(env, def.variables, { kind: 'item', data: instance });
        if (def.type === 'group') {
          this.level(def, instance, scope);
        } else if (instance.answer) {
          instance.answer = instance.answer.map((answer) => ({ ...answer }));
          for (const answer of instance.answer) {
            this.level(def, answer, scope);
          }
        }
      }
    }
  }

  /** The subset's result, or undefined when it does not cover the expression or this input. */
  fast(expr: CompiledExpression, context: Value, env: Binding): Value[] | undefined {
    if (!this.useSubset || !expr.fast) {
      return undefined;
    }
    try {
      return expr.fast(context, env);
    } catch {
      // NotCovered (or anything unforeseen): the reference engine decides, errors included.
      return undefined;
    }
  }

  /** A calculatedExpression's result as fhirpath gives it (internal types resolved). */
  private calculate(expr: CompiledExpression, context: Value, env: Binding, what: string): unknown[] {
    const fast = this.fast(expr, context, env);
    if (fast) {
      try {
        return fast.map(resolved);
      } catch {
        // a value the subset does not hand out itself: fall through to the reference
      }
    }
    return this.evaluate(expr.evaluate, context.data, environment(env), what);
  }

  evaluate(fn: (input: unknown, env: Env) => unknown[], input: unknown, env: Env, what: string): unknown[] {
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

  /**
   * A client's own answer to a calculated item that differs from the computed one is reported, not
   * silently replaced. A warning, not an error: the HL7 validator does not compute calculatedExpressions,
   * so it accepts any well-formed answer there (validate.ts checks that form), and the stored value is
   * the server's in any case.
   */
  private reportOverwrite(
    def: CompiledItem,
    existing: QuestionnaireResponseItem | undefined,
    answer: QuestionnaireResponseItemAnswer | undefined,
  ): void {
    const sent = existing?.answer?.filter((a) => valueKeyOf(a) !== undefined) ?? [];
    // Compared as JSON: the parsed request body's objects need not share the computed ones' prototype.
    if (sent.length === 0 || JSON.stringify(sent) === JSON.stringify(answer ? [answer] : [])) {
      return;
    }
    // The values stay out of the message: it reaches the sender's response and may be logged (DESIGN §3.1).
    this.issues.push(
      issue(
        'business-rule',
        answer
          ? `'${def.linkId}' is computed by the server: the answer sent differs and was replaced by the computed one`
          : `'${def.linkId}' is computed by the server: the answer sent was removed, as this response does not give it a value`,
        'QuestionnaireResponse',
        'warning',
      ),
    );
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

type Env = Record<string, unknown>;

/** A variable evaluated by the subset when it can; fhirpath's value is computed when first asked for. */
class VariableBinding implements Binding {
  readonly name: string;
  readonly fast: Value[] | undefined;
  private memo: unknown[] | undefined;

  constructor(
    private readonly run: ScoreRun,
    private readonly variable: CompiledVariable,
    private readonly context: Value,
    readonly next: Binding,
  ) {
    this.name = variable.name;
    this.fast = run.fast(variable.expr, context, next);
  }

  reference(): unknown[] {
    this.memo ??= this.run.evaluate(
      this.variable.expr.evaluate,
      this.context.data,
      environment(this.next),
      `the variable %${this.variable.name}`,
    );
    return this.memo;
  }
}

/** fhirpath's environment for the bindings in scope: the innermost binding of a name wins. */
function environment(bindings: Binding | undefined): Env {
  const env: Env = {};
  for (let b = bindings; b; b = b.next) {
    if (!(b.name in env)) {
      env[b.name] = b.reference();
    }
  }
  return env;
}

/** Sets, replaces or (when `answer` is undefined) removes the answer of calculated item `def` in `holder`. */
function setAnswer(
  holder: ItemHolder,
  def: CompiledItem,
  existing: QuestionnaireResponseItem | undefined,
  answer: QuestionnaireResponseItemAnswer | undefined,
): void {
  // `holder.item` is this run's copy; `existing` is still the input's item, so it is replaced, not changed.
  if (answer) {
    if (existing) {
      replaceItem(holder, existing, { ...existing, answer: [answer] });
    } else {
      insertItem(holder, def, {
        linkId: def.linkId,
        ...(def.text ? { text: def.text } : {}),
        answer: [answer],
      });
    }
  } else if (existing) {
    const { answer: _dropped, ...rest } = existing;
    replaceItem(holder, existing, rest.item?.length ? rest : undefined);
  }
}

/** Puts `replacement` where `existing` was in the holder's own item list, or removes it. */
function replaceItem(
  holder: ItemHolder,
  existing: QuestionnaireResponseItem,
  replacement: QuestionnaireResponseItem | undefined,
): void {
  const items = holder.item ?? [];
  const at = items.indexOf(existing);
  if (at < 0) {
    return;
  }
  if (replacement) {
    items[at] = replacement;
  } else {
    items.splice(at, 1);
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
