// @ts-check
// Formatting of the figures the dashboard shows: durations, sizes, rates, times, watermarks.

/** Milliseconds as "3d 4h", "2h 5m", "1m 12s", "850 ms". @param {number} ms */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** Bytes as "1.2 MB". @param {number} n */
export function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** A count as "12,345" or "1.2M". @param {number} n */
export function count(n) {
  if (!Number.isFinite(n)) return "–";
  if (n >= 10_000_000) return `${(n / 1_000_000).toFixed(1)}M`;
  return Math.round(n).toLocaleString("en-US");
}

/** Per-second rate as "1,234/s"; `null` (not measured yet) as "–". @param {number | null} n */
export function rate(n) {
  if (n === null || !Number.isFinite(n)) return "–";
  if (n >= 100) return `${count(n)}/s`;
  return `${n.toFixed(1)}/s`;
}

/** A share in [0, 1] as "42%"; `null` as "–". @param {number | null} f */
export function percent(f) {
  if (f === null || !Number.isFinite(f)) return "–";
  return `${Math.round(f * 100)}%`;
}

/** Epoch milliseconds as a local date and time. @param {number | null | undefined} ms */
export function time(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const pad = (/** @type {number} */ x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Age of an epoch-ms instant relative to `now`, as "12s ago". @param {number} ms @param {number} now */
export function ago(ms, now) {
  if (!ms) return "–";
  return `${duration(Math.max(0, now - ms))} ago`;
}

/**
 * An event-time watermark (ms since the epoch): Long.MIN_VALUE-like values and `null` read
 * "no watermark", Long.MAX_VALUE-like values "end of input", others as a time.
 * @param {number | null | undefined} w
 */
export function watermark(w) {
  if (w === null || w === undefined || w <= -9e15) return "no watermark";
  if (w >= 9e15) return "end of input";
  // Small event times (tests, generators) are not dates: show the number.
  if (w < 946684800000) return `${count(w)} ms`;
  return time(w);
}
