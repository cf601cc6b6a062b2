import { errors, issue } from '../fhir/outcomes';
import { dataTypes, type ElementEntry, type ResourceEntry, resources } from './dictionary';

/** The data dictionary as the engine (src/identity/policyEngine.ts) reads it. */
export interface DataDictionary {
  resources: Readonly<Record<string, ResourceEntry>>;
  dataTypes: Readonly<Record<string, ElementEntry>>;
}

export const dataDictionary: DataDictionary = { resources, dataTypes };

/** Throws the 422 a resource of a type outside the dictionary gets; `expression` names where it stands. */
export function refuseOutOfScope(dictionary: DataDictionary, type: string, expression: string): void {
  if (!Object.hasOwn(dictionary.resources, type)) {
    throw errors.unprocessable([
      issue(
        'not-supported',
        `The NorPain registry does not store ${type} resources. It accepts ${Object.keys(dictionary.resources).join(', ')}.`,
        expression,
      ),
    ]);
  }
}
