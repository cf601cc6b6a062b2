import type { QuestionnaireItem } from '@medplum/fhirtypes';
import { conceptDisplays, expandValueSet, valueSetSystems } from '../valuesets';
import type { AnswerCheck } from './answers';

/**
 * The terminology checks of a Coding answer that need no terminology server, as the HL7 validator makes
 * them where it holds the terminology:
 * - an answer ValueSet that is not the Questionnaire's own and cannot be expanded here (SNOMED CT filters,
 *   a ValueSet we do not hold): a code from a system the ValueSet does not draw on is an error, anything
 *   else a warning that membership was not checked (expandable ones are answer options, answers.ts);
 * - the display of a code from a CodeSystem we hold completely (the FHIR R4 ones) must be its display or
 *   one of its designations: otherwise a warning, the severity HAPI's terminology support gives a display
 *   mismatch by default (its JPA server's `$validate` does not report one on an answer at all).
 */
export function compileTerminologyChecks(item: QuestionnaireItem): AnswerCheck[] {
  if (item.type !== 'choice' && item.type !== 'open-choice') {
    return [];
  }
  const checks: AnswerCheck[] = [display];
  const url = item.answerValueSet;
  if (url && !url.startsWith('#') && !expandValueSet(url)) {
    const systems = valueSetSystems(url);
    checks.push((answer) => {
      const coding = answer.valueCoding;
      if (!coding?.system) {
        return undefined; // a Coding without a system is refused as such (validate.ts)
      }
      return systems && !systems.has(coding.system)
        ? {
            code: 'code-invalid',
            text: `The code '${coding.code ?? ''}' (${coding.system}) is not in the answer ValueSet ${url}, which draws only on ${[...systems].join(', ')}`,
          }
        : {
            code: 'code-invalid',
            severity: 'warning',
            text: `The answer ValueSet ${url} cannot be expanded here (it needs a terminology server), so the code '${coding.code ?? ''}' was not checked against it`,
          };
    });
  }
  return checks;
}

const display: AnswerCheck = (answer) => {
  const coding = answer.valueCoding;
  if (coding?.display === undefined || !coding.system || !coding.code) {
    return undefined;
  }
  const known = conceptDisplays(coding.system, coding.code);
  const given = normalise(coding.display);
  if (!known?.length || known.some((text) => normalise(text) === given)) {
    return undefined;
  }
  return {
    code: 'invalid',
    severity: 'warning',
    text: `The display '${coding.display}' is not the display of '${coding.code}' in ${coding.system} ('${known[0]}')`,
  };
};

/** Displays compare without regard to case or runs of white space, as terminology servers do. */
function normalise(text: string): string {
  return text.trim().replace(/\s+/g, ' ').toLowerCase();
}
