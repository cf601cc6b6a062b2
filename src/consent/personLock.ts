/**
 * Per-person serialisation between the write path and reservations (DESIGN §3.2, "no race").
 *
 * A person is named by several keys at once (the keyed hash of each national id, the pseudonymous
 * Patient id, the pseudonym); a caller takes all its keys in one step, so there is no lock order and no
 * deadlock. Writes take their keys shared (writes about one person may run together, as before);
 * a reservation or withdrawal takes them exclusively. Waiters are served first come, first served per
 * key, so a stream of writes cannot starve a reservation.
 */
export type LockMode = 'shared' | 'exclusive';

/**
 * Takes a caller's keys together; resolves with the function that releases them all. In one process
 * `PersonLocks` below; across the replicas sharing a PostgreSQL state, src/state/postgres/personLocks.ts.
 */
export interface PersonLockService {
  acquire(keys: Iterable<string>, mode: LockMode): Promise<() => void>;
}

interface Waiter {
  keys: ReadonlySet<string>;
  mode: LockMode;
  /** Called once the keys have been taken for this waiter. */
  granted: () => void;
}

export class PersonLocks implements PersonLockService {
  private readonly readers = new Map<string, number>();
  private readonly writers = new Set<string>();
  private queue: Waiter[] = [];

  /** Resolves, once every key is available in the mode, with the function that releases them all. */
  acquire(keys: Iterable<string>, mode: LockMode): Promise<() => void> {
    const set = new Set(keys);
    return new Promise((resolve) => {
      let released = false;
      const release = (): void => {
        if (!released) {
          released = true;
          this.give(set, mode);
          this.pump();
        }
      };
      this.queue.push({ keys: set, mode, granted: () => resolve(release) });
      this.pump();
    });
  }

  /** Keys currently held plus callers waiting (0 when idle; for tests). */
  get busy(): number {
    return this.readers.size + this.writers.size + this.queue.length;
  }

  /** Grants, in arrival order, every waiter whose keys are free and that no earlier waiter conflicts with. */
  private pump(): void {
    const waiting: Waiter[] = [];
    const granted: Waiter[] = [];
    for (const waiter of this.queue) {
      if (this.available(waiter) && !waiting.some((earlier) => conflicts(earlier, waiter))) {
        this.take(waiter.keys, waiter.mode);
        granted.push(waiter);
      } else {
        waiting.push(waiter);
      }
    }
    this.queue = waiting;
    for (const waiter of granted) {
      waiter.granted();
    }
  }

  private available(waiter: Waiter): boolean {
    for (const key of waiter.keys) {
      if (this.writers.has(key)) {
        return false;
      }
      if (waiter.mode === 'exclusive' && (this.readers.get(key) ?? 0) > 0) {
        return false;
      }
    }
    return true;
  }

  private take(keys: ReadonlySet<string>, mode: LockMode): void {
    for (const key of keys) {
      if (mode === 'exclusive') {
        this.writers.add(key);
      } else {
        this.readers.set(key, (this.readers.get(key) ?? 0) + 1);
      }
    }
  }

  private give(keys: ReadonlySet<string>, mode: LockMode): void {
    for (const key of keys) {
      if (mode === 'exclusive') {
        this.writers.delete(key);
        continue;
      }
      const n = (this.readers.get(key) ?? 1) - 1;
      if (n === 0) {
        this.readers.delete(key);
      } else {
        this.readers.set(key, n);
      }
    }
  }
}

function conflicts(a: Waiter, b: Waiter): boolean {
  if (a.mode === 'shared' && b.mode === 'shared') {
    return false;
  }
  for (const key of b.keys) {
    if (a.keys.has(key)) {
      return true;
    }
  }
  return false;
}
