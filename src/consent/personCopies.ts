/**
 * Where copies of a person's data live beside the clinical store, and how an erasure removes them
 * (DESIGN §3.2: erasure is physical, in every file the server writes):
 * - the façade's own databases that keep rows naming the person: the identity vault, the write journal
 *   (intents name Patient ids and pseudonyms), the Patient facts the reference check reads
 *   (src/store/patientFacts.ts) and the follow-up's dispatch ledger (open Tasks, attempts). Deleting a
 *   row does not remove every copy of its bytes (SQLite's write-ahead log keeps the frames written
 *   before the delete), so each is scrubbed for the person's texts once their rows are gone
 *   (StateDatabase.scrub);
 * - the Bulk Data export's files: an export that holds the person is withdrawn (src/export).
 * Each concern is added where it is opened (src/consent/index.ts, src/server.ts); the erasure
 * (reservation.ts) is the one place that removes them, after every row about the person is deleted and
 * before the erasure is marked complete (so that one that fails is removed again). The reservation
 * register's pending erasure, which names the person until then, is scrubbed by the erasure after it.
 */

/** The person as the registry held them: what their copies are found by. */
export interface ErasedPerson {
  patientId: string;
  pseudonym: string;
  /** Every national id the person had, as digits. */
  nationalIds: readonly string[];
}

/** A database of the façade's own (src/state): `scrub` leaves none of `texts` outside its live rows. */
export interface ScrubbedDatabase {
  scrub(texts: readonly string[]): void;
}

export class PersonCopies {
  private readonly removers: ((person: ErasedPerson) => unknown)[] = [];

  constructor(databases: readonly ScrubbedDatabase[] = []) {
    for (const database of databases) {
      this.addDatabase(database);
    }
  }

  addDatabase(database: ScrubbedDatabase): void {
    this.removers.push((person) =>
      database.scrub([person.patientId, person.pseudonym, ...person.nationalIds]),
    );
  }

  /** Copies that are not rows of a database: `remove` deletes what holds the person. */
  add(remove: (person: ErasedPerson) => Promise<unknown>): void {
    this.removers.push(remove);
  }

  async remove(person: ErasedPerson): Promise<void> {
    for (const remove of this.removers) {
      await remove(person);
    }
  }
}
