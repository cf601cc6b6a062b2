import type { NationalId, NationalIdKind } from '../../src/identity/nationalId';
import { syntheticNationalId } from '../../src/identity/synthetic';

/** A parsed synthetic national id of the kind, as the vault takes it (felles hjelpenummer carry no synthetic mark). */
export function syntheticId(kind: NationalIdKind, random: () => number): NationalId {
  return { kind, value: syntheticNationalId(kind, { random }), synthetic: kind !== 'fhn' };
}
