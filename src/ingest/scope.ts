import { dataDictionary, refuseOutOfScope } from '../dictionary';
import { entryLocation, type IngestStage } from './write';

/**
 * Resource types outside the registry's data dictionary (src/dictionary) are refused with 422 before
 * anything else looks at them, for every channel and for $validate. Deleting one is left to the store
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
    }
  });
  return write;
};
