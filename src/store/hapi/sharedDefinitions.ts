import type { Bundle, Coding, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { UNIT_LABEL_SYSTEM } from '../../auth/unitLabel';
import { errors } from '../../fhir/outcomes';
import { NORPAIN_PROFILES } from '../../validation/profiles';

/**
 * The tags, security labels and profiles HAPI may be sent. HAPI keeps every distinct `meta.tag`,
 * `meta.security` and `meta.profile` value in one shared definition table (`hfj_tag_def`) that `$expunge`
 * does not clear and no vacuum empties: a value that once reached it stays for ever, whoever it was about.
 * So only the registry's own fixed values may reach HAPI (the unit labels the write path sets, the NorPain
 * profiles); a resource carrying anything else is refused before HAPI sees it. The ingest pipeline sets
 * and filters these values; this is the store's own guard, so that no path around the pipeline can put
 * an identifier where erasure cannot reach it.
 */
export interface SharedDefinitions {
  profiles: readonly string[];
  security: readonly Coding[];
  tags: readonly Coding[];
}

/** The registry's fixed values: the NorPain profiles and the participating units' labels; no tags. */
export function registryDefinitions(unitResh: readonly string[]): SharedDefinitions {
  return {
    profiles: Object.values(NORPAIN_PROFILES),
    security: unitResh.map((code) => ({ system: UNIT_LABEL_SYSTEM, code })),
    tags: [],
  };
}

/** Refuses (422, nothing sent to HAPI) a resource with a tag, label or profile not in `allowed`. */
export function checkSharedDefinitions(resource: Resource, allowed: SharedDefinitions, path: string): void {
  const issues = unlisted(resource, allowed, path);
  if (issues.length > 0) {
    throw errors.unprocessable(issues);
  }
}

/** The same for every entry of a transaction Bundle. */
export function checkBundleDefinitions(bundle: Bundle, allowed: SharedDefinitions): void {
  const issues = (bundle.entry ?? []).flatMap((entry, i) =>
    entry.resource ? unlisted(entry.resource, allowed, `Bundle.entry[${i}].resource`) : [],
  );
  if (issues.length > 0) {
    throw errors.unprocessable(issues);
  }
}

function unlisted(resource: Resource, allowed: SharedDefinitions, path: string): OperationOutcomeIssue[] {
  const issues: OperationOutcomeIssue[] = [];
  const meta = resource.meta;
  (meta?.profile ?? []).forEach((profile, i) => {
    if (!allowed.profiles.includes(profile)) {
      issues.push(refusal(`${path}.meta.profile[${i}]`, 'profile'));
    }
  });
  for (const [element, list] of [
    ['security', allowed.security],
    ['tag', allowed.tags],
  ] as const) {
    (meta?.[element] ?? []).forEach((coding, i) => {
      if (!list.some((c) => c.system === coding.system && c.code === coding.code)) {
        issues.push(refusal(`${path}.meta.${element}[${i}]`, element === 'tag' ? 'tag' : 'security label'));
      }
    });
  }
  return issues;
}

function refusal(expression: string, what: string): OperationOutcomeIssue {
  return {
    severity: 'error',
    code: 'business-rule',
    details: { text: `This ${what} is not one the registry stores; remove it.` },
    expression: [expression],
  };
}
