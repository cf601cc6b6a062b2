/**
 * FHIR search compares ranges, not points: a date is the interval its precision implies ("2020" is the
 * whole year), a Period is [start, end] with open ends unbounded, and a number "100" is [99.5, 100.5).
 * Dates are held as epoch milliseconds; a date or dateTime without a zone is read as UTC.
 */

export interface Range {
  lo: number;
  hi: number;
}

/** Beyond any real instant; stands for an open end of a Period. */
const MIN_TIME = -8.64e15;
export const MAX_TIME = 8.64e15;

const DATE_PATTERN =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** The interval a FHIR date, dateTime or instant denotes, or undefined when it is not one. */
export function dateRange(value: string): Range | undefined {
  const m = DATE_PATTERN.exec(value.trim());
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo ? Number(mo) - 1 : 0;
  const day = d ? Number(d) : 1;
  const hour = h ? Number(h) : 0;
  const minute = mi ? Number(mi) : 0;
  const second = s ? Number(s) : 0;
  const millis = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  if (month > 11 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return undefined;
  }
  let offset = 0;
  if (tz && tz !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1;
    offset = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60000;
  }
  const lo = Date.UTC(year, month, day, hour, minute, second, millis) - offset;
  let hi: number;
  if (!mo) {
    hi = Date.UTC(year + 1, 0, 1) - offset;
  } else if (!d) {
    hi = Date.UTC(year, month + 1, 1) - offset;
  } else if (!h) {
    hi = Date.UTC(year, month, day + 1) - offset;
  } else if (!s) {
    hi = lo + 60000;
  } else if (!frac) {
    hi = lo + 1000;
  } else {
    hi = lo + 1;
  }
  return { lo, hi: hi - 1 };
}

/** The interval a FHIR Period denotes; a missing start or end is unbounded. */
export function periodRange(period: { start?: string; end?: string }): Range | undefined {
  const start = period.start ? dateRange(period.start) : undefined;
  const end = period.end ? dateRange(period.end) : undefined;
  if (!start && !end) {
    return undefined;
  }
  return { lo: start?.lo ?? MIN_TIME, hi: end?.hi ?? MAX_TIME };
}

/** The interval a number search value denotes by its precision: "100" is [99.5, 100.5), "1e2" likewise. */
export function numberRange(value: string): Range | undefined {
  const text = value.trim();
  // Each digit has one way to match, so a long non-number is refused in linear time (issue 11).
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(text)) {
    return undefined;
  }
  const n = Number(text);
  const [mantissa, exponent] = text.toLowerCase().split('e');
  const decimals = mantissa.includes('.') ? mantissa.length - mantissa.indexOf('.') - 1 : 0;
  const half = 0.5 * Math.pow(10, -decimals + (exponent ? Number(exponent) : 0));
  return { lo: n - half, hi: n + half };
}
