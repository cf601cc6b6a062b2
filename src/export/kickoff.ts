import type { ResourceType } from '@medplum/fhirtypes';
import { decide } from '../auth/matrix';
import type { Principal } from '../auth/principal';
import { errors, FhirError, issue, operationOutcome } from '../fhir/outcomes';
import type { OperationRequest } from '../fhir/classify';

/**
 * The kick-off request of a Bulk Data export (Bulk Data Access IG v2, "Bulk Data Kick-off Request"),
 * checked before any job exists: `Prefer: respond-async`, `_outputFormat` (the NDJSON forms the IG lists),
 * `_type` (types of the caller's view that its scopes let it read), `_since` (an instant). Parameters the
 * IG defines that this server does not support are refused rather than ignored, so a client never gets
 * more, or other, data than it asked for.
 */
export interface KickOff {
  types: ResourceType[];
  since?: string;
}

const NDJSON_FORMATS = ['application/fhir+ndjson', 'application/ndjson', 'ndjson'];

const UNSUPPORTED = ['_elements', 'patient', '_typeFilter', 'includeAssociatedData', 'organizeOutputBy'];
const IGNORED = new Set(['_format', '_pretty']);
const KNOWN = new Set(['_type', '_since', '_outputFormat', ...IGNORED]);

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export function parseKickOff(
  request: OperationRequest,
  principal: Principal,
  offered: readonly ResourceType[],
): KickOff {
  if (!/(^|[,;\s])respond-async($|[,;\s])/i.test(request.header('prefer') ?? '')) {
    throw errors.badRequest('A Bulk Data export is asynchronous: send the header "Prefer: respond-async".');
  }
  for (const name of new Set(request.params.keys())) {
    if (UNSUPPORTED.includes(name)) {
      throw notSupported(
        `This server does not support the ${name} parameter of $export; leave it out.`,
        name,
      );
    }
    if (!KNOWN.has(name)) {
      throw notSupported('$export takes only the parameters _type, _since and _outputFormat.', '$export');
    }
  }
  const format = request.params.get('_outputFormat');
  if (format !== null && !NDJSON_FORMATS.includes(format)) {
    throw notSupported(
      'This _outputFormat is not supported; use application/fhir+ndjson (or leave it out).',
      '_outputFormat',
    );
  }
  const since = request.params.get('_since') ?? undefined;
  if (since !== undefined && (!INSTANT.test(since) || Number.isNaN(Date.parse(since)))) {
    throw errors.badRequest('_since must be a FHIR instant such as 2026-01-01T00:00:00Z.', '_since');
  }
  const readable = offered.filter((type) => decide(principal, type, 'r').allowed);
  const asked = request.params
    .getAll('_type')
    .flatMap((value) => value.split(','))
    .map((type) => type.trim())
    .filter((type) => type !== '');
  if (asked.length === 0) {
    if (readable.length === 0) {
      throw errors.forbidden('This token may read none of the resource types this export offers.');
    }
    return { types: readable, since };
  }
  for (const type of asked) {
    if (!(offered as readonly string[]).includes(type)) {
      throw notSupported(
        `A _type asked for is not in this export; it offers ${offered.join(', ')}.`,
        '_type',
      );
    }
    if (!(readable as readonly string[]).includes(type)) {
      throw errors.forbidden(`The token's scopes do not allow reading ${type}.`);
    }
  }
  return { types: [...new Set(asked)] as ResourceType[], since };
}

function notSupported(text: string, parameter: string): FhirError {
  return new FhirError(400, operationOutcome([issue('not-supported', text, parameter)]));
}
