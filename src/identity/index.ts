/**
 * National identities, pseudonyms and the identity vault (DESIGN §4). Other concerns use these:
 * the exclusion stage (reservations) parses national ids and computes their hashes, follow-up and
 * coverage read the vault through its audited methods, tests generate synthetic people.
 */
export * from './nationalId';
export * from './synthetic';
export * from './pseudonym';
export * from './keys';
export { IdentityVault } from './vault/IdentityVault';
export * from './vault/audit';
export { openIdentity } from './service';
