/**
 * Norwegian-aware normalisation for string search. Indexed values and search values both pass through
 * `normaliseForSearch`, so a match is a comparison of normalised forms.
 *
 * Decisions (documented here because they are the contract of `name=`, `address=` etc.):
 * - Case-insensitive: everything is lower-cased.
 * - Accent-insensitive for letters that are not Norwegian letters of their own: é→e, è→e, ü→u, ñ→n,
 *   ç→c ... (Unicode decomposition, combining marks dropped); ß→ss.
 * - æ, ø and å are letters of their own and are never folded to a/o.
 * - The Nordic variants are the same letter: ä→æ, ö→ø (as Norwegian collation treats them), and the
 *   Danish/Swedish-style "ǿ" etc. fall out of the decomposition to ø.
 * - Old spellings are equivalent to the modern letter: aa→å, ae→æ, oe→ø ("Aasen" finds "Åsen",
 *   "Maeland" finds "Mæland", "Hoel" finds "Høl" and vice versa). The price is that the rule applies to
 *   every word ("Michael" is indexed as "michæl"); since it applies to both sides, the only effect is a
 *   few extra matches, never a lost one.
 * - Whitespace runs collapse to one space; leading/trailing whitespace is dropped.
 */
/** A private-use character stands in for å while combining marks are stripped. */
const PLACEHOLDER = '\uE000';

export function normaliseForSearch(input: string): string {
  let s = input.toLowerCase();
  // Protect å before decomposition: NFD would split it into a + ring and the ring would be dropped.
  s = s.normalize('NFC').replaceAll('å', PLACEHOLDER);
  s = s.replace(/ä/g, 'æ').replace(/ö/g, 'ø').replace(/ß/g, 'ss');
  s = s.normalize('NFD').replace(/\p{M}/gu, '').normalize('NFC');
  s = s.replaceAll(PLACEHOLDER, 'å');
  s = s.replace(/aa/g, 'å').replace(/ae/g, 'æ').replace(/oe/g, 'ø');
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * The normalised prefixes that a default (starts-with) string search must try. When the search text
 * ends in the first letter of an old spelling ("Aa" → "Å"), the stored value may already have been
 * folded: "Ma" must still find "Maeland" (stored "mæland"), so "mæ" and "må" are tried as well.
 */
export function searchPrefixes(input: string): string[] {
  const base = normaliseForSearch(input);
  const result = [base];
  if (base.endsWith('a')) {
    result.push(base.slice(0, -1) + 'å', base.slice(0, -1) + 'æ');
  } else if (base.endsWith('o')) {
    result.push(base.slice(0, -1) + 'ø');
  }
  return result;
}
