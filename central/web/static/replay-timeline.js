// The replay timeline's view: which stretch of the day is shown (24 h down to 1 min), where
// a time falls on it, its tick marks, and whether a time has recording at all.
"use strict";
const fsvTimeline = {
  SPANS: [86400, 21600, 3600, 900, 300, 60], // zoom levels, seconds across the bar
  // Tick step per span: about 6-12 labelled ticks at every zoom level.
  STEPS: { 86400: 10800, 21600: 3600, 3600: 600, 900: 120, 300: 60, 60: 10 },

  create(dayStart) { return { dayStart, start: dayStart, span: 86400 }; },

  // Keep the window inside the day.
  clamp(view) {
    view.start = Math.min(Math.max(view.start, view.dayStart), view.dayStart + 86400 - view.span);
    return view;
  },

  // Zoom one level in (+1) or out (-1), keeping `at` (a time) where it is on the bar.
  zoom(view, direction, at) {
    const i = fsvTimeline.SPANS.indexOf(view.span);
    const next = fsvTimeline.SPANS[Math.min(Math.max(i + direction, 0), fsvTimeline.SPANS.length - 1)];
    const anchor = at == null ? view.start + view.span / 2 : at;
    const frac = (anchor - view.start) / view.span;
    view.span = next;
    view.start = anchor - frac * next;
    return fsvTimeline.clamp(view);
  },

  pan(view, fraction) { view.start += fraction * view.span; return fsvTimeline.clamp(view); },

  // 0..1 along the bar, or null when outside the window.
  frac(view, ts) {
    const f = (ts - view.start) / view.span;
    return f < 0 || f > 1 ? null : f;
  },

  timeAt(view, fraction) { return view.start + fraction * view.span; },

  // Part of [start, end) inside the window as [left, width] fractions, or null.
  segment(view, start, end) {
    const a = Math.max(start, view.start);
    const b = Math.min(end, view.start + view.span);
    return b <= a ? null : [(a - view.start) / view.span, (b - a) / view.span];
  },

  NICE: [10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200],

  // Tick times: the zoom level's step, widened until labels are `minPx` apart on a bar
  // `widthPx` wide (a phone shows fewer ticks than a wall).
  ticks(view, widthPx = 1200, minPx = 64) {
    let step = fsvTimeline.STEPS[view.span];
    for (const nice of fsvTimeline.NICE) {
      if (nice >= step && (widthPx * nice) / view.span >= minPx) { step = nice; break; }
    }
    const first = view.dayStart + Math.ceil((view.start - view.dayStart) / step) * step;
    const out = [];
    for (let ts = first; ts <= view.start + view.span + 0.001; ts += step) out.push(ts);
    return out;
  },

  covering(ranges, ts) { return ranges.find((r) => r.start <= ts && ts < r.end) || null; },
  nextRange(ranges, ts) { return ranges.filter((r) => r.start > ts).sort((a, b) => a.start - b.start)[0] || null; },
};
window.fsvTimeline = fsvTimeline;
