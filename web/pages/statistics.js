// Statistics of a day, week, month or year: time per class, durations, hourly distribution,
// daily trend, and exports of the period's records.
import { api } from '../api.js';
import { t } from '../i18n.js';
import { stackedBars, legend, responsive } from '../charts.js';
import {
  h, fill, card, activityName, CLASSES, COLORS, pct, num, duration, errText, isoDate, bars, download, dateOnly,
} from '../ui.js';

function shift(date, period, n) {
  const d = new Date(`${date}T12:00:00`);
  if (period === 'day') d.setDate(d.getDate() + n);
  else if (period === 'week') d.setDate(d.getDate() + 7 * n);
  else if (period === 'month') d.setMonth(d.getMonth() + n, 1);
  else d.setFullYear(d.getFullYear() + n, 0, 1);
  return isoDate(d);
}

export default {
  render(root, params) {
    let period = ['day', 'week', 'month', 'year'].includes(params.get('period')) ? params.get('period') : 'day';
    let date = /^\d{4}-\d{2}-\d{2}$/.test(params.get('date') || '') ? params.get('date') : isoDate();
    let stats = null;

    const periodSel = h('select', { id: 'stats-period', 'aria-label': t('stats.period') },
      ['day', 'week', 'month', 'year'].map((p) => h('option', { value: p }, t(`period.${p}`))));
    periodSel.value = period;
    const dateIn = h('input', { type: 'date', id: 'stats-date', value: date, 'aria-label': t('stats.date') });
    const body = h('div', { class: 'grid', id: 'stats-body' });
    const rangeText = h('span', { class: 'muted small', id: 'stats-range' });

    function exportButtons() {
      const q = stats ? `start=${stats.start_ms}&end=${stats.end_ms}` : '';
      const btn = (kind, fmt) => h('button', {
        disabled: !stats, dataset: { export: `${kind}-${fmt}` },
        onclick: () => download(`/api/export?kind=${kind}&format=${fmt}&${q}`),
      }, `${t(`export.${kind}`)} · ${fmt.toUpperCase()}`);
      return h('div', null,
        h('p', { class: 'muted small', style: { marginTop: 0 } }, t('stats.export_help')),
        h('div', { class: 'row' }, btn('activities', 'csv'), btn('activities', 'json'), btn('spans', 'csv'), btn('spans', 'json'), btn('sound-events', 'csv'), btn('sound-events', 'json')));
    }
    const exportBox = h('div', { id: 'stats-export' });

    async function load() {
      history.replaceState(null, '', `/statistics?period=${period}&date=${date}`);
      fill(body, h('p', { class: 'empty span-12' }, t('common.loading')));
      try {
        stats = await api(`/api/statistics?period=${period}&date=${date}`);
      } catch (e) {
        stats = null;
        fill(body, h('p', { class: 'error-text span-12' }, errText(e)));
        fill(exportBox, exportButtons());
        return;
      }
      fill(rangeText, `${dateOnly(stats.start_ms)} → ${dateOnly(stats.end_ms - 1)}`);
      fill(exportBox, exportButtons());
      draw();
    }

    function draw() {
      const s = stats;
      if (!s.windows) {
        fill(body, card(t('stats.summary'), h('p', { class: 'empty', id: 'stats-empty' }, t('stats.no_data')), { cls: 'span-12' }));
        return;
      }
      const tiles = h('div', { class: 'tiles' },
        [['stats.observed', duration(s.observed_s)], ['stats.active', duration(s.active_s)], ['stats.inactive', duration(s.inactive_s)],
          ['stats.windows', s.windows], ['stats.mean_confidence', pct(s.mean_confidence)],
          ['stats.most_frequent', activityName(s.most_frequent)]].map(([k, v]) =>
          h('div', { class: 'tile' }, h('div', { class: 'label' }, t(k)), h('div', { class: 'value' }, v))));

      const classes = [...s.classes].sort((a, b) => b.total_s - a.total_s);
      const shares = bars(classes.map((c) => ({ name: activityName(c.class), swatch: c.class, value: c.share, color: COLORS[c.class], text: pct(c.share, 1) })));
      const table = h('div', { class: 'table-wrap' }, h('table', { id: 'stats-classes' },
        h('thead', null, h('tr', null, h('th', null, t('common.activity')), h('th', { class: 'num' }, t('stats.total')),
          h('th', { class: 'num' }, t('stats.share')), h('th', { class: 'num' }, t('stats.spans')),
          h('th', { class: 'num hide-phone' }, t('stats.mean_span')), h('th', { class: 'num hide-phone' }, t('stats.mean_confidence')))),
        h('tbody', null, classes.map((c) => h('tr', null,
          h('td', null, h('span', { class: 'swatch', style: { background: COLORS[c.class] } }), activityName(c.class)),
          h('td', { class: 'num' }, duration(c.total_s)), h('td', { class: 'num' }, pct(c.share, 1)),
          h('td', { class: 'num' }, c.spans), h('td', { class: 'num hide-phone' }, c.mean_span_s == null ? '—' : duration(c.mean_span_s)),
          h('td', { class: 'num hide-phone' }, pct(c.mean_confidence)))))));

      const hourly = h('div', { id: 'stats-hourly' });
      const hours = s.hourly.map((x) => ({ label: String(x.hour).padStart(2, '0'), values: x.seconds }));
      responsive(hourly, (w) => stackedBars(hours, { width: w }));

      const days = new Map();
      for (const row of s.daily) {
        if (!days.has(row.date)) days.set(row.date, {});
        days.get(row.date)[row.class] = row.seconds;
      }
      const dayCols = [...days.keys()].sort().map((d) => ({
        label: period === 'year' ? d.slice(5) : d.slice(8), values: days.get(d),
      }));
      const daily = h('div', { id: 'stats-daily' });
      if (dayCols.length > 0) responsive(daily, (w) => stackedBars(dayCols, { width: w }));

      const seen = new Set(CLASSES.filter((c) => s.classes.find((x) => x.class === c && x.total_s > 0)));
      fill(body,
        card(t('stats.summary'), tiles, { cls: 'span-12' }),
        card(t('stats.share_title'), shares, { cls: 'span-5' }),
        card(t('stats.per_class'), table, { cls: 'span-7' }),
        card(t('stats.hourly'), h('div', null, hourly, legend(seen)), { cls: 'span-12' }),
        period === 'day' ? null : card(t('stats.daily'), h('div', null, dayCols.length ? daily : h('p', { class: 'empty' }, t('stats.no_data')), legend(seen)), { cls: 'span-12' }));
    }

    periodSel.addEventListener('change', () => { period = periodSel.value; load(); });
    dateIn.addEventListener('change', () => { if (dateIn.value) { date = dateIn.value; load(); } });
    const move = (n) => () => { date = shift(date, period, n); dateIn.value = date; load(); };

    fill(root,
      h('h1', null, t('nav.statistics')),
      h('div', { class: 'toolbar' },
        periodSel,
        h('button', { onclick: move(-1), 'aria-label': t('stats.previous'), id: 'stats-prev' }, '‹'),
        dateIn,
        h('button', { onclick: move(1), 'aria-label': t('stats.next'), id: 'stats-next' }, '›'),
        h('button', { onclick: () => { date = isoDate(); dateIn.value = date; load(); } }, t('stats.today')),
        rangeText),
      body,
      h('div', { class: 'grid', style: { marginTop: '1rem' } }, card(t('stats.export'), exportBox, { cls: 'span-12' })));
    load();
    return null;
  },
};
