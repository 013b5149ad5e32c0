// Dashboard: the current activity and its cues, the camera's latest picture, what each source
// hears (live), sound events with a clap indicator, every source's state, today's timeline and
// the outbox.
import { api, live } from '../api.js';
import { t } from '../i18n.js';
import { timeline, legend, responsive } from '../charts.js';
import {
  h, fill, card, activityName, COLORS, pct, time, duration, num, scoreBars, driversTable,
  stateBadge, errText, isoDate, bars, every, snapshotImage,
} from '../ui.js';

const EVENT_ROWS = 8;

export default {
  render(root) {
    const stops = [];
    let status = null;

    // --- Current activity -------------------------------------------------------------
    const actBody = h('div', { id: 'activity' }, h('p', { class: 'empty' }, t('common.loading')));
    async function loadActivity() {
      let a;
      try { a = await api('/api/current-activity'); } catch (e) { fill(actBody, h('p', { class: 'error-text' }, errText(e))); return; }
      if (!a.activity) {
        const ws = status?.window_s;
        fill(actBody,
          h('p', { class: 'empty', id: 'activity-empty' }, ws ? t('dash.no_activity_yet', { s: num(ws, 0) }) : t('dash.no_activity')));
        return;
      }
      fill(actBody,
        h('div', { class: 'activity-now' },
          h('span', { class: 'swatch', style: { width: '1.4rem', height: '1.4rem', background: COLORS[a.activity] } }),
          h('div', null,
            h('div', { class: 'activity-name', id: 'activity-name', dataset: { activity: a.activity } }, activityName(a.activity)),
            h('div', { class: 'activity-conf' }, t('dash.confidence'), ' ', h('strong', { id: 'activity-confidence' }, pct(a.confidence))))),
        h('p', { class: 'muted small', id: 'activity-window', dataset: { end: a.window_end_ms } },
          t('dash.window', { start: time(a.window_start_ms), end: time(a.window_end_ms), source: a.source || '—' })),
        h('div', { class: 'grid' },
          h('div', { class: 'span-5' }, h('h3', null, t('dash.scores')), scoreBars(a.scores)),
          h('div', { class: 'span-7' }, h('h3', null, t('dash.drivers')), driversTable(a.drivers))));
    }

    // --- Snapshot ----------------------------------------------------------------------
    const snapBox = h('div', { id: 'snapshot' }, h('div', { class: 'snapshot-empty' }, t('dash.no_picture')));
    const visionBox = h('div', { class: 'small muted' });
    const snapCaption = h('div', { class: 'small muted', id: 'snapshot-caption' });
    let snapBusy = false;
    let snap = null;
    function hasPicture() {
      return Object.values(status?.sources || {}).some((s) => s.frames > 0 && s.state === 'running');
    }
    async function loadSnapshot() {
      if (snapBusy || !status) return;
      if (!hasPicture()) {
        fill(snapBox, h('div', { class: 'snapshot-empty' }, t('dash.no_picture')));
        fill(snapCaption);
        return;
      }
      snapBusy = true;
      const next = await snapshotImage(snap);
      snapBusy = false;
      if (!next) return;
      snap = next;
      fill(snapBox, next.img);
      fill(snapCaption, t('dash.picture_at', { time: time(next.captured), source: next.source || '—' }));
    }
    stops.push(() => { if (snap) URL.revokeObjectURL(snap.url); });
    function renderVision() {
      const v = status?.vision;
      if (!v) { fill(visionBox, t('dash.no_vision')); return; }
      fill(visionBox, t('dash.vision', {
        persons: v.persons.length, faces: v.faces.length,
        posture: v.posture ? t(`posture.${v.posture}`) : '—', at: time(Date.parse(v.at)),
      }));
    }

    // --- Sound: labels, events, clap ---------------------------------------------------
    const labelsBox = h('div', { id: 'labels', dataset: { updates: '0' } }, h('p', { class: 'empty' }, t('dash.no_labels')));
    const labels = {};
    let labelUpdates = 0;
    let labelsDirty = false;
    function renderLabels() {
      labelsDirty = false;
      const ids = Object.keys(labels).sort();
      if (ids.length === 0) { fill(labelsBox, h('p', { class: 'empty' }, t('dash.no_labels'))); return; }
      fill(labelsBox, ids.map((id) => {
        const r = labels[id];
        return h('div', { class: 'source-block', dataset: { source: id } },
          h('div', { class: 'row small' }, h('strong', null, id), h('span', { class: 'muted' }, `${num(r.level_dbfs, 0)} dBFS`),
            r.gated ? h('span', { class: 'badge off' }, t('dash.gated')) : null),
          r.gated || r.top.length === 0
            ? h('p', { class: 'empty' }, t('dash.too_quiet'))
            : bars(r.top.map((l) => ({ name: l.label, value: l.score }))));
      }));
      labelsBox.dataset.updates = String(labelUpdates);
    }
    const labelTimer = setInterval(() => { if (labelsDirty) renderLabels(); }, 300);
    stops.push(() => clearInterval(labelTimer));

    const clap = h('span', { class: 'clap', id: 'clap', 'aria-live': 'polite' }, h('span', null, t('dash.clap_none')));
    let clapTimer = null;
    function flashClap(ev) {
      fill(clap, h('span', null, t('dash.clap_at', { time: time(ev.onset_ms), source: ev.source })));
      clap.classList.remove('flash');
      void clap.offsetWidth; // restart the animation
      clap.classList.add('flash');
      clearTimeout(clapTimer);
      clapTimer = setTimeout(() => clap.classList.remove('flash'), 2500);
    }
    stops.push(() => clearTimeout(clapTimer));
    // The last stored clap, so a page opened after one does not say none was heard.
    async function loadLastClap() {
      try {
        const page = await api('/api/sound-events?label=clap&limit=1');
        const last = page.items[0];
        if (last && !clap.classList.contains('flash')) {
          fill(clap, h('span', null, t('dash.clap_at', { time: time(last.onset_ms), source: last.source })));
        }
      } catch { /* the events table shows the error */ }
    }

    const eventsBox = h('div', { id: 'sound-events' });
    let events = [];
    function renderEvents() {
      if (events.length === 0) { fill(eventsBox, h('p', { class: 'empty' }, t('dash.no_events'))); return; }
      fill(eventsBox, h('table', { class: 'events' }, h('tbody', null, events.map((e) => h('tr', null,
        h('td', { class: 'num muted' }, time(e.onset_ms)),
        h('td', null, t(`event.${e.label}`) === `event.${e.label}` ? e.label : t(`event.${e.label}`)),
        h('td', { class: 'muted' }, e.source),
        h('td', { class: 'num' }, pct(e.score)))))));
    }
    async function loadEvents() {
      try {
        const page = await api(`/api/sound-events?limit=${EVENT_ROWS}`);
        events = page.items;
        renderEvents();
        loadLastClap();
      } catch (e) { fill(eventsBox, h('p', { class: 'error-text' }, errText(e))); }
    }

    // --- Sources -----------------------------------------------------------------------
    const sourcesBox = h('div', { id: 'sources' }, h('p', { class: 'empty' }, t('common.loading')));
    async function loadSources() {
      let list;
      try { list = (await api('/api/sources')).sources; } catch (e) { fill(sourcesBox, h('p', { class: 'error-text' }, errText(e))); return; }
      if (list.length === 0) { fill(sourcesBox, h('p', { class: 'empty' }, t('dash.no_sources'))); return; }
      fill(sourcesBox, h('div', { class: 'table-wrap' }, h('table', null,
        h('thead', null, h('tr', null, h('th', null, t('src.source')), h('th', null, t('src.state')), h('th', { class: 'num' }, t('src.level')))),
        h('tbody', null, list.map((s) => {
          const st = s.status;
          const state = !s.enabled ? 'disabled' : st ? st.state : 'stopped';
          return h('tr', { dataset: { source: s.id } },
            h('td', null, h('strong', null, s.name || s.id), h('div', { class: 'muted small' }, t(`kind.${s.kind}`) === `kind.${s.kind}` ? s.kind : t(`kind.${s.kind}`), s.primary ? ` · ${t('src.primary')}` : '')),
            h('td', null, stateBadge(state), st?.detail ? h('div', { class: 'muted small wrap-any' }, st.detail) : null,
              st?.last_error ? h('div', { class: 'error-text small wrap-any' }, `${t('src.last_error')}: ${st.last_error}`) : null),
            h('td', { class: 'num' }, st?.level ? `${num(st.level.dbfs, 0)} dBFS` : '—'));
        })))));
    }

    // --- Today's timeline ----------------------------------------------------------------
    const tlBox = h('div', { id: 'timeline' });
    async function loadTimeline() {
      const start = new Date(); start.setHours(0, 0, 0, 0);
      const end = new Date(start); end.setDate(end.getDate() + 1);
      let page;
      try { page = await api(`/api/spans?start=${isoDate(start)}&limit=1000`); } catch (e) { fill(tlBox, h('p', { class: 'error-text' }, errText(e))); return; }
      if (page.items.length === 0) { fill(tlBox, h('p', { class: 'empty' }, t('dash.no_spans'))); return; }
      const ticks = (w) => (w < 560 ? [0, 6, 12, 18, 24] : [0, 3, 6, 9, 12, 15, 18, 21, 24])
        .map((hh) => ({ ms: start.getTime() + hh * 3600e3, text: `${String(hh).padStart(2, '0')}:00` }));
      const seen = new Set(page.items.map((s) => s.activity));
      const chart = h('div');
      responsive(chart, (w) => timeline(page.items, start.getTime(), end.getTime(), ticks(w), { width: w }));
      const total = page.items.reduce((a, s) => a + s.duration_s, 0);
      fill(tlBox, chart, legend(seen),
        h('p', { class: 'muted small' }, t('dash.spans_today', { n: page.total, d: duration(total) })));
    }

    // --- Outbox --------------------------------------------------------------------------
    const outboxBox = h('div', { id: 'outbox' }, h('p', { class: 'empty' }, t('common.loading')));
    async function loadOutbox() {
      let o;
      try { o = await api('/api/outbox'); } catch (e) { fill(outboxBox, h('p', { class: 'error-text' }, errText(e))); return; }
      fill(outboxBox,
        h('div', { class: 'tiles' },
          h('div', { class: 'tile' }, h('div', { class: 'label' }, t('outbox.pending')), h('div', { class: 'value' }, o.pending)),
          h('div', { class: 'tile' }, h('div', { class: 'label' }, t('outbox.delivered')), h('div', { class: 'value' }, o.delivered)),
          h('div', { class: 'tile' }, h('div', { class: 'label' }, t('outbox.dead')), h('div', { class: 'value' }, o.dead_lettered)),
          h('div', { class: 'tile' }, h('div', { class: 'label' }, t('outbox.oldest')), h('div', { class: 'value' }, o.oldest_pending_age_s == null ? '—' : duration(o.oldest_pending_age_s)))),
        o.destinations.length === 0 ? h('p', { class: 'muted small' }, t('outbox.nothing_pending')) :
          h('div', { class: 'table-wrap' }, h('table', null,
            h('thead', null, h('tr', null, h('th', null, t('outbox.destination')), h('th', { class: 'num' }, t('outbox.pending')), h('th', { class: 'num' }, t('outbox.attempts')), h('th', null, t('outbox.next')), h('th', null, t('src.last_error')))),
            h('tbody', null, o.destinations.map((d) => h('tr', null,
              h('td', { class: 'mono' }, d.destination), h('td', { class: 'num' }, d.pending), h('td', { class: 'num' }, d.attempts),
              h('td', null, d.next_attempt ? time(Date.parse(d.next_attempt)) : '—'),
              h('td', { class: d.last_error ? 'error-text small' : 'muted small' }, d.last_error || '—')))))));
    }

    async function loadStatus() {
      try { status = await api('/api/status'); } catch { return; }
      renderVision();
      loadSnapshot();
    }

    // --- Live events -------------------------------------------------------------------
    stops.push(live.subscribe((type, data) => {
      if (type === 'labels') {
        labels[data.source] = data;
        labelUpdates += 1;
        labelsDirty = true;
      } else if (type === 'activity') {
        loadActivity();
        loadTimeline();
      } else if (type === 'sound_event') {
        events = [{ onset_ms: data.onset_ms, label: data.kind, source: data.source, score: data.score }, ...events].slice(0, EVENT_ROWS);
        renderEvents();
        if (data.kind === 'clap') flashClap(data);
      }
    }));

    fill(root,
      h('div', { class: 'grid' },
        card(t('dash.activity'), actBody, { cls: 'span-7', tools: h('span', { class: 'muted small' }, t('dash.live')) }),
        card(t('dash.snapshot'), h('div', null, snapBox, snapCaption, visionBox), { cls: 'span-5' }),
        card(t('dash.sound'), h('div', null, h('div', { class: 'row', style: { marginBottom: '.7rem' } }, clap), labelsBox), { cls: 'span-7' }),
        card(t('dash.events'), eventsBox, { cls: 'span-5' }),
        card(t('dash.sources'), sourcesBox, { cls: 'span-7' }),
        card(t('dash.outbox'), outboxBox, { cls: 'span-5' }),
        card(t('dash.today'), tlBox, { cls: 'span-12' })));

    (async () => {
      await loadStatus();
      loadActivity();
      try {
        const l = await api('/api/sound/labels');
        Object.assign(labels, l.sources);
        renderLabels();
      } catch { /* the live stream fills it */ }
    })();
    loadEvents();
    loadTimeline();
    stops.push(every(5000, loadSources));
    stops.push(every(10000, loadOutbox));
    const statusTimer = setInterval(loadStatus, 3000);
    stops.push(() => clearInterval(statusTimer));
    const tlTimer = setInterval(loadTimeline, 60000);
    stops.push(() => clearInterval(tlTimer));
    return () => stops.forEach((f) => f());
  },
};
