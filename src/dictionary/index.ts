import { errors, issue } from '../fhir/outcomes';
import { hasServerIdForm } from '../identity/serverId';
import { dataTypes, type ElementEntry, type ResourceEntry, resources } from './dictionary';

/** The data dictionary as the engine (src/identity/policyEngine.ts) reads it. */
export interface DataDictionary {
  resources: Readonly<Record<string, ResourceEntry>>;
  dataTypes: Readonly<Record<string, ElementEntry>>;
}

export const dataDictionary: DataDictionary = { resources, dataTypes };

/** Throws the 422 a resource of a type outside the dictionary gets; `expression` names where it stands. */
export function refuseOutOfScope(dictionary: DataDictionary, type: string, expression: string): void {
  const entry = Object.hasOwn(dictionary.resources, type) ? dictionary.resources[type] : undefined;
  if (entry?.serverWritten === true) {
    throw errors.unprocessable([
      issue(
        'not-supported',
        `${type} resources are written by the registry itself (follow-up invitations) and cannot be sent; read them with GET ${type}.`,
        expression,
      ),
    ]);
  }
  if (entry === undefined) {
    const accepted = Object.entries(dictionary.resources)
      .filter(([, resource]) => resource.serverWritten !== true)
      .map(([name]) => name);
    throw errors.unprocessable([
      issue(
        'not-supported',
        `The NorPain registry does not store ${type} resources. It accepts ${accepted.join(', ')}.`,
        expression,
      ),
    ]);
  }
}

/**
 * Whether a resource id may be stored and audited as it stands. The server gives every resource of person
 * data its id (a UUID); an id a client chooses could carry what identifies someone (`Condition/Kari-Nordmann`),
 * so only definitions (Questionnaire, ResearchStudy, Organization: no person data) keep chosen ids.
 */
export function isStorableId(dictionary: DataDictionary, type: string, id: string): boolean {
  return dictionary.resources[type]?.definition === true || hasServerIdForm(id);
}

/** Throws the 422 an update-as-create with a chosen id of person data gets. */
export function refuseChosenId(
  dictionary: DataDictionary,
  type: string,
  id: string,
  expression: string,
): void {
  if (!isStorableId(dictionary, type, id)) {
    throw errors.unprocessable([
      issue(
        'not-supported',
        `The registry assigns the ids of ${type} resources itself (a UUID), since a chosen id could carry what identifies a person. Create it with POST, or update it by its business identifier (PUT ${type}?identifier=system|value).`,
        expression,
      ),
    ]);
  }
}
