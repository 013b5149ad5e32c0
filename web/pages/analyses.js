// Analyses of media files: start one, follow its progress (ETA, cancel), and read its results
// (main activity, shares, a timeline of the samples, the sample table, exports).
import { api } from '../api.js';
import { t } from '../i18n.js';
import { timeline, legend, responsive } from '../charts.js';
import {
  h, fill, card, activityBadge, activityName, COLORS, pct, num, duration, dateTime, errText, bars, download,
  mediaFiles,
} from '../ui.js';

const baseName = (p) => (p || '').split('/').pop();
const inputName = (a) => (a.input.kind === 'obs' ? `${a.input.source} (OBS)` : baseName(a.input.path));
const statusClass = { queued: 'warn', running: 'warn', done: 'ok', failed: 'err', cancelled: 'off' };

export function statusBadge(s) {
  return h('span', { class: `badge ${statusClass[s] || ''}` }, t(`an.status.${s}`));
}

/** The form that starts an analysis of a media file (also used by the testing page). */
export function newAnalysisForm(files, { file, onStarted } = {}) {
  const fileSel = h('select', { id: 'an-file' }, files.map((f) => h('option', { value: f.file }, f.file)));
  if (file) fileSel.value = file;
  const interval = h('input', { type: 'number', id: 'an-interval', min: '1', max: '86400', step: '1', value: '10', style: { width: '6rem' } });
  const msg = h('div');
  const start = h('button', { class: 'primary', id: 'an-start' }, t('an.start'));
  start.addEventListener('click', async () => {
    fill(msg);
    start.disabled = true;
    try {
      const a = await api('/api/analyses', { method: 'POST', body: { file: fileSel.value, interval_s: Number(interval.value) } });
      onStarted(a);
    } catch (e) {
      fill(msg, h('div', { class: 'notice err' }, errText(e)));
    } finally { start.disabled = false; }
  });
  if (files.length === 0) return h('p', { class: 'empty', id: 'an-no-media' }, t('an.no_media'));
  return h('div', null,
    h('div', { class: 'toolbar' },
      h('label', { class: 'field' }, h('span', { class: 'label' }, t('an.file')), fileSel),
      h('label', { class: 'field' }, h('span', { class: 'label' }, t('an.interval')), interval),
      start),
    msg);
}

export default {
  render(root, params) {
    let selected = params.get('id') || null;
    let timer = null;
    // The samples' chart and table of the selected analysis, built once it is done.
    let samplesCache = null;
    const listBox = h('div', { id: 'an-list' });
    const detailBox = h('div', { id: 'an-detail' });
    const formBox = h('div', { id: 'an-form' }, h('p', { class: 'empty' }, t('common.loading')));

    function select(id) {
      selected = id;
      samplesCache = null;
      history.replaceState(null, '', id ? `/analyses?id=${encodeURIComponent(id)}` : '/analyses');
      refresh();
    }

    async function loadForm() {
      try {
        const m = await api('/api/media');
        fill(formBox, newAnalysisForm(mediaFiles(m.files), { onStarted: (a) => select(a.id) }));
      } catch (e) { fill(formBox, h('p', { class: 'error-text' }, errText(e))); }
    }

    function renderList(items) {
      if (items.length === 0) { fill(listBox, h('p', { class: 'empty' }, t('an.none'))); return; }
      fill(listBox, h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, h('th', null, t('an.file')), h('th', { class: 'hide-phone' }, t('an.created')), h('th', null, t('an.status')), h('th', null, t('an.progress')), h('th', { class: 'hide-phone' }, t('an.main')))),
        h('tbody', null, items.map((a) => h('tr', {
          class: `clickable ${a.id === selected ? 'selected' : ''}`, dataset: { id: a.id }, onclick: () => select(a.id),
        },
        h('td', null, inputName(a)), h('td', { class: 'hide-phone' }, dateTime(a.created_ms)), h('td', null, statusBadge(a.status)),
        h('td', { style: { minWidth: '90px' } }, h('div', { class: 'progress', title: `${num(a.progress, 0)} %` }, h('div', { style: { width: `${a.progress}%` } }))),
        h('td', { class: 'hide-phone' }, a.summary?.main_activity ? activityBadge(a.summary.main_activity) : '—')))))));
    }

    async function renderDetail(a) {
      const running = a.status === 'running' || a.status === 'queued';
      const actions = h('div', { class: 'row' });
      if (running) {
        actions.appendChild(h('button', { class: 'danger', id: 'an-cancel', onclick: async () => { try { await api(`/api/analyses/${a.id}`, { method: 'DELETE' }); } catch { /* shown on refresh */ } refresh(); } }, t('common.cancel')));
      } else {
        if (a.status === 'done') {
          actions.appendChild(h('button', { id: 'an-export-csv', onclick: () => download(`/api/analyses/${a.id}/export?format=csv`) }, `${t('common.export')} CSV`));
          actions.appendChild(h('button', { id: 'an-export-json', onclick: () => download(`/api/analyses/${a.id}/export?format=json`) }, `${t('common.export')} JSON`));
        }
        actions.appendChild(h('button', { class: 'danger', id: 'an-delete', onclick: async () => {
          if (!confirm(t('an.confirm_delete'))) return;
          try { await api(`/api/analyses/${a.id}`, { method: 'DELETE' }); } catch { /* shown on refresh */ }
          select(null);
        } }, t('common.delete')));
      }
      const prog = h('div', null,
        h('div', { class: 'row small', style: { marginBottom: '.3rem' } },
          h('strong', { id: 'an-percent' }, `${num(a.progress, 0)} %`),
          running && a.eta_s != null ? h('span', { class: 'muted', id: 'an-eta' }, t('an.eta', { eta: duration(a.eta_s) })) : null,
          a.elapsed_s != null ? h('span', { class: 'muted' }, t('an.elapsed', { s: duration(a.elapsed_s) })) : null,
          a.duration_s != null ? h('span', { class: 'muted' }, t('an.media_duration', { s: duration(a.duration_s) })) : null),
        h('div', { class: 'progress', id: 'an-progress' }, h('div', { style: { width: `${a.progress}%` } })));
      const head = h('div', null,
        h('div', { class: 'row', style: { marginBottom: '.6rem' } }, statusBadge(a.status),
          h('span', { class: 'muted small' }, a.interval_s ? t('an.every', { s: num(a.interval_s, 1) }) : t('an.at', { s: num(a.at_s, 1) })),
          h('span', { class: 'spacer' }), actions),
        prog,
        a.error ? h('div', { class: 'notice err' }, a.error) : null);
      const results = h('div', { id: 'an-results' });
      fill(detailBox, card(inputName(a), h('div', null, head, results), { cls: '' }));
      if (a.status !== 'done' || !a.summary) return;
      const s = a.summary;
      const shareRows = Object.entries(s.shares).sort((x, y) => y[1] - x[1])
        .map(([c, v]) => ({ name: activityName(c), swatch: c, value: v, color: COLORS[c], text: pct(v, 1) }));
      fill(results,
        h('div', { class: 'tiles', style: { margin: '1rem 0' } },
          h('div', { class: 'tile' }, h('div', { class: 'label' }, t('an.main')), h('div', { class: 'value', id: 'an-main' }, activityName(s.main_activity))),
          h('div', { class: 'tile' }, h('div', { class: 'label' }, t('an.samples')), h('div', { class: 'value' }, s.samples)),
          h('div', { class: 'tile' }, h('div', { class: 'label' }, t('an.sound_events')), h('div', { class: 'value' }, s.sound_events))),
        h('h3', null, t('stats.share_title')), bars(shareRows),
        samplesCache?.id === a.id ? samplesCache.node : h('div', { id: 'an-samples' }, h('p', { class: 'empty' }, t('common.loading'))));
      if (samplesCache?.id === a.id) return;
      const node = results.querySelector('#an-samples');
      samplesCache = { id: a.id, node };
      let doc;
      try { doc = await api(`/api/analyses/${a.id}/export?format=json`); } catch (e) { fill(node, h('p', { class: 'error-text' }, errText(e))); samplesCache = null; return; }
      const samples = doc.samples || [];
      const box = node;
      if (samples.length === 0) { fill(box, h('p', { class: 'empty' }, t('common.no_data'))); return; }
      const step = a.interval_s || 1;
      const end = Math.max(a.duration_s || 0, samples[samples.length - 1].t_s + step);
      // Consecutive samples of one class make one block.
      const items = [];
      for (const x of samples) {
        const endMs = Math.min(end, x.t_s + step) * 1000;
        const last = items[items.length - 1];
        if (last && last.activity === x.activity && Math.abs(last.end_ms - x.t_s * 1000) < 1) last.end_ms = endMs;
        else items.push({ start_ms: x.t_s * 1000, end_ms: endMs, activity: x.activity });
      }
      for (const it of items) it.tip = `${activityName(it.activity)} · ${num(it.start_ms / 1000, 1)}–${num(it.end_ms / 1000, 1)} s`;
      // Round tick steps (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1 h…), about six ticks.
      const tickStep = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400].find((d) => end / d <= 6) || 28800;
      const ticks = [];
      for (let v = 0; v <= end + 1e-6; v += tickStep) ticks.push({ ms: v * 1000, text: duration(v) });
      const chart = h('div', { id: 'an-timeline' });
      responsive(chart, (w) => timeline(items, 0, end * 1000, ticks, { width: w }));
      fill(box,
        h('h3', null, t('an.timeline')), chart, legend(new Set(samples.map((x) => x.activity))),
        h('h3', null, t('an.table')),
        h('div', { class: 'table-wrap', style: { maxHeight: '360px', overflowY: 'auto' } }, h('table', null,
          h('thead', null, h('tr', null, h('th', { class: 'num' }, t('an.t')), h('th', null, t('common.activity')), h('th', { class: 'num' }, t('hist.confidence')), h('th', { class: 'hide-phone' }, t('dash.events')))),
          h('tbody', null, samples.map((x) => {
            const heard = x.sound_events.map((e) => `${t(`event.${e.kind}`) === `event.${e.kind}` ? e.kind : t(`event.${e.kind}`)} ${num(e.onset_s, 1)} s`).join(', ');
            // On a phone the events go under the activity (four columns do not fit).
            return h('tr', null,
              h('td', { class: 'num' }, `${num(x.t_s, 1)} s`),
              h('td', null, activityBadge(x.activity), heard ? h('div', { class: 'small muted show-phone' }, heard) : null),
              h('td', { class: 'num' }, pct(x.confidence)),
              h('td', { class: 'small hide-phone' }, heard || '—'));
          })))));
    }

    async function refresh() {
      clearTimeout(timer);
      let items;
      try { items = (await api('/api/analyses')).analyses; } catch (e) { fill(listBox, h('p', { class: 'error-text' }, errText(e))); timer = setTimeout(refresh, 3000); return; }
      renderList(items);
      let busy = items.some((a) => a.status === 'running' || a.status === 'queued');
      if (selected) {
        try {
          const a = await api(`/api/analyses/${encodeURIComponent(selected)}`);
          busy = busy || a.status === 'running' || a.status === 'queued';
          await renderDetail(a);
        } catch (e) {
          if (e.status === 404) { select(null); return; }
          fill(detailBox, h('p', { class: 'error-text' }, errText(e)));
        }
      } else fill(detailBox, card(t('an.results'), h('p', { class: 'empty' }, t('an.pick')), { cls: '' }));
      if (busy) timer = setTimeout(refresh, 1000);
    }

    fill(root,
      h('h1', null, t('nav.analyses')),
      h('div', { class: 'grid' },
        card(t('an.new'), h('div', null, formBox, h('p', { class: 'muted small' }, t('an.obs_hint'), ' ',
          h('a', { href: '/testing', 'data-nav': true }, t('nav.testing')))), { cls: 'span-5' }),
        card(t('an.list'), listBox, { cls: 'span-7' }),
        h('div', { class: 'span-12' }, detailBox)));
    loadForm();
    refresh();
    return () => clearTimeout(timer);
  },
};
