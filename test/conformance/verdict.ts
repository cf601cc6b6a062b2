import type { OperationOutcomeIssue } from '@medplum/fhirtypes';

/** One validator's judgement of a case: whether it found an error, and where. */
export interface Verdict {
  error: boolean;
  /** The offending elements, as paths into the response reduced to item and answer steps. */
  elements: string[];
  texts: string[];
}

export function verdictOf(issues: readonly OperationOutcomeIssue[]): Verdict {
  const errors = issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
  return {
    error: errors.length > 0,
    elements: [...new Set(errors.flatMap((i) => (i.expression ?? []).map(element)))],
    texts: errors.map((i) => i.details?.text ?? i.diagnostics ?? ''),
  };
}

/**
 * A path reduced to what both validators name alike: HAPI writes `answer[0].value.ofType(Quantity)` where
 * the server writes `answer[0]` or `answer[0].valueCoding`, and either may add `.linkId` or `.text`.
 */
export function element(path: string): string {
  return path
    .replace(/\.value\.ofType\([A-Za-z]+\)$/, '')
    .replace(/\.(value[A-Z][A-Za-z]*|linkId|text)$/, '');
}

/**
 * Whether two verdicts agree: the same verdict and, when both name elements below the resource itself,
 * at least one element in common, or one inside the other (`item[0]` and `item[0].answer[1]`).
 */
export function agree(ours: Verdict, theirs: Verdict): boolean {
  if (ours.error !== theirs.error) {
    return false;
  }
  const inner = (v: Verdict) => v.elements.filter((e) => e.includes('.'));
  const a = inner(ours);
  const b = inner(theirs);
  if (!ours.error || a.length === 0 || b.length === 0) {
    return true;
  }
  return a.some((x) => b.some((y) => within(x, y) || within(y, x)));
}

function within(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(`${outer}.`);
}
