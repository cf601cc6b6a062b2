import { dataDictionary, refuseChosenId, refuseOutOfScope } from '../dictionary';
import { entryLocation, type IngestStage } from './write';

/**
 * Resource types outside the registry's data dictionary (src/dictionary) are refused with 422 before
 * anything else looks at them, for every channel and for $validate, and so are ids of person data that
 * the server did not give (an update-as-create with a chosen id). Deleting one is left to the store
 * (there is nothing of it to delete).
 */
export const acceptedTypesStage: IngestStage = (write) => {
  write.entries.forEach((entry, index) => {
    if (entry.method !== 'DELETE') {
      const location = entryLocation(write, index);
      refuseOutOfScope(
        dataDictionary,
        entry.resourceType,
        location ? `${location}.resource.resourceType` : 'resourceType',
      );
      // A Patient's id is the person's in the identity vault whatever the client sent (pseudonymise).
      if (entry.method === 'PUT' && entry.id !== undefined && entry.resourceType !== 'Patient') {
        refuseChosenId(
          dataDictionary,
          entry.resourceType,
          entry.id,
          location ? `${location}.request.url` : 'id',
        );
      }
    }
  });
  return write;
};
