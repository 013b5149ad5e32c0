// Small DOM helpers shared by the pages. Text always goes in as text (never parsed as HTML).
import { t, lang } from './i18n.js';

export const CLASSES = ['asleep', 'at_table', 'reading', 'on_phone', 'in_conversation', 'busy', 'inactive'];

export const COLORS = {
  asleep: '#5b5fc7',
  at_table: '#e08a1e',
  reading: '#2a9d8f',
  on_phone: '#d64a8c',
  in_conversation: '#3f7fe0',
  busy: '#c0392b',
  inactive: '#8a94a6',
};

/** Creates an element: h('div', {class: 'x', onclick: f}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const activityName = (c) => (c ? t(`act.${c}`) : '—');

export function swatch(c) {
  return h('span', { class: 'swatch', style: { background: COLORS[c] || '#999' } });
}

export function activityBadge(c) {
  return h('span', { class: 'badge act-badge', style: { background: COLORS[c] || '#999' } }, activityName(c));
}

export const locale = () => (lang() === 'fr' ? 'fr-FR' : 'en-GB');

export function pct(x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return `${(x * 100).toLocaleString(locale(), { maximumFractionDigits: digits, minimumFractionDigits: digits })} %`;
}

export function num(x, digits = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  return Number(x).toLocaleString(locale(), { maximumFractionDigits: digits });
}

/** 3725 → "1 h 02 min"; 75 → "1 min 15 s"; 4.2 → "4 s". */
export function duration(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '—';
  s = Math.max(0, Math.round(s));
  const d = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  if (d > 0) return `${d} ${t('unit.d')} ${hh} h`;
  if (hh > 0) return `${hh} h ${two(mm)} min`;
  if (mm > 0) return `${mm} min ${two(ss)} s`;
  return `${ss} s`;
}

export function time(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function dateTime(ms) {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toLocaleString(locale(), {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function dateOnly(ms) {
  return new Date(ms).toLocaleDateString(locale(), { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });
}

/** Local calendar date as YYYY-MM-DD (what the API takes as local midnight). */
export function isoDate(d = new Date()) {
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

/** Horizontal bars: [{name, value (0..1), color?, text?}]. */
export function bars(rows) {
  return h('div', { class: 'bars' }, rows.map((r) =>
    h('div', { class: 'bar-row' },
      h('span', { class: 'name', title: r.title || r.name }, r.swatch ? swatch(r.swatch) : null, r.name),
      h('div', { class: 'bar-track' },
        h('div', { class: 'bar-fill', style: { width: `${Math.max(0, Math.min(1, r.value || 0)) * 100}%`, background: r.color || '' } })),
      h('span', { class: 'val' }, r.text ?? pct(r.value)))));
}

/** The seven scores of a decision, highest first. */
export function scoreBars(scores) {
  const rows = CLASSES.map((c) => ({ c, v: scores?.[c] ?? 0 })).sort((a, b) => b.v - a.v);
  return bars(rows.map(({ c, v }) => ({ name: activityName(c), swatch: c, value: v, color: COLORS[c] })));
}

/** A cue's name in words (unknown cues: their id with spaces). */
export function cueName(cue) {
  const k = `cue.${cue}`;
  const s = t(k);
  return s === k ? cue.replace(/_/g, ' ') : s;
}

export function featureName(f) {
  const k = `feat.${f}`;
  const s = t(k);
  return s === k ? f : s;
}

/** A dotted name (`sound.turns.long_gap_fraction`) that may wrap after its dots and underscores. */
export function breakable(name) {
  return String(name).split(/(?<=[._])/).flatMap((part, i) => (i ? [h('wbr'), part] : [part]));
}

/** The cues behind a decision: each with its reading and how strongly it held. */
export function driversTable(drivers) {
  if (!drivers || drivers.length === 0) return h('p', { class: 'empty' }, t('drivers.none'));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'drivers' },
    h('thead', null, h('tr', null,
      h('th', null, t('drivers.cue')), h('th', { class: 'num' }, t('drivers.value')), h('th', null, t('drivers.degree')))),
    h('tbody', null, drivers.map((d) => h('tr', null,
      h('td', null, cueName(d.cue), h('div', { class: 'muted mono small', title: t('drivers.feature') }, breakable(featureName(d.feature)))),
      h('td', { class: 'num' }, d.value === null || d.value === undefined ? t('drivers.missing') : num(d.value, 2)),
      h('td', null, h('div', { class: 'bar-track', title: pct(d.degree) },
        h('div', { class: 'bar-fill', style: { width: `${Math.round((d.degree || 0) * 100)}%` } }))))))));
}

/** A nested JSON object flattened into a key/value list (features, vision...). */
export function flatten(obj, prefix = '', out = []) {
  if (obj === null || obj === undefined) return out;
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    out.push([prefix, obj]);
    return out;
  }
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else out.push([key, v]);
  }
  return out;
}

export function valueText(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : num(v, 3);
  if (typeof v === 'boolean') return v ? t('common.yes') : t('common.no');
  if (Array.isArray(v)) return v.length === 0 ? '[]' : JSON.stringify(v);
  return String(v);
}

/** Key/value pairs; `plain`: the keys are words, not field names. */
export function kvList(pairs, { plain = false } = {}) {
  if (pairs.length === 0) return h('p', { class: 'empty' }, t('common.no_data'));
  return h('dl', { class: 'kv' }, pairs.map(([k, v]) => [plain ? h('dt', null, k) : h('dt', { class: 'mono' }, breakable(k)), h('dd', null, v === '' ? '' : valueText(v))]));
}

export function notice(kind, text) {
  return h('div', { class: `notice ${kind}` }, text);
}

/** An error's message for the user. */
export function errText(e) {
  if (!e) return '';
  if (e.status === 0) return t('common.unreachable');
  return e.body?.error || e.message || String(e);
}

export function stateBadge(state) {
  const cls = { running: 'ok', connecting: 'warn', reconnecting: 'warn', stalled: 'warn', starting: 'warn', restarting: 'warn', error: 'err', stopped: 'off', disabled: 'off' }[state] || '';
  const k = `state.${state}`;
  const label = t(k) === k ? state : t(k);
  return h('span', { class: `badge ${cls}` }, label);
}

/** Builds a card with a title, optional right-hand tools and a body. */
export function card(title, body, { tools, cls = 'span-12', id } = {}) {
  return h('section', { class: `card ${cls}`, id },
    h('div', { class: 'card-head' }, h('h2', null, title), tools ? h('div', { class: 'row' }, tools) : null),
    body);
}

/** Triggers a file download of `url` (the server sends Content-Disposition). */
export function download(url) {
  const a = h('a', { href: url, download: '' });
  document.body.appendChild(a);
  a.click();
  a.remove();
}

/** Goes to another page of the application without reloading (app.js listens). */
export function navigate(path) {
  window.dispatchEvent(new CustomEvent('cav:navigate', { detail: path }));
}

/** Calls `fn` now and every `ms` while the page is shown; returns the stop function. */
export function every(ms, fn) {
  fn();
  const id = setInterval(fn, ms);
  return () => clearInterval(id);
}

/** Media files (by extension) among the files of the media folders, videos first. */
const MEDIA_EXT = /\.(mp4|m4v|mov|mkv|webm|avi|ogv|mp3|wav|flac|ogg|oga|m4a|aac)$/i;
const VIDEO_EXT = /\.(mp4|m4v|mov|mkv|webm|avi|ogv)$/i;
export function mediaFiles(files) {
  return files.filter((f) => MEDIA_EXT.test(f.file))
    .sort((a, b) => Number(VIDEO_EXT.test(b.file)) - Number(VIDEO_EXT.test(a.file)) || a.file.localeCompare(b.file));
}

/**
 * The camera's latest picture as an <img> (fetched, so that each call gets a new frame), with
 * its capture time and source; null when there is none. `previous` is released.
 */
export async function snapshotImage(previous, maxWidth = 640) {
  let r;
  // `t`: no cache on the way may hand out an old picture (the daemon ignores it).
  try { r = await fetch(`/api/snapshot.jpg?max_width=${maxWidth}&t=${Date.now()}`, { cache: 'no-store' }); } catch { return null; }
  if (!r.ok) return null;
  const url = URL.createObjectURL(await r.blob());
  const img = new Image();
  img.className = 'snapshot';
  img.alt = t('dash.snapshot');
  try {
    await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; img.src = url; });
  } catch { URL.revokeObjectURL(url); return null; }
  if (previous?.url) URL.revokeObjectURL(previous.url);
  return { img, url, captured: Number(r.headers.get('x-captured-ms')) || null, source: r.headers.get('x-source') };
}
