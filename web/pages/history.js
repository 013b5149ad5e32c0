// History: spans, classification windows and sound events, filtered by date and class (or
// label), page by page, with a detail view of a window (every score, cue and feature) and
// exports.
import { api } from '../api.js';
import { t } from '../i18n.js';
import {
  h, fill, card, activityBadge, CLASSES, activityName, pct, duration, dateTime, errText, isoDate,
  scoreBars, driversTable, flatten, kvList, download, cueName,
} from '../ui.js';

const LIMIT = 25;
const KINDS = ['spans', 'activities', 'sound-events'];
const EVENT_KINDS = ['clap', 'applause', 'speech', 'phone_ring', 'snoring', 'dishes', 'typing'];

function nextDay(date) {
  const d = new Date(`${date}T12:00:00`);
  d.setDate(d.getDate() + 1);
  return isoDate(d);
}

export default {
  render(root, params) {
    const st = {
      kind: KINDS.includes(params.get('kind')) ? params.get('kind') : 'spans',
      from: params.get('from') || '',
      to: params.get('to') || '',
      start: params.get('start') || '',
      end: params.get('end') || '',
      cls: params.get('class') || '',
      label: params.get('label') || '',
      offset: Number(params.get('offset')) || 0,
    };

    const tabs = h('div', { class: 'tabs', role: 'tablist' });
    const fromIn = h('input', { type: 'date', id: 'hist-from', value: st.from });
    const toIn = h('input', { type: 'date', id: 'hist-to', value: st.to });
    const clsSel = h('select', { id: 'hist-class' }, h('option', { value: '' }, t('hist.all_classes')),
      CLASSES.map((c) => h('option', { value: c }, activityName(c))));
    const labelSel = h('select', { id: 'hist-label' }, h('option', { value: '' }, t('hist.all_events')),
      EVENT_KINDS.map((k) => h('option', { value: k }, t(`event.${k}`))));
    clsSel.value = st.cls;
    labelSel.value = st.label;
    const filterBox = h('div', { class: 'toolbar' });
    const rangeNote = h('div');
    const list = h('div', { id: 'hist-list' });
    const pager = h('div', { class: 'pager', id: 'hist-pager' });
    const dialog = h('dialog', { id: 'hist-detail' });

    function query(withPaging = true) {
      const q = new URLSearchParams();
      if (st.start) q.set('start', st.start); else if (st.from) q.set('start', st.from);
      if (st.end) q.set('end', st.end); else if (st.to) q.set('end', nextDay(st.to));
      if (st.kind !== 'sound-events' && st.cls) q.set('class', st.cls);
      if (st.kind === 'sound-events' && st.label) q.set('label', st.label);
      if (withPaging) { q.set('limit', LIMIT); q.set('offset', st.offset); }
      return q;
    }

    function syncUrl() {
      const q = new URLSearchParams({ kind: st.kind });
      for (const k of ['from', 'to', 'start', 'end']) if (st[k]) q.set(k, st[k]);
      if (st.cls) q.set('class', st.cls);
      if (st.label) q.set('label', st.label);
      if (st.offset) q.set('offset', st.offset);
      history.replaceState(null, '', `/history?${q}`);
    }

    function renderTabs() {
      fill(tabs, KINDS.map((k) => h('button', {
        class: k === st.kind ? 'active' : '', role: 'tab', id: `hist-tab-${k}`,
        onclick: () => { st.kind = k; st.offset = 0; renderTabs(); renderFilters(); load(); },
      }, t(`hist.tab.${k}`))));
    }

    function renderFilters() {
      const exp = (fmt) => h('button', {
        dataset: { export: fmt },
        onclick: () => { const q = query(false); download(`/api/export?kind=${st.kind}&format=${fmt}&${q}`); },
      }, `${t('common.export')} ${fmt.toUpperCase()}`);
      fill(filterBox,
        h('label', { class: 'field' }, h('span', { class: 'label' }, t('hist.from')), fromIn),
        h('label', { class: 'field' }, h('span', { class: 'label' }, t('hist.to')), toIn),
        st.kind === 'sound-events'
          ? h('label', { class: 'field' }, h('span', { class: 'label' }, t('hist.event')), labelSel)
          : h('label', { class: 'field' }, h('span', { class: 'label' }, t('common.activity')), clsSel),
        h('button', { class: 'primary', id: 'hist-apply', onclick: apply }, t('common.apply')),
        h('button', { onclick: reset }, t('common.reset')),
        h('span', { class: 'spacer' }),
        exp('csv'), exp('json'));
      if (st.start || st.end) {
        fill(rangeNote, h('div', { class: 'notice info' }, t('hist.range', { start: st.start ? dateTime(Number(st.start)) : '…', end: st.end ? dateTime(Number(st.end)) : '…' }), ' ',
          h('button', { onclick: () => { st.start = ''; st.end = ''; st.offset = 0; renderFilters(); load(); } }, t('common.clear'))));
      } else fill(rangeNote);
    }

    function apply() {
      st.from = fromIn.value; st.to = toIn.value; st.cls = clsSel.value; st.label = labelSel.value;
      st.start = ''; st.end = ''; st.offset = 0;
      renderFilters();
      load();
    }
    function reset() {
      fromIn.value = ''; toIn.value = ''; clsSel.value = ''; labelSel.value = '';
      apply();
    }

    function showWindow(w) {
      fill(dialog, h('div', { class: 'dialog-body' },
        h('div', { class: 'card-head' },
          h('h2', null, activityBadge(w.activity), ' ', pct(w.confidence)),
          h('button', { onclick: () => dialog.close(), id: 'hist-detail-close' }, t('common.close'))),
        h('p', { class: 'muted small' }, `${dateTime(w.start_ms)} → ${dateTime(w.end_ms)} · ${w.source} · ${w.classifier}`),
        h('h3', null, t('dash.scores')), scoreBars(w.scores),
        h('h3', null, t('dash.drivers')), driversTable(w.drivers),
        h('h3', null, t('hist.features')), kvList(flatten(w.features))));
      dialog.showModal();
    }

    function table(head, rows) {
      return h('div', { class: 'table-wrap' }, h('table', null, h('thead', null, h('tr', null, head)), h('tbody', null, rows)));
    }

    async function load() {
      syncUrl();
      fill(list, h('p', { class: 'empty' }, t('common.loading')));
      fill(pager);
      let page;
      try { page = await api(`/api/${st.kind}?${query()}`); } catch (e) { fill(list, h('p', { class: 'error-text' }, errText(e))); return; }
      if (page.items.length === 0) {
        fill(list, h('p', { class: 'empty', id: 'hist-empty' }, t('common.no_data')));
        return;
      }
      if (st.kind === 'spans') {
        fill(list, table(
          [h('th', null, t('common.activity')), h('th', null, t('common.start')), h('th', { class: 'hide-phone' }, t('common.end')), h('th', { class: 'num' }, t('common.duration')), h('th', { class: 'num hide-phone' }, t('hist.windows')), h('th', { class: 'num hide-phone' }, t('hist.confidence'))],
          page.items.map((s) => h('tr', {
            class: 'clickable', title: t('hist.span_click'),
            onclick: () => { st.kind = 'activities'; st.start = String(s.start_ms); st.end = String(s.end_ms + 1); st.offset = 0; renderTabs(); renderFilters(); load(); },
          },
          h('td', null, activityBadge(s.activity)), h('td', null, dateTime(s.start_ms)), h('td', { class: 'hide-phone' }, dateTime(s.end_ms)),
          h('td', { class: 'num' }, duration(s.duration_s)), h('td', { class: 'num hide-phone' }, s.windows), h('td', { class: 'num hide-phone' }, pct(s.mean_confidence))))));
      } else if (st.kind === 'activities') {
        fill(list, table(
          [h('th', null, t('common.activity')), h('th', null, t('common.start')), h('th', { class: 'num hide-phone' }, t('common.duration')), h('th', { class: 'num' }, t('hist.confidence')), h('th', { class: 'hide-phone' }, t('dash.drivers'))],
          page.items.map((w) => h('tr', { class: 'clickable', onclick: () => showWindow(w), title: t('hist.window_click') },
            h('td', null, activityBadge(w.activity)), h('td', null, dateTime(w.start_ms)),
            h('td', { class: 'num hide-phone' }, duration((w.end_ms - w.start_ms) / 1000)), h('td', { class: 'num' }, pct(w.confidence)),
            h('td', { class: 'hide-phone muted small' }, w.drivers.slice(0, 3).map((d) => cueName(d.cue)).join(', '))))));
      } else {
        fill(list, table(
          [h('th', null, t('hist.event')), h('th', null, t('common.time')), h('th', null, t('src.source')), h('th', { class: 'num' }, t('hist.score'))],
          page.items.map((e) => h('tr', null,
            h('td', null, t(`event.${e.label}`) === `event.${e.label}` ? e.label : t(`event.${e.label}`)),
            h('td', null, dateTime(e.onset_ms)), h('td', null, e.source), h('td', { class: 'num' }, pct(e.score))))));
      }
      const pages = Math.max(1, Math.ceil(page.total / LIMIT));
      const cur = Math.floor(st.offset / LIMIT) + 1;
      fill(pager,
        h('span', { class: 'muted', id: 'hist-count' }, t('hist.page', { page: cur, pages, total: page.total })),
        h('button', { disabled: st.offset === 0, id: 'hist-prev', onclick: () => { st.offset = Math.max(0, st.offset - LIMIT); load(); } }, t('common.previous')),
        h('button', { disabled: st.offset + LIMIT >= page.total, id: 'hist-next', onclick: () => { st.offset += LIMIT; load(); } }, t('common.next')));
    }

    renderTabs();
    renderFilters();
    fill(root, h('h1', null, t('nav.history')), card(null, h('div', null, tabs, filterBox, rangeNote, list, pager), { cls: '' }), dialog);
    root.querySelector('.card-head')?.remove();
    load();
    return () => { if (dialog.open) dialog.close(); };
  },
};
