import type { Expression, OperationOutcomeIssue, Questionnaire, QuestionnaireItem } from '@medplum/fhirtypes';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4';
import { issue } from '../../fhir/outcomes';
import {
  allowedValueKeys,
  compileChecks,
  compileOptions,
  EXT,
  extensionsOf,
  type AnswerCheck,
  type AnswerValueKey,
  type OptionSet,
} from './answers';
import { compileAttachmentChecks } from './attachment';
import { compileEnableWhen, type CompiledEnableWhen } from './enableWhen';
import { compileSubset, constantValues, type SubsetExpression, type Value } from './fhirpath-subset';
import { compileQuantityChecks } from './quantity';
import { compileTerminologyChecks } from './terminology';

/** A FHIRPath expression parsed once, evaluated with the R4 model. */
export interface CompiledExpression {
  readonly expression: string;
  readonly evaluate: (input: unknown, env: Record<string, unknown>) => unknown[];
  /** The same expression compiled by the FHIRPath subset (fhirpath-subset.ts), when it lies within it. */
  readonly fast: SubsetExpression | undefined;
}

/**
 * An SDC `variable` declared on the Questionnaire or an item. A variable whose expression reads nothing
 * from the response (e.g. a list of linkIds) is evaluated once here, so a response only pays for the
 * variables that depend on it.
 */
export interface CompiledVariable {
  readonly name: string;
  readonly expr: CompiledExpression;
  /** The value, when the expression is constant. */
  readonly constant: unknown[] | undefined;
  /** The constant in the subset's model, when it has one there. */
  readonly fastConstant: Value[] | undefined;
}

export interface CompiledItem {
  readonly linkId: string;
  readonly text: string | undefined;
  /** The item's text (or linkId) for messages. */
  readonly label: string;
  readonly type: QuestionnaireItem['type'];
  readonly required: boolean;
  readonly repeats: boolean;
  readonly readOnly: boolean;
  readonly parent: CompiledItem | undefined;
  /** Position among its siblings in the Questionnaire. */
  readonly index: number;
  readonly children: readonly CompiledItem[];
  readonly childIndex: ReadonlyMap<string, CompiledItem>;
  readonly enableWhen: CompiledEnableWhen | undefined;
  readonly valueKeys: ReadonlySet<AnswerValueKey>;
  readonly options: OptionSet | undefined;
  readonly checks: readonly AnswerCheck[];
  /** maxDecimalPlaces, used to round computed decimals. */
  readonly decimalPlaces: number | undefined;
  readonly minOccurs: number | undefined;
  readonly maxOccurs: number | undefined;
  /** SDC calculatedExpression: the server computes this item's answer. */
  readonly calculated: CompiledExpression | undefined;
  /** SDC variables declared on this item, in order; their context is the item's response item. */
  readonly variables: readonly CompiledVariable[];
  /** Whether this item or an item below it has a calculatedExpression (scoring walks only these). */
  readonly scored: boolean;
}

export interface CompiledQuestionnaire {
  readonly questionnaire: Questionnaire;
  /** `url|version` this compilation was made from (url alone when the Questionnaire has no version). */
  readonly canonical: string;
  readonly root: CompiledItem;
  /** Every item by linkId (linkIds are unique within a Questionnaire, R4 que-2). */
  readonly byLinkId: ReadonlyMap<string, CompiledItem>;
  /** Calculated items in Questionnaire order. */
  readonly calculated: readonly CompiledItem[];
  /** SDC variables declared on the Questionnaire; their context is the response. */
  readonly variables: readonly CompiledVariable[];
  readonly hasEnableWhen: boolean;
  /** Problems found in the Questionnaire itself (bad enableWhen targets, FHIRPath syntax, …). */
  readonly issues: readonly OperationOutcomeIssue[];
}

const FHIRPATH_LANGUAGE = 'text/fhirpath';
/** The FHIR type of the context of an item's expressions. */
const ITEM_BASE = 'QuestionnaireResponse.item';

/**
 * Turns a Questionnaire into the structures validation and scoring need, once: a linkId index, child
 * order maps, enableWhen closures, answer option sets, value checks and parsed FHIRPath expressions.
 */
export function compileQuestionnaire(questionnaire: Questionnaire): CompiledQuestionnaire {
  const issues: OperationOutcomeIssue[] = [];
  const byLinkId = new Map<string, CompiledItem>();
  const calculated: CompiledItem[] = [];
  let hasEnableWhen = false;

  /**
   * `onItem`: the expression is declared on an item, so its context is a response item (a plain object,
   * given its FHIR type here so that choice elements such as `answer.value` resolve). `internal`: keep
   * fhirpath's typed values in the result (for variables, so that `%date + 12 months` still knows
   * `%date` is a FHIR date).
   */
  const compileExpression = (
    expr: Expression | undefined,
    path: string,
    onItem: boolean,
    internal = false,
  ): CompiledExpression | undefined => {
    if (!expr?.expression) {
      return undefined;
    }
    if (expr.language && expr.language !== FHIRPATH_LANGUAGE) {
      issues.push(
        issue('not-supported', `Only FHIRPath expressions can be computed (found ${expr.language})`, path),
      );
      return undefined;
    }
    try {
      const fn = fhirpath.compile(
        onItem ? { base: ITEM_BASE, expression: expr.expression } : expr.expression,
        r4model,
        { resolveInternalTypes: !internal },
      );
      return {
        expression: expr.expression,
        evaluate: (input, env) => fn(input, env) as unknown[],
        fast: compileSubset(expr.expression),
      };
    } catch (err) {
      issues.push(
        issue(
          'invalid',
          `The FHIRPath expression cannot be parsed: ${(err as Error).message.split('\n')[0]}`,
          path,
        ),
      );
      return undefined;
    }
  };

  const variablesOf = (
    element: { extension?: QuestionnaireItem['extension'] },
    path: string,
    onItem: boolean,
  ) =>
    extensionsOf(element, EXT.variable).flatMap((ext, i): CompiledVariable[] => {
      const name = ext.valueExpression?.name;
      const expr = compileExpression(ext.valueExpression, `${path}.extension[${i}]`, onItem, true);
      if (!expr || !name) {
        return [];
      }
      const constant = isConstant(expr.expression) ? expr.evaluate({}, {}) : undefined;
      return [{ name, expr, constant, fastConstant: constant && constantValues(constant) }];
    });

  const build = (
    item: QuestionnaireItem,
    parent: CompiledItem | undefined,
    index: number,
    path: string,
  ): CompiledItem => {
    const calcExt = extensionsOf(item, EXT.calculatedExpression)[0];
    const children: CompiledItem[] = [];
    const childIndex = new Map<string, CompiledItem>();
    const node: CompiledItem = {
      linkId: item.linkId,
      text: item.text,
      label: item.text ? `'${item.linkId}' (${truncate(item.text)})` : `'${item.linkId}'`,
      type: item.type,
      required: item.required === true,
      repeats: item.repeats === true,
      readOnly: item.readOnly === true,
      parent,
      index,
      children,
      childIndex,
      enableWhen: compileEnableWhen(item),
      valueKeys: allowedValueKeys(item),
      options: compileOptions(item, questionnaire),
      checks: [
        ...compileChecks(item),
        ...compileQuantityChecks(item),
        ...compileAttachmentChecks(item),
        ...compileTerminologyChecks(item),
      ],
      decimalPlaces: extensionsOf(item, EXT.maxDecimalPlaces)[0]?.valueInteger,
      minOccurs: extensionsOf(item, EXT.minOccurs)[0]?.valueInteger,
      maxOccurs: extensionsOf(item, EXT.maxOccurs)[0]?.valueInteger,
      calculated: calcExt ? compileExpression(calcExt.valueExpression, `${path}.extension`, true) : undefined,
      variables: variablesOf(item, path, true),
      scored: false,
    };
    if (byLinkId.has(item.linkId)) {
      issues.push(issue('invalid', `linkId '${item.linkId}' is used more than once`, `${path}.linkId`));
    } else {
      byLinkId.set(item.linkId, node);
    }
    if (node.enableWhen) {
      hasEnableWhen = true;
    }
    if (node.calculated) {
      calculated.push(node);
    }
    (item.item ?? []).forEach((child, i) => {
      const compiledChild = build(child, node, i, `${path}.item[${i}]`);
      children.push(compiledChild);
      childIndex.set(compiledChild.linkId, compiledChild);
    });
    if (node.calculated || children.some((c) => c.scored)) {
      (node as { scored: boolean }).scored = true;
    }
    return node;
  };

  const variables = variablesOf(questionnaire, 'Questionnaire', false);
  const root: CompiledItem = build(
    { linkId: '', type: 'group', item: questionnaire.item } as QuestionnaireItem,
    undefined,
    0,
    'Questionnaire',
  );
  byLinkId.delete('');

  // enableWhen must name a question of this Questionnaire (R4 que-? semantics; HL7 validator error).
  const walk = (items: QuestionnaireItem[] | undefined, path: string): void => {
    items?.forEach((item, i) => {
      item.enableWhen?.forEach((ew, j) => {
        const target = byLinkId.get(ew.question);
        if (!target) {
          issues.push(
            issue(
              'invalid',
              `enableWhen names question '${ew.question}', which is not in the Questionnaire`,
              `${path}.item[${i}].enableWhen[${j}].question`,
            ),
          );
        } else if (target.type === 'group' || target.type === 'display') {
          issues.push(
            issue(
              'invalid',
              `enableWhen names '${ew.question}', which is a ${target.type} and has no answers`,
              `${path}.item[${i}].enableWhen[${j}].question`,
            ),
          );
        }
      });
      if (item.enableWhen && item.enableWhen.length > 1 && !item.enableBehavior) {
        issues.push(
          issue(
            'invalid',
            `Item '${item.linkId}' has several enableWhen conditions but no enableBehavior (que-12)`,
            `${path}.item[${i}]`,
          ),
        );
      }
      const regex = extensionsOf(item, EXT.regex)[0]?.valueString;
      if (regex !== undefined) {
        try {
          new RegExp(regex, 'u');
        } catch {
          issues.push(
            issue(
              'invalid',
              `Item '${item.linkId}' has a regex that cannot be compiled`,
              `${path}.item[${i}].extension`,
            ),
          );
        }
      }
      walk(item.item, `${path}.item[${i}]`);
    });
  };
  walk(questionnaire.item, 'Questionnaire');

  const canonical = questionnaire.version
    ? `${questionnaire.url}|${questionnaire.version}`
    : (questionnaire.url ?? '');
  return { questionnaire, canonical, root, byLinkId, calculated, variables, hasEnableWhen, issues };
}

function truncate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/**
 * Whether an expression reads nothing from its input or environment: only literals and operators on
 * them, such as `('hscl-1' | 'hscl-2')`. Judged on fhirpath's parse tree: any member access (an
 * identifier), `$this`/`$index`/`$total` or `%variable` makes it depend on the response.
 */
function isConstant(expression: string): boolean {
  const dependent = new Set([
    'Identifier',
    'ExternalConstant',
    'ThisInvocation',
    'IndexInvocation',
    'TotalInvocation',
  ]);
  const visit = (node: { type?: string; children?: unknown[] }): boolean =>
    !dependent.has(node.type ?? '') &&
    (node.children ?? []).every((c) => visit(c as { type?: string; children?: unknown[] }));
  try {
    return visit(fhirpath.parse(expression) as { type?: string; children?: unknown[] });
  } catch {
    return false;
  }
}
