import fs from 'node:fs';
import path from 'node:path';

/**
 * validator/allowed.json is what lets HAPI's validator pass CI despite an error (scripts/ci/validate-
 * conformance.sh): each entry must say why, match something specific, and be explained in
 * docs/conformance.md, so that nothing is waved through silently.
 */
interface Allowed {
  id: string;
  message: string;
  why: string;
}

const ROOT = path.join(__dirname, '../..');
const allowed = JSON.parse(fs.readFileSync(path.join(ROOT, 'validator/allowed.json'), 'utf8')) as Allowed[];

test.each(allowed.map((a) => [a.id, a] as const))('%s has a reason and an anchored pattern', (_id, entry) => {
  expect(entry.why.length).toBeGreaterThan(40);
  expect(entry.message.startsWith('^')).toBe(true);
  // A pattern that matches any message would allow every error.
  expect(new RegExp(entry.message).test('Element is not valid')).toBe(false);
});

test('docs/conformance.md explains every allow-list entry', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/conformance.md'), 'utf8');
  expect(allowed.map((a) => a.id).filter((id) => !doc.includes(`\`${id}\``))).toEqual([]);
  expect(new Set(allowed.map((a) => a.id)).size).toBe(allowed.length);
});
