import type {
  Coding,
  QuestionnaireResponse,
  QuestionnaireResponseItem,
  QuestionnaireResponseItemAnswer,
} from '@medplum/fhirtypes';
import fhirpath from 'fhirpath';

/**
 * A compiler for the subset of FHIRPath that Questionnaire scoring is written in — navigation over
 * response items and answers (`item.where(linkId in %list).answer.value.code`), `where`/`select`,
 * `toInteger()`, the aggregates (`count`, `sum`, `avg`, `exists`, `empty`), `round`, `power`, `iif`,
 * comparisons, arithmetic, `and`/`or`/`not` — into plain closures over the response's JSON.
 *
 * The `fhirpath` library stays the reference: it wraps every element it visits in a typed node (about
 * 2 µs each), which made recomputing a baseline's scores cost over a millisecond. An expression the
 * subset does not cover at compile time gets no fast form; a value it does not model exactly at run
 * time (a primitive with extensions, a date, a non-singleton where a singleton is required, …) makes it
 * throw {@link NotCovered} and the caller evaluates that expression with `fhirpath` instead. So the fast
 * form only answers where its answer is the reference's, operation by operation, including fhirpath.js's
 * own number semantics (decimal literals and arithmetic results compared at 1e-8 precision).
 */

/** A value in the subset's model. `node`: it came from the response (fhirpath holds it as a typed node). */
export type Value =
  | { readonly kind: 'response'; readonly data: QuestionnaireResponse }
  | { readonly kind: 'item'; readonly data: QuestionnaireResponseItem }
  | { readonly kind: 'answer'; readonly data: QuestionnaireResponseItemAnswer }
  | { readonly kind: 'coding'; readonly data: Coding }
  /** An element the subset can count and test for existence but not compute with (date, Quantity, …). */
  | { readonly kind: 'opaque'; readonly data: unknown }
  | { readonly kind: 'string'; readonly data: string; readonly node: boolean }
  | { readonly kind: 'boolean'; readonly data: boolean; readonly node: boolean }
  /** `fp`: fhirpath.js holds the number as an FP_Decimal (literals, arithmetic and aggregate results). */
  | { readonly kind: 'number'; readonly data: number; readonly fp: boolean };

/** Where `%name` finds its value: a chain of bindings, innermost first. `fast` undefined: only fhirpath has it. */
export interface Bindings {
  readonly name: string;
  readonly fast: readonly Value[] | undefined;
  readonly next: Bindings | undefined;
}

/** A compiled expression: evaluates against one input value. Throws {@link NotCovered} to hand over to fhirpath. */
export type SubsetExpression = (input: Value, bindings: Bindings | undefined) => Value[];

/** Thrown when the subset cannot give the reference result for this input; evaluate with fhirpath instead. */
class NotCovered extends Error {
  constructor(what: string) {
    super(`not covered by the FHIRPath subset: ${what}`);
  }
}

interface Ctx {
  /** `$this`, and the focus that operator operands and function arguments start from. */
  readonly focus: Value[];
  readonly bindings: Bindings | undefined;
}

type Fn = (data: Value[], ctx: Ctx) => Value[];

interface Node {
  type?: string;
  text?: string;
  delimitedText?: string;
  children?: Node[];
}

/** Thrown at compile time for an expression outside the subset. */
class Unsupported extends Error {}

/**
 * The fast form of `expression`, or undefined when it uses anything outside the subset. Compiled from
 * fhirpath's own parse tree, so both engines read the same syntax.
 */
export function compileSubset(expression: string): SubsetExpression | undefined {
  let fn: Fn;
  try {
    fn = compile(fhirpath.parse(expression) as Node, true);
  } catch {
    return undefined;
  }
  return (input, bindings) => {
    const focus = [input];
    return fn(focus, { focus, bindings });
  };
}

/** A constant computed by fhirpath (e.g. a list of linkIds) in the subset's model, if it has one there. */
export function constantValues(values: readonly unknown[]): Value[] | undefined {
  const out: Value[] = [];
  for (const v of values) {
    if (typeof v === 'string') {
      out.push({ kind: 'string', data: v, node: false });
    } else if (typeof v === 'boolean') {
      out.push({ kind: 'boolean', data: v, node: false });
    } else {
      return undefined;
    }
  }
  return out;
}

/** The value fhirpath returns for a calculated expression (with resolveInternalTypes), as toAnswer reads it. */
export function resolved(value: Value): unknown {
  if (value.kind === 'opaque') {
    throw new NotCovered('a date or complex value as a result');
  }
  return value.data;
}

const FUNCTIONS: Record<string, (params: Node[]) => Fn> = {
  count: noParams((data) => [num(data.length, false)]),
  exists: (params) => {
    if (params.length === 0) {
      return (data) => [bool(data.length > 0)];
    }
    const where = whereFn(one(params));
    return (data, ctx) => [bool(where(data, ctx).length > 0)];
  },
  empty: noParams((data) => [bool(data.length === 0)]),
  where: (params) => whereFn(one(params)),
  select: (params) => {
    const criteria = compile(one(params), true);
    return (data, ctx) => {
      const out: Value[] = [];
      for (const x of data) {
        const focus = [x];
        for (const v of criteria(focus, { focus, bindings: ctx.bindings })) {
          out.push(v);
        }
      }
      return out;
    };
  },
  sum: noParams(sum),
  avg: noParams((data) => {
    const total = sum(data);
    return total.length ? [num(number(total[0]) / data.length, true)] : [];
  }),
  round: (params) => {
    if (params.length > 1) {
      throw new Unsupported();
    }
    const precision = params.length ? integerLiteral(params[0]) : undefined;
    return (data) => {
      const value = singletonNumber(data);
      if (value === undefined) {
        return [];
      }
      if (precision === undefined) {
        return [num(Math.round(value), true)];
      }
      const scale = Math.pow(10, precision);
      return [num(Math.round(value * scale) / scale, true)];
    };
  },
  power: (params) => {
    const exponent = integerLiteral(one(params));
    return (data) => {
      const value = singletonNumber(data);
      if (value === undefined) {
        return [];
      }
      const result = Math.pow(value, exponent);
      return isNaN(result) ? [] : [num(result, true)];
    };
  },
  toInteger: noParams((data) => {
    if (data.length === 0) {
      return [];
    }
    if (data.length > 1) {
      throw new NotCovered('toInteger() of several values');
    }
    const v = data[0];
    switch (v.kind) {
      case 'boolean':
        return [num(v.data ? 1 : 0, false)];
      case 'number':
        if (Math.abs(v.data) >= 1e15) {
          throw new NotCovered('a very large number');
        }
        return Number.isInteger(v.data) ? [v] : [];
      case 'string':
        return /^[+-]?\d+$/.test(v.data) ? [num(parseInt(v.data, 10), false)] : [];
      default:
        throw new NotCovered('toInteger() of an element');
    }
  }),
  not: noParams((data) => {
    const b = asBoolean(data);
    return b === undefined ? [] : [bool(!b)];
  }),
  iif: (params) => {
    if (params.length < 2 || params.length > 3) {
      throw new Unsupported();
    }
    const [condition, then, otherwise] = params.map((p) => compile(p, true));
    return (data, ctx) => {
      const inner: Ctx = { focus: data, bindings: ctx.bindings };
      const c = condition(data, inner);
      if (c.length === 1 && c[0].kind === 'boolean' && c[0].data) {
        return then(data, inner);
      }
      return otherwise ? otherwise(data, inner) : [];
    };
  },
};

/** FHIR type names a member name could be mistaken for at the start of a path (fhirpath then filters by type). */
const TYPE_NAMES = new Set([
  'boolean',
  'integer',
  'integer64',
  'string',
  'decimal',
  'uri',
  'url',
  'canonical',
  'base64Binary',
  'instant',
  'date',
  'dateTime',
  'time',
  'code',
  'oid',
  'id',
  'markdown',
  'unsignedInt',
  'positiveInt',
  'uuid',
  'xhtml',
]);

/** @param atRoot whether the node starts a path (a member name there may be a type filter). */
function compile(node: Node, atRoot: boolean): Fn {
  const children = node.children ?? [];
  switch (node.type) {
    case 'EntireExpression':
    case 'TermExpression':
    case 'InvocationTerm':
    case 'LiteralTerm':
    case 'ParenthesizedTerm':
      if (children.length !== 1) {
        throw new Unsupported();
      }
      return compile(children[0], atRoot);
    case 'InvocationExpression': {
      const [base, step] = children;
      const first = compile(base, atRoot);
      const then = compile(step, false);
      return (data, ctx) => then(first(data, ctx), ctx);
    }
    case 'MemberInvocation': {
      const name = node.text ?? '';
      if (!/^[a-z][A-Za-z0-9]*$/.test(name) || (atRoot && TYPE_NAMES.has(name))) {
        throw new Unsupported();
      }
      return (data) => {
        const out: Value[] = [];
        for (const v of data) {
          member(v, name, out);
        }
        return out;
      };
    }
    case 'FunctionInvocation': {
      const functn = children[0];
      const [identifier, paramList] = functn?.children ?? [];
      const make = identifier?.text ? FUNCTIONS[identifier.text] : undefined;
      if (!make || !Object.hasOwn(FUNCTIONS, identifier.text ?? '')) {
        throw new Unsupported();
      }
      return make(paramList?.children ?? []);
    }
    case 'ThisInvocation':
      return (_data, ctx) => ctx.focus;
    case 'ExternalConstantTerm': {
      const name = node.text;
      if (!name || node.delimitedText !== undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new Unsupported();
      }
      return (_data, ctx) => {
        for (let b = ctx.bindings; b; b = b.next) {
          if (b.name === name) {
            if (!b.fast) {
              throw new NotCovered(`%${name} is only known to fhirpath`);
            }
            return b.fast as Value[];
          }
        }
        throw new NotCovered(`%${name} is not defined`);
      };
    }
    case 'StringLiteral': {
      const text = node.text ?? '';
      if (text.includes('\\') || !text.startsWith("'") || !text.endsWith("'") || text.length < 2) {
        throw new Unsupported();
      }
      const value: Value[] = [{ kind: 'string', data: text.slice(1, -1), node: false }];
      return () => value;
    }
    case 'NumberLiteral': {
      const value = Number(node.text);
      if (!/^\d+(\.\d+)?$/.test(node.text ?? '') || !isFinite(value)) {
        throw new Unsupported();
      }
      return () => [num(value, true)];
    }
    case 'BooleanLiteral': {
      const value: Value[] = [bool(node.text === 'true')];
      return () => value;
    }
    case 'NullLiteral':
      return () => [];
    case 'EqualityExpression':
    case 'InequalityExpression':
    case 'MembershipExpression':
    case 'AdditiveExpression':
    case 'MultiplicativeExpression':
    case 'AndExpression':
    case 'OrExpression':
    case 'UnionExpression': {
      const op = OPERATORS[node.text ?? ''];
      if (!op || children.length !== 2) {
        throw new Unsupported();
      }
      // fhirpath evaluates both operands from the current focus, not from the path before them.
      const left = compile(children[0], true);
      const right = compile(children[1], true);
      return (_data, ctx) => op(left(ctx.focus, ctx), right(ctx.focus, ctx));
    }
    default:
      throw new Unsupported();
  }
}

function noParams(fn: (data: Value[]) => Value[]): (params: Node[]) => Fn {
  return (params) => {
    if (params.length) {
      throw new Unsupported();
    }
    return fn;
  };
}

function one(params: Node[]): Node {
  if (params.length !== 1) {
    throw new Unsupported();
  }
  return params[0];
}

function integerLiteral(param: Node): number {
  let node: Node | undefined = param;
  while (node && node.type !== 'NumberLiteral' && node.children?.length === 1) {
    node = node.children[0];
  }
  if (node?.type !== 'NumberLiteral' || !/^\d+$/.test(node.text ?? '')) {
    throw new Unsupported();
  }
  return Number(node.text);
}

function whereFn(param: Node): Fn {
  const criteria = compile(param, true);
  return (data, ctx) => {
    const out: Value[] = [];
    for (const x of data) {
      const focus = [x];
      const result = criteria(focus, { focus, bindings: ctx.bindings });
      if (!result.length) {
        continue;
      }
      // fhirpath keeps the element when the criteria's first value is truthy in JS: exact for a computed
      // boolean, not for an element (a node object is always truthy).
      const first = result[0];
      if (first.kind !== 'boolean' || first.node) {
        throw new NotCovered('a where() criteria that is not a computed boolean');
      }
      if (first.data) {
        out.push(x);
      }
    }
    return out;
  };
}

function num(data: number, fp: boolean): Value {
  return { kind: 'number', data, fp };
}

function bool(data: boolean): Value {
  return { kind: 'boolean', data, node: false };
}

function number(v: Value): number {
  if (v.kind !== 'number') {
    throw new NotCovered(`arithmetic on a ${v.kind}`);
  }
  return v.data;
}

function singletonNumber(data: Value[]): number | undefined {
  if (data.length === 0) {
    return undefined;
  }
  if (data.length > 1) {
    throw new NotCovered('a collection where a single number is expected');
  }
  return number(data[0]);
}

/** fhirpath's sum(): the first value alone as it is, else a left fold of `+` (an FP_Decimal). */
function sum(data: Value[]): Value[] {
  if (data.length === 0) {
    return [];
  }
  let total = number(data[0]);
  if (data.length === 1) {
    return [data[0]];
  }
  for (let i = 1; i < data.length; i++) {
    total = number(data[i]) + total;
  }
  return [num(total, true)];
}

/** A primitive child of a JSON element, unless fhirpath would merge in an extension (`_name`). */
function primitive(owner: object, name: string, shadow: string): unknown {
  if (shadow in owner) {
    throw new NotCovered(`an extension on ${name}`);
  }
  return (owner as Record<string, unknown>)[name];
}

function pushString(out: Value[], data: unknown): void {
  if (data === undefined) {
    return;
  }
  if (typeof data !== 'string') {
    throw new NotCovered('a malformed string');
  }
  out.push({ kind: 'string', data, node: true });
}

function member(v: Value, name: string, out: Value[]): void {
  switch (v.kind) {
    case 'response':
      if (name === 'item') {
        pushItems(v.data.item, out);
        return;
      }
      break;
    case 'item':
      switch (name) {
        case 'linkId':
          pushString(out, primitive(v.data, 'linkId', '_linkId'));
          return;
        case 'text':
          pushString(out, primitive(v.data, 'text', '_text'));
          return;
        case 'item':
          pushItems(v.data.item, out);
          return;
        case 'answer':
          if (v.data.answer !== undefined) {
            if (!Array.isArray(v.data.answer)) {
              throw new NotCovered('a malformed answer');
            }
            for (const data of v.data.answer) {
              out.push({ kind: 'answer', data });
            }
          }
          return;
      }
      break;
    case 'answer':
      if (name === 'value') {
        answerValue(v.data, out);
        return;
      }
      if (name === 'item') {
        pushItems(v.data.item, out);
        return;
      }
      break;
    case 'coding':
      switch (name) {
        case 'system':
        case 'version':
        case 'code':
        case 'display':
          pushString(out, primitive(v.data, name, SHADOW[name]));
          return;
      }
      break;
  }
  throw new NotCovered(`${name} of a ${v.kind}`);
}

const SHADOW: Record<string, string> = {
  system: '_system',
  version: '_version',
  code: '_code',
  display: '_display',
};

function pushItems(items: QuestionnaireResponseItem[] | undefined, out: Value[]): void {
  if (items === undefined) {
    return;
  }
  if (!Array.isArray(items)) {
    throw new NotCovered('malformed items');
  }
  for (const data of items) {
    out.push({ kind: 'item', data });
  }
}

/** `answer.value`: the one value[x] of an answer, typed the way fhirpath's R4 model types it. */
function answerValue(answer: QuestionnaireResponseItemAnswer, out: Value[]): void {
  let found: Value | undefined;
  for (const key in answer) {
    if (key.startsWith('_value')) {
      throw new NotCovered('an extension on an answer value');
    }
    if (!key.startsWith('value')) {
      continue;
    }
    if (found) {
      throw new NotCovered('an answer with several values');
    }
    const data: unknown = (answer as Record<string, unknown>)[key];
    switch (key) {
      case 'valueInteger':
      case 'valueDecimal':
        if (typeof data !== 'number') {
          throw new NotCovered('a malformed number');
        }
        found = { kind: 'number', data, fp: false };
        break;
      case 'valueString':
      case 'valueUri':
        if (typeof data !== 'string') {
          throw new NotCovered('a malformed string');
        }
        found = { kind: 'string', data, node: true };
        break;
      case 'valueBoolean':
        if (typeof data !== 'boolean') {
          throw new NotCovered('a malformed boolean');
        }
        found = { kind: 'boolean', data, node: true };
        break;
      case 'valueCoding':
        if (typeof data !== 'object' || data === null) {
          throw new NotCovered('a malformed Coding');
        }
        found = { kind: 'coding', data: data as Coding };
        break;
      case 'valueDate':
      case 'valueDateTime':
      case 'valueTime':
      case 'valueAttachment':
      case 'valueQuantity':
      case 'valueReference':
        found = { kind: 'opaque', data };
        break;
      default:
        throw new NotCovered(`an answer element ${key}`);
    }
  }
  if (found) {
    out.push(found);
  }
}

type Operator = (left: Value[], right: Value[]) => Value[];

const PRECISION_STEP = 1e-8;
/** fhirpath.js compares and equates decimals after rounding to its maximum precision. */
function roundToMaxPrecision(x: number): number {
  return Math.round(x / PRECISION_STEP) * PRECISION_STEP;
}

/** fhirpath's `=` on two single values; undefined when the subset cannot tell. */
function equal(a: Value, b: Value): boolean {
  if (a.kind === 'number' && b.kind === 'number') {
    return roundToMaxPrecision(a.data) === roundToMaxPrecision(b.data);
  }
  if (!isScalar(a) || !isScalar(b)) {
    throw new NotCovered('equality of elements');
  }
  return a.kind === b.kind && a.data === b.data;
}

function isScalar(v: Value): boolean {
  return v.kind === 'number' || v.kind === 'string' || v.kind === 'boolean';
}

function singletons(left: Value[], right: Value[]): [Value, Value] {
  if (left.length !== 1 || right.length !== 1) {
    throw new NotCovered('an operator on several values');
  }
  return [left[0], right[0]];
}

function comparison(test: (order: number) => boolean): Operator {
  return (left, right) => {
    if (!left.length || !right.length) {
      return [];
    }
    const [a, b] = singletons(left, right);
    let order: number;
    if (a.kind === 'number' && b.kind === 'number') {
      const [x, y] =
        a.fp || b.fp ? [roundToMaxPrecision(a.data), roundToMaxPrecision(b.data)] : [a.data, b.data];
      order = x < y ? -1 : x > y ? 1 : 0;
    } else if (a.kind === 'string' && b.kind === 'string') {
      order = a.data < b.data ? -1 : a.data > b.data ? 1 : 0;
    } else {
      throw new NotCovered(`comparing a ${a.kind} with a ${b.kind}`);
    }
    return [bool(test(order))];
  };
}

function arithmetic(op: (x: number, y: number) => number | undefined): Operator {
  return (left, right) => {
    if (!left.length || !right.length) {
      return [];
    }
    const [a, b] = singletons(left, right);
    const result = op(number(a), number(b));
    return result === undefined ? [] : [num(result, true)];
  };
}

/** fhirpath's conversion of an operand of and/or/not: empty stays empty, a non-boolean single value is true. */
function asBoolean(values: Value[]): boolean | undefined {
  if (!values.length) {
    return undefined;
  }
  if (values.length > 1) {
    throw new NotCovered('a collection where a boolean is expected');
  }
  const v = values[0];
  return v.kind === 'boolean' ? v.data : true;
}

function membership(needle: Value[], haystack: Value[]): Value[] {
  if (!needle.length) {
    return [];
  }
  if (!haystack.length) {
    return [bool(false)];
  }
  if (needle.length > 1) {
    throw new NotCovered('membership of several values');
  }
  for (const candidate of haystack) {
    if (equal(candidate, needle[0])) {
      return [bool(true)];
    }
  }
  return [bool(false)];
}

const OPERATORS: Record<string, Operator> = {
  '=': (left, right) => {
    if (!left.length || !right.length) {
      return [];
    }
    const [a, b] = singletons(left, right);
    return [bool(equal(a, b))];
  },
  '!=': (left, right) => {
    if (!left.length || !right.length) {
      return [];
    }
    const [a, b] = singletons(left, right);
    return [bool(!equal(a, b))];
  },
  '<': comparison((o) => o < 0),
  '>': comparison((o) => o > 0),
  '<=': comparison((o) => o <= 0),
  '>=': comparison((o) => o >= 0),
  in: (left, right) => membership(left, right),
  contains: (left, right) => membership(right, left),
  '+': arithmetic((x, y) => x + y),
  '-': arithmetic((x, y) => x - y),
  '*': arithmetic((x, y) => x * y),
  '/': arithmetic((x, y) => (y === 0 ? undefined : x / y)),
  and: (left, right) => {
    const a = asBoolean(left);
    const b = asBoolean(right);
    if (a === false || b === false) {
      return [bool(false)];
    }
    return a === undefined || b === undefined ? [] : [bool(true)];
  },
  or: (left, right) => {
    const a = asBoolean(left);
    const b = asBoolean(right);
    if (a === true || b === true) {
      return [bool(true)];
    }
    return a === undefined || b === undefined ? [] : [bool(false)];
  },
  '|': (left, right) => {
    const out: Value[] = [];
    for (const v of [...left, ...right]) {
      if (v.kind !== 'string' || v.node) {
        throw new NotCovered('a union of anything but string literals');
      }
      if (!out.some((o) => o.data === v.data)) {
        out.push(v);
      }
    }
    return out;
  },
};
