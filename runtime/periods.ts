// Budget periods are UTC calendar periods: the day from 00:00 UTC, the week
// from Monday 00:00 UTC, the month from the 1st 00:00 UTC.

export type Period = "daily" | "weekly" | "monthly";
export const PERIODS: readonly Period[] = ["daily", "weekly", "monthly"];

const DAY = 86_400_000;

/** Start (inclusive) and end (exclusive) of the period containing `now`, in ms since the epoch. */
export function periodBounds(period: Period, now: number): { start: number; end: number } {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const dayStart = Date.UTC(y, m, d.getUTCDate());
  switch (period) {
    case "daily":
      return { start: dayStart, end: dayStart + DAY };
    case "weekly": {
      const sinceMonday = (d.getUTCDay() + 6) % 7;
      const start = dayStart - sinceMonday * DAY;
      return { start, end: start + 7 * DAY };
    }
    case "monthly":
      return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
  }
}

/** A period's stable name, part of its counter key: `d2026-11-24`, `w2026-11-23`, `m2026-11`. */
export function periodId(period: Period, now: number): string {
  const { start } = periodBounds(period, now);
  const iso = new Date(start).toISOString();
  return period === "monthly" ? `m${iso.slice(0, 7)}` : `${period[0]}${iso.slice(0, 10)}`;
}
