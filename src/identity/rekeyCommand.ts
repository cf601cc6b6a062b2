import { parseOptions, UsageError, type CliCommand } from '../cli/command';
import { loadConfig } from '../config';
import { createLogger } from '../logging/logger';
import { personKey } from '../ingest/exclude';
import { openStore } from '../server';
import { openState } from '../state';
import { addDevPseudonymKeyVersion, loadIdentityKeys } from './keys';
import { applyRekeyToStore } from './relink';
import { openIdentity } from './service';

const USAGE = `norpain rekey [--new-key]

Re-keys every registry pseudonym to the current pseudonym key version (the highest in PSEUDONYM_KEYS,
or PSEUDONYM_KEY_VERSION): for each person the vault recomputes the pseudonym from their national id
and the pseudonymous Patient in the clinical store gets the new value. Patient ids do not change, so no
reference moves and no person is lost or duplicated. Safe to run again after an interruption.

To rotate: add the new key version to PSEUDONYM_KEYS (keep the old one: hashed business identifiers
are still matched with it), restart the server, then run norpain rekey. With STATE=postgres the replicas
may keep serving: each person is re-keyed under the lock their writes take.
  --new-key  development only: first add a new key version to the key file under DATA_DIR`;

export const rekeyCommand: CliCommand = {
  name: 'rekey',
  summary: 're-key every registry pseudonym to the current key version',
  usage: USAGE,
  run: async (args, env) => {
    const values = parseOptions(args, { 'new-key': { type: 'boolean' } });
    const config = loadConfig(env);
    const production = config.mode === 'production';
    const logger = createLogger({
      level: config.logLevel,
      sink: (line) => process.stderr.write(line + '\n'),
    });
    if (values['new-key']) {
      if (production) {
        throw new UsageError('--new-key is for development; in production add the version to PSEUDONYM_KEYS');
      }
      loadIdentityKeys({ env, production, dataDir: config.dataDir }); // creates the dev key file if absent
      const version = addDevPseudonymKeyVersion(config.dataDir);
      process.stdout.write(`added pseudonym key version ${version}\n`);
    }
    const state = await openState(config.state);
    const identity = openIdentity({ env, production, dataDir: config.dataDir, state: config.state, logger });
    const store = await openStore(config);
    // The lock every write about the person holds (shared) for its whole course: with STATE=postgres the
    // serving replicas wait for each person's re-keying and it for their writes.
    const locks = state.personLocks('person');
    try {
      const total = await identity.vault.rekey(
        (change) => applyRekeyToStore(store, change),
        { actor: 'norpain-cli' },
        (patientId) => locks.acquire([personKey.patient(patientId)], 'exclusive'),
      );
      process.stdout.write(
        `re-keyed ${total} of ${identity.vault.count()} persons to key version ${identity.pseudonymiser.currentVersion}\n`,
      );
      return 0;
    } finally {
      await store.close();
      identity.close();
      await state.close();
    }
  },
};
