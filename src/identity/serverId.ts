import { randomUUID } from 'node:crypto';
import { containsNationalId } from './nationalId';

/**
 * A new server-assigned id (resource ids, Patient ids in the vault, audit entry and request ids): a
 * random UUID that the national-id detector does not flag. About one UUID in a few thousand has eleven
 * decimal digits in its last group next to a letter, with valid check digits; such an id would be
 * refused in a write, left out of the audit and unsearchable by reference, so it is never handed out.
 */
export function newServerId(): string {
  for (;;) {
    const id = randomUUID();
    if (!containsNationalId(id)) {
      return id;
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * True for an id of the form the server assigns (a lower-case UUID). Ids handed out before
 * `newServerId` existed may hold a digit run the detector flags; where a value is known to be an id
 * (a search by `_id` or by reference), such an id is what it is, not a national id.
 */
export function hasServerIdForm(id: string): boolean {
  return UUID.test(id);
}
