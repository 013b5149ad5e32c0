// Charts as plain SVG (no library): a timeline of spans, and stacked bars per class.
import { CLASSES, COLORS, activityName, duration, h, swatch } from './ui.js';
import { t } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';

/** An axis label for a round number of seconds: "30 s", "5 min", "2 h", "1 d". */
function shortDuration(v) {
  if (v === 0) return '0';
  if (v % 86400 === 0) return `${v / 86400} ${t('unit.d')}`;
  if (v % 3600 === 0) return `${v / 3600} h`;
  if (v % 60 === 0) return `${v / 60} min`;
  return `${v} s`;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) if (c) el.appendChild(c);
  return el;
}

function title(text) {
  const el = document.createElementNS(NS, 'title');
  el.textContent = text;
  return el;
}

function label(x, y, text, anchor = 'middle') {
  const el = s('text', { x, y, 'text-anchor': anchor });
  el.textContent = text;
  return el;
}

/** Legend of the classes that appear (all seven when `only` is not given). */
export function legend(only) {
  const list = only ? CLASSES.filter((c) => only.has(c)) : CLASSES;
  return h('div', { class: 'legend' }, list.map((c) => h('span', null, swatch(c), activityName(c))));
}

/**
 * A horizontal timeline from `startMs` to `endMs`: one coloured block per item
 * ({start_ms, end_ms, activity, tip}), with `ticks` labelled positions ({ms, text}).
 */
export function timeline(items, startMs, endMs, ticks = [], { height = 34, width = 1000 } = {}) {
  const W = Math.max(200, width);
  const top = 4;
  const span = Math.max(1, endMs - startMs);
  const x = (ms) => ((Math.min(endMs, Math.max(startMs, ms)) - startMs) / span) * W;
  const svg = s('svg', { class: 'chart timeline', viewBox: `0 0 ${W} ${height + 22}`, role: 'img' });
  svg.appendChild(s('rect', { x: 0, y: top, width: W, height, fill: '#eef0f4', rx: 4 }));
  for (const it of items) {
    const x0 = x(it.start_ms);
    const x1 = x(it.end_ms);
    if (x1 <= x0) continue;
    svg.appendChild(s('rect', { x: x0, y: top, width: Math.max(1.5, x1 - x0), height, fill: COLORS[it.activity] || '#999' },
      title(it.tip || `${activityName(it.activity)} · ${duration((it.end_ms - it.start_ms) / 1000)}`)));
  }
  for (const tk of ticks) {
    const tx = x(tk.ms);
    svg.appendChild(s('line', { x1: tx, x2: tx, y1: top + height, y2: top + height + 5, stroke: '#9aa3b2' }));
    const anchor = tx < 15 ? 'start' : tx > W - 15 ? 'end' : 'middle';
    svg.appendChild(label(tx, top + height + 17, tk.text, anchor));
  }
  return svg;
}

/**
 * Stacked bars: `columns` = [{label, values: {class: seconds}}]. The y axis is in seconds,
 * labelled with `yText`; `every` labels one column in n on the x axis.
 */
export function stackedBars(columns, { height = 190, yText = shortDuration, every, width = 1000 } = {}) {
  const W = Math.max(200, width);
  const left = 62;
  const bottom = 22;
  const top = 8;
  const plotH = height - bottom - top;
  const plotW = W - left - 4;
  const totals = columns.map((c) => CLASSES.reduce((a, k) => a + (c.values[k] || 0), 0));
  // A round top for the y axis (seconds): 4 steps of 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15,
  // 30 min, 1, 2, 3, 6, 12 h, 1 d…
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 432000];
  const peak = Math.max(1, ...totals);
  const step = steps.find((d) => d * 4 >= peak) || Math.ceil(peak / 4);
  const max = step * 4;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${height}`, role: 'img' });
  for (let i = 0; i <= 4; i++) {
    const v = step * i;
    const y = top + plotH - (v / max) * plotH;
    svg.appendChild(s('line', { class: 'grid-line', x1: left, x2: W, y1: y, y2: y }));
    svg.appendChild(label(left - 6, y + 4, yText(v), 'end'));
  }
  const bw = plotW / Math.max(1, columns.length);
  // Label one column in n so that labels never overlap (about 34 px each).
  every = every || Math.max(1, Math.ceil(34 / bw));
  columns.forEach((col, i) => {
    let y = top + plotH;
    const x = left + i * bw + bw * 0.12;
    const w = bw * 0.76;
    for (const c of CLASSES) {
      const v = col.values[c] || 0;
      if (v <= 0) continue;
      const hgt = (v / max) * plotH;
      y -= hgt;
      svg.appendChild(s('rect', { x, y, width: w, height: Math.max(0.5, hgt), fill: COLORS[c] },
        title(`${col.label} · ${activityName(c)}: ${duration(v)}`)));
    }
    if (i % every === 0) svg.appendChild(label(left + i * bw + bw / 2, height - 6, col.label));
  });
  return svg;
}

/**
 * Draws `build(width)` into `container` at the container's pixel width (so text keeps its size on
 * a phone), and again when that width changes.
 */
export function responsive(container, build) {
  let drawn = -1;
  const draw = () => {
    const w = Math.round(container.clientWidth);
    if (w <= 0 || Math.abs(w - drawn) < 8) return;
    drawn = w;
    container.replaceChildren(build(w));
  };
  draw();
  if (drawn < 0) requestAnimationFrame(draw);
  const ro = new ResizeObserver(() => {
    if (!container.isConnected && drawn >= 0) ro.disconnect();
    else requestAnimationFrame(draw);
  });
  ro.observe(container);
  return container;
}
