import type { Bundle, Parameters, Resource, ResourceType } from '@medplum/fhirtypes';
import { literalKey, parseLiteralKey } from '../../fhir/reference';
import type { ErasureOptions, ErasureReceipt } from '../FhirStore';
import { storedReferences } from '../storedReferences';
import { relativeTo } from './bundles';
import { HapiClient, hapiError } from './client';
import type { HapiDatabase } from './database';

/**
 * Physical erasure of a patient compartment on HAPI (DESIGN §3.2, §7): the Patient, every resource that
 * refers to it, and every resource that refers to one of those, with all their versions. HAPI's own
 * cascade is not trusted (it leaves referring resources behind), so the set is found here:
 *  1. searches: `_revinclude=*` from each member finds every current resource that refers to it;
 *  2. history: every version written since the Patient was created is read and every reference in it
 *     (any element, extensions, contained resources) parsed, which finds resources that referred to a
 *     member once but are now deleted or point elsewhere (a search cannot see those); HAPI refuses a
 *     reference to a resource that does not exist, so no version older than the Patient can refer to it;
 * then each member is deleted and `$expunge`d (all versions). The residual is what two independent looks
 * still find: the same two searches, and a scan of every stored version's text for the Patient id and the
 * given texts (in HAPI's database when the store has it, else through the REST history). With the
 * database, HAPI's cached searches naming a member are dropped and the touched tables vacuumed.
 * The cost of step 2 grows with the writes made since the Patient was created; see docs/hapi.md.
 */

const EXPUNGE_ALL: Parameters = {
  resourceType: 'Parameters',
  parameter: [
    { name: 'expungeDeletedResources', valueBoolean: true },
    { name: 'expungePreviousVersions', valueBoolean: true },
  ],
};
const HISTORY_PAGE = 500;
const LONG = 120_000;

export async function eraseCompartment(
  client: HapiClient,
  database: HapiDatabase | undefined,
  patientId: string,
  options: ErasureOptions = {},
): Promise<ErasureReceipt> {
  const texts = [patientId, ...(options.texts ?? [])];
  const patientKey = `Patient/${patientId}`;
  const patientHistory = await versionsOf(client, patientKey);
  const receipt =
    patientHistory === undefined
      ? { erased: {}, versionsErased: 0, residual: 0, members: new Set<string>() }
      : await eraseFound(client, patientKey, patientHistory);
  receipt.residual += database ? await database.traces(texts) : await tracesByHistory(client, texts);
  if (database) {
    await database.forgetSearches([...texts, ...[...receipt.members].map((key) => partsOf(key).id)]);
    await database.vacuum();
  }
  const { members: _members, ...result } = receipt;
  void _members;
  return result;
}

async function eraseFound(
  client: HapiClient,
  patientKey: string,
  patientHistory: Versions,
): Promise<ErasureReceipt & { members: Set<string> }> {
  const members = new Set<string>([patientKey]);
  const history = await referencesSince(client, patientHistory.created);
  await growByReferences(client, members, history);

  // Versions are counted before anything is touched: the erasure's own deletes are not data erased.
  const erased: Record<string, number> = {};
  let versionsErased = 0;
  const order = [...members].reverse(); // those found last refer to those found first
  for (const key of order) {
    const versions = key === patientKey ? patientHistory : await versionsOf(client, key);
    if (versions === undefined) {
      continue; // already gone (expunged by an earlier, interrupted erasure)
    }
    const type = partsOf(key).resourceType;
    erased[type] = (erased[type] ?? 0) + 1;
    versionsErased += versions.count;
  }

  // Delete everything first: a deleted resource no longer holds reference rows, so no expunge below
  // is refused because of one still pointing at it.
  for (const key of order) {
    const response = await client.send({ method: 'DELETE', path: key, idempotent: true, timeoutMs: LONG });
    if (![200, 202, 204, 404, 410].includes(response.status)) {
      throw hapiError(response.status, response.body, 'Erasure could not delete a resource; run it again.');
    }
  }
  for (const key of order) {
    const response = await client.send({
      method: 'POST',
      path: `${key}/$expunge`,
      body: EXPUNGE_ALL,
      idempotent: true,
      timeoutMs: LONG,
    });
    if (response.status !== 200 && response.status !== 404) {
      throw hapiError(response.status, response.body, 'Erasure could not expunge a resource; run it again.');
    }
  }

  return {
    erased,
    versionsErased,
    residual: await residual(client, members, patientHistory.created),
    members,
  };
}

/** One resource, every version, nothing that refers to it: delete, then `$expunge` (DESIGN §7). */
export async function eraseResource(client: HapiClient, key: string): Promise<ErasureReceipt> {
  const type = partsOf(key).resourceType;
  const versions = await versionsOf(client, key);
  if (versions === undefined) {
    return { erased: {}, versionsErased: 0, residual: 0 };
  }
  const deleted = await client.send({ method: 'DELETE', path: key, idempotent: true, timeoutMs: LONG });
  if (![200, 202, 204, 404, 410].includes(deleted.status)) {
    throw hapiError(deleted.status, deleted.body, 'Erasure could not delete a resource; run it again.');
  }
  const expunged = await client.send({
    method: 'POST',
    path: `${key}/$expunge`,
    body: EXPUNGE_ALL,
    idempotent: true,
    timeoutMs: LONG,
  });
  if (expunged.status !== 200 && expunged.status !== 404) {
    throw hapiError(expunged.status, expunged.body, 'Erasure could not expunge a resource; run it again.');
  }
  const left = await versionsOf(client, key);
  return {
    erased: { [type]: 1 },
    versionsErased: versions.count,
    residual: left === undefined ? 0 : 1,
  };
}

/** Type and id of a member's key. Every key here is `Type/id` of what HAPI holds or was asked to erase; one
 * that is not is a defect, and the erasure stops before it deletes anything rather than guess at it. */
function partsOf(key: string): { resourceType: ResourceType; id: string } {
  const parts = parseLiteralKey(key);
  if (parts === undefined) {
    throw new Error('erasure was given a resource key that is not Type/id');
  }
  return parts;
}

interface Versions {
  count: number;
  /** lastUpdated of the oldest version. */
  created: string;
}

/** How many versions a resource has, and when it was created; undefined when HAPI holds none. */
async function versionsOf(client: HapiClient, key: string): Promise<Versions | undefined> {
  const response = await client.send({
    method: 'GET',
    path: `${key}/_history?_count=${HISTORY_PAGE}`,
    idempotent: true,
    timeoutMs: LONG,
  });
  if (response.status === 404 || response.status === 410) {
    return undefined;
  }
  if (response.status !== 200) {
    throw hapiError(response.status, response.body, 'Erasure could not read a history; run it again.');
  }
  const bundle = response.body as Bundle;
  const entries = bundle.entry ?? [];
  if (entries.length === 0) {
    return undefined;
  }
  const times = entries
    .map((e) => e.resource?.meta?.lastUpdated ?? e.response?.lastModified)
    .filter((t): t is string => t !== undefined)
    .sort();
  return { count: bundle.total ?? entries.length, created: times[0] ?? new Date(0).toISOString() };
}

/** For each resource written since `since`: the "Type/id"s any of its versions referred to. */
async function referencesSince(client: HapiClient, since: string): Promise<Map<string, Set<string>>> {
  const result = new Map<string, Set<string>>();
  // One millisecond of slack: HAPI's _since is inclusive, but clocks and rounding are not to be trusted.
  const from = new Date(Date.parse(since) - 1).toISOString();
  await eachVersion(
    client,
    `_history?_since=${encodeURIComponent(from)}&_count=${HISTORY_PAGE}`,
    (resource) => {
      const key = `${resource.resourceType}/${resource.id}`;
      const refs = result.get(key) ?? new Set<string>();
      for (const target of storedReferences(resource)) {
        refs.add(literalKey({ resourceType: target.targetType, id: target.targetId }));
      }
      result.set(key, refs);
    },
  );
  return result;
}

/**
 * Without HAPI's database: every version HAPI holds, read through the system history, whose JSON holds
 * one of `texts`. Reads the whole history, so it is for development and CI; production has the database.
 */
async function tracesByHistory(client: HapiClient, texts: readonly string[]): Promise<number> {
  let found = 0;
  await eachVersion(client, `_history?_count=${HISTORY_PAGE}`, (resource) => {
    const text = JSON.stringify(resource);
    if (texts.some((t) => text.includes(t))) {
      found++;
    }
  });
  return found;
}

/** Calls `visit` with every version a history query returns, page by page (delete markers skipped). */
async function eachVersion(
  client: HapiClient,
  first: string,
  visit: (resource: Resource & { id: string }) => void,
): Promise<void> {
  let path: string | undefined = first;
  while (path !== undefined) {
    const response = await client.send({ method: 'GET', path, idempotent: true, timeoutMs: LONG });
    if (response.status !== 200) {
      throw hapiError(response.status, response.body, 'Erasure could not read the history; run it again.');
    }
    const bundle = response.body as Bundle;
    for (const entry of bundle.entry ?? []) {
      const resource = entry.resource;
      if (resource?.id !== undefined) {
        visit(resource as Resource & { id: string }); // a delete marker has no resource
      }
    }
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    path = next === undefined ? undefined : relativeTo(client.base, next);
  }
}

/** Adds to `members` whatever refers to a member, by search and by history, until nothing new turns up. */
async function growByReferences(
  client: HapiClient,
  members: Set<string>,
  history: Map<string, Set<string>>,
): Promise<void> {
  const queue = [...members];
  while (queue.length > 0) {
    const key = queue.shift() as string;
    const found = new Set<string>(await currentReferrers(client, key));
    for (const [referrer, refs] of history) {
      if (refs.has(key)) {
        found.add(referrer);
      }
    }
    for (const referrer of found) {
      if (!members.has(referrer)) {
        members.add(referrer);
        queue.push(referrer);
      }
    }
  }
}

/** "Type/id" of every current resource that refers to `key`, through any search parameter. */
async function currentReferrers(client: HapiClient, key: string): Promise<string[]> {
  const { resourceType, id } = partsOf(key);
  const response = await client.send({
    method: 'GET',
    path: `${resourceType}?_id=${encodeURIComponent(id)}&_revinclude=*&_count=1`,
    idempotent: true,
    timeoutMs: LONG,
  });
  if (response.status !== 200) {
    throw hapiError(response.status, response.body, 'Erasure could not search for references; run it again.');
  }
  return ((response.body as Bundle).entry ?? [])
    .filter((e) => e.search?.mode === 'include' && e.resource?.id !== undefined)
    .map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);
}

/** Members HAPI still holds a version of, plus resources that still refer to a member. */
async function residual(client: HapiClient, members: Set<string>, since: string): Promise<number> {
  const left = new Set<string>();
  for (const key of members) {
    if ((await versionsOf(client, key)) !== undefined) {
      left.add(key);
    }
  }
  const history = await referencesSince(client, since);
  for (const [referrer, refs] of history) {
    if ([...refs].some((r) => members.has(r))) {
      left.add(referrer);
    }
  }
  return left.size;
}
