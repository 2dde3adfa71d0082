// Human-readable numbers for the dashboard (pure: unit-tested under Node).

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 0 -> "0 B", 1536 -> "1.5 KiB", 10485760 -> "10 MiB" (binary units, three significant digits). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '?';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${Number(value.toFixed(digits))} ${UNITS[unit]}`;
}

/** Seconds since `sinceMs` as "12 s", "3 min", "2 h". */
export function formatAge(sinceMs: number, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - sinceMs) / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
