// Model testing: the live picture and features, "classify now", the live sound labels; and a
// video tab to play a media file (or an OBS media source), analyse one frame or the whole video.
import { api, live } from '../api.js';
import { t } from '../i18n.js';
import {
  h, fill, card, activityBadge, pct, num, duration, errText, scoreBars, driversTable, kvList,
  bars, navigate, time, every,
  mediaFiles, snapshotImage,
} from '../ui.js';

const SVG = 'http://www.w3.org/2000/svg';

/** Boxes of the persons (blue) and faces (orange) found, drawn over the analysed picture. */
function overlay(r) {
  const v = r.vision || {};
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${r.width || 1} ${r.height || 1}`);
  svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
  svg.setAttribute('class', 'overlay');
  const box = (b, color) => {
    const rect = document.createElementNS(SVG, 'rect');
    rect.setAttribute('x', b[0]); rect.setAttribute('y', b[1]);
    rect.setAttribute('width', b[2]); rect.setAttribute('height', b[3]);
    rect.setAttribute('fill', 'none'); rect.setAttribute('stroke', color);
    rect.setAttribute('stroke-width', Math.max(2, (r.width || 320) / 200));
    svg.appendChild(rect);
  };
  for (const p of v.persons || []) box(p.box_xywh, '#3f7fe0');
  for (const f of v.faces || []) box(f.box_xywh, '#ff9800');
  return svg;
}

/** The answer of /api/analyze-frame: the analysed picture (with boxes) and what was found in it. */
function frameResult(r) {
  const { snapshot, ...rest } = r || {};
  const v = rest.vision || {};
  const f = rest.features || {};
  const persons = v.persons || [];
  const faces = v.faces || [];
  const tm = v.timings_ms || {};
  const ms = (x) => (x === null || x === undefined ? '—' : `${num(x, 0)} ms`);
  const yesNo = (x) => (x === null || x === undefined ? '—' : x ? t('common.yes') : t('common.no'));
  const from = rest.input === 'media'
    ? t('test.frame_media', { file: rest.media, t: num(rest.t, 2) })
    : t('test.frame_live', { source: v.source || '—', time: time(Date.parse(rest.captured_at)) });
  const summary = [
    [t('test.frame_from'), from],
    [t('test.frame_size'), `${rest.width} × ${rest.height} px`],
    [t('test.persons'), persons.length],
    [t('test.faces'), faces.length],
    [t('test.posture'), v.posture ? t(`posture.${v.posture}`) : '—'],
    [t('test.hand_near_ear'), yesNo(v.hand_near_ear)],
    [t('test.brightness'), num(f.brightness, 1)],
    [t('test.skin'), `${num(f.skin_percent, 1)} %`],
    [t('test.timings'), `${ms(tm.total_ms)} (${t('test.t_pose')} ${ms(tm.pose_detector_ms)}, ${t('test.t_faces')} ${ms(tm.face_detector_ms)}, ${t('test.t_landmarks')} ${ms(tm.landmark_ms)})`],
  ];
  // Each person (blue on the picture) and face (orange) with its score.
  const found = persons.length + faces.length === 0 ? null : h('div', { class: 'table-wrap' }, h('table', null,
    h('thead', null, h('tr', null, h('th', null, t('test.detections')), h('th', { class: 'num' }, t('hist.score')), h('th', null, t('test.posture')), h('th', { class: 'num' }, t('test.axis')))),
    h('tbody', null,
      persons.map((p, i) => h('tr', null,
        h('td', null, h('span', { class: 'swatch', style: { background: '#3f7fe0' } }), t('test.person_n', { n: i + 1 })),
        h('td', { class: 'num' }, pct(p.score)), h('td', null, p.posture ? t(`posture.${p.posture}`) : '—'), h('td', { class: 'num' }, `${num(p.axis_deg, 0)}°`))),
      faces.map((x, i) => h('tr', null,
        h('td', null, h('span', { class: 'swatch', style: { background: '#ff9800' } }), t('test.face_n', { n: i + 1 })),
        h('td', { class: 'num' }, pct(x.score)), h('td', null, '—'), h('td', { class: 'num' }, '—'))))));
  return h('div', { class: 'grid', id: 'frame-result' },
    h('div', { class: 'span-5' }, snapshot
      ? h('div', { class: 'snapshot-wrap' }, h('img', { class: 'snapshot', src: snapshot, alt: t('test.analysed_frame') }), overlay(rest))
      : h('div', { class: 'snapshot-empty' }, t('dash.no_picture'))),
    h('div', { class: 'span-7' }, kvList(summary, { plain: true }), found ? h('div', { style: { marginTop: '.8rem' } }, found) : null));
}

/** The features of one span (`/api/status` → `latest_span`), in words and units. */
function spanFeatures(f) {
  const hz = (x) => (x === null || x === undefined ? '—' : `${num(x, 0)} Hz`);
  const pair = [];
  const v = f.video;
  if (v) {
    pair.push([h('strong', null, t('test.sf.video')), ''],
      [t('test.sf.frames'), v.frames],
      [t('test.sf.motion'), `${num(v.motion_mean, 1)} % / ${num(v.motion_max, 1)} %`],
      [t('test.brightness'), num(v.brightness, 1)],
      [t('test.skin'), `${num(v.skin_percent, 1)} %`]);
  }
  const a = f.audio;
  if (a) {
    pair.push([h('strong', null, t('test.sf.audio')), ''],
      [t('test.sf.level'), `${num(a.dbfs, 1)} dBFS (${num(a.rms, 3)} / ${num(a.peak, 3)})`],
      [t('test.sf.zcr'), num(a.zcr, 3)],
      [t('test.sf.dominant'), hz(a.dominant_hz)],
      [t('test.sf.bands'), a.bands ? `${pct(a.bands.low)} / ${pct(a.bands.mid)} / ${pct(a.bands.high)}` : '—'],
      [t('test.sf.pitch'), hz(a.pitch_hz)],
      [t('test.sf.voice_like'), f.voice_like]);
  }
  return kvList(pair, { plain: true });
}

function liveTab(stops) {
  const snapBox = h('div', null, h('div', { class: 'snapshot-empty' }, t('dash.no_picture')));
  const featBox = h('div', { id: 'test-features' }, h('p', { class: 'empty' }, t('common.loading')));
  const classifyBox = h('div', { id: 'classify-result' });
  const frameBox = h('div', { id: 'live-frame-result' }, h('p', { class: 'empty' }, t('test.frame_help')));
  const labelsBox = h('div', { id: 'test-labels' }, h('p', { class: 'empty' }, t('dash.no_labels')));
  const labels = {};
  let dirty = false;
  let snap = null;

  async function refresh() {
    let s;
    try { s = await api('/api/status'); } catch (e) { fill(featBox, h('p', { class: 'error-text' }, errText(e))); return; }
    if (s.latest_span) {
      // start and end are capture times in µs: shown as the second they cover.
      const { start, end, ...rest } = s.latest_span;
      fill(featBox, h('p', { class: 'muted small', style: { marginTop: 0 } }, `${time(start / 1000)} → ${time(end / 1000)}`), spanFeatures(rest));
    } else fill(featBox, h('p', { class: 'empty' }, t('test.no_span')));
    const camera = Object.values(s.sources || {}).some((x) => x.frames > 0 && x.state === 'running');
    if (!camera) { fill(snapBox, h('div', { class: 'snapshot-empty' }, t('dash.no_picture'))); return; }
    const next = await snapshotImage(snap);
    if (!next) return;
    snap = next;
    fill(snapBox, next.img);
  }
  stops.push(() => { if (snap) URL.revokeObjectURL(snap.url); });

  const classifyBtn = h('button', { class: 'primary', id: 'classify-now' }, t('test.classify_now'));
  classifyBtn.addEventListener('click', async () => {
    classifyBtn.disabled = true;
    fill(classifyBox, h('p', { class: 'empty' }, t('common.working')));
    try {
      const a = await api('/api/classify-now', { method: 'POST', body: {} });
      fill(classifyBox,
        h('div', { class: 'row', style: { marginBottom: '.5rem' } }, activityBadge(a.activity), h('strong', null, pct(a.confidence)),
          a.partial ? h('span', { class: 'badge warn' }, t('test.partial')) : null,
          h('span', { class: 'muted small' }, `${time(a.window_start_ms)} → ${time(a.window_end_ms)}`)),
        h('div', { class: 'grid' }, h('div', { class: 'span-6' }, scoreBars(a.scores)), h('div', { class: 'span-6' }, driversTable(a.drivers))));
    } catch (e) {
      fill(classifyBox, h('div', { class: 'notice err' }, e.status === 409 ? t('test.no_span_yet') : errText(e)));
    } finally { classifyBtn.disabled = false; }
  });

  const frameBtn = h('button', { id: 'analyze-live-frame' }, t('test.analyse_frame'));
  frameBtn.addEventListener('click', async () => {
    frameBtn.disabled = true;
    fill(frameBox, h('p', { class: 'empty' }, t('common.working')));
    try { fill(frameBox, frameResult(await api('/api/analyze-frame', { method: 'POST', body: { live: true } }))); } catch (e) {
      fill(frameBox, h('div', { class: 'notice err' }, errText(e)));
    } finally { frameBtn.disabled = false; }
  });

  function renderLabels() {
    dirty = false;
    const ids = Object.keys(labels).sort();
    if (ids.length === 0) return;
    fill(labelsBox, ids.map((id) => h('div', { class: 'source-block' },
      h('div', { class: 'row small' }, h('strong', null, id), h('span', { class: 'muted' }, `${num(labels[id].level_dbfs, 0)} dBFS`)),
      labels[id].gated || labels[id].top.length === 0 ? h('p', { class: 'empty' }, t('dash.too_quiet'))
        : bars(labels[id].top.map((l) => ({ name: l.label, value: l.score }))))));
  }
  stops.push(live.subscribe((type, d) => { if (type === 'labels') { labels[d.source] = d; dirty = true; } }));
  const lt = setInterval(() => dirty && renderLabels(), 300);
  stops.push(() => clearInterval(lt));
  stops.push(every(3000, refresh));

  return h('div', { class: 'grid' },
    card(t('test.live_picture'), h('div', null, snapBox, h('div', { class: 'row', style: { marginTop: '.6rem' } }, frameBtn)), { cls: 'span-5' }),
    card(t('test.classify'), h('div', null, h('p', { class: 'muted small' }, t('test.classify_help')), classifyBtn, h('div', { style: { marginTop: '.8rem' } }, classifyBox)), { cls: 'span-7' }),
    card(t('test.frame_result'), frameBox, { cls: 'span-12' }),
    card(t('test.features'), featBox, { cls: 'span-7' }),
    card(t('test.labels'), labelsBox, { cls: 'span-5' }));
}

function videoTab(stops) {
  const box = h('div', { class: 'grid' });
  const mode = h('select', { id: 'video-mode' }, h('option', { value: 'file' }, t('test.media_file')), h('option', { value: 'obs' }, t('test.obs_source')));
  const body = h('div');
  const resultBox = h('div', { id: 'video-frame-result' }, h('p', { class: 'empty' }, t('test.frame_help')));
  const interval = h('input', { type: 'number', id: 'video-interval', min: '1', max: '86400', value: '5', style: { width: '6rem' } });
  let stopPoll = null;

  async function analyseWhole(body) {
    try {
      const a = await api('/api/analyses', { method: 'POST', body: { ...body, interval_s: Number(interval.value) } });
      navigate(`/analyses?id=${encodeURIComponent(a.id)}`);
    } catch (e) { fill(resultBox, h('div', { class: 'notice err' }, errText(e))); }
  }
  const wholeRow = (getBody) => h('div', { class: 'toolbar', style: { marginTop: '.8rem' } },
    h('label', { class: 'field' }, h('span', { class: 'label' }, t('an.interval')), interval),
    h('button', { class: 'primary', id: 'analyse-whole', onclick: () => { const b = getBody(); if (b) analyseWhole(b); } }, t('test.analyse_whole')));

  async function fileMode() {
    let files;
    try { files = mediaFiles((await api('/api/media')).files); } catch (e) { fill(body, h('p', { class: 'error-text' }, errText(e))); return; }
    if (files.length === 0) { fill(body, h('p', { class: 'empty' }, t('an.no_media'))); return; }
    const sel = h('select', { id: 'video-file' }, files.map((f) => h('option', { value: f.file }, f.file)));
    const video = h('video', { class: 'player', id: 'video-player', controls: true, preload: 'metadata', playsinline: true });
    const clock = h('span', { class: 'mono small', id: 'video-time' }, '0.0 s');
    const load = () => { video.src = `/media/${sel.value.split('/').map(encodeURIComponent).join('/')}`; };
    sel.addEventListener('change', load);
    video.addEventListener('timeupdate', () => { clock.textContent = `${num(video.currentTime, 1)} s / ${Number.isFinite(video.duration) ? num(video.duration, 1) : '—'} s`; });
    video.addEventListener('loadedmetadata', () => { clock.textContent = `0 s / ${num(video.duration, 1)} s`; });
    const stepBtn = (d, label) => h('button', { onclick: () => { video.currentTime = Math.max(0, Math.min(video.duration || 0, video.currentTime + d)); } }, label);
    const playBtn = h('button', { id: 'video-play', onclick: () => (video.paused ? video.play().catch(() => {}) : video.pause()) }, t('test.play_pause'));
    const frameBtn = h('button', { class: 'primary', id: 'analyse-frame' }, t('test.analyse_frame'));
    frameBtn.addEventListener('click', async () => {
      video.pause();
      frameBtn.disabled = true;
      fill(resultBox, h('p', { class: 'empty' }, t('common.working')));
      try {
        fill(resultBox, frameResult(await api('/api/analyze-frame', { method: 'POST', body: { media: sel.value, t: video.currentTime } })));
      } catch (e) { fill(resultBox, h('div', { class: 'notice err' }, errText(e))); } finally { frameBtn.disabled = false; }
    });
    load();
    fill(body,
      h('div', { class: 'toolbar' }, h('label', { class: 'field' }, h('span', { class: 'label' }, t('an.file')), sel)),
      video,
      h('div', { class: 'row', style: { marginTop: '.6rem' } }, stepBtn(-1, '‹ 1 s'), playBtn, stepBtn(1, '1 s ›'), clock, h('span', { class: 'spacer' }), frameBtn),
      wholeRow(() => ({ file: sel.value })));
  }

  async function obsMode() {
    let inputs;
    try { inputs = (await api('/api/obs/inputs')).inputs; } catch (e) {
      fill(body, h('p', { class: 'empty', id: 'obs-unavailable' }, e.status === 409 ? t('test.obs_disabled') : errText(e)));
      return;
    }
    const media = inputs.filter((i) => i.kind === 'ffmpeg_source');
    if (media.length === 0) { fill(body, h('p', { class: 'empty' }, t('test.obs_no_media'))); return; }
    const sel = h('select', { id: 'obs-input' }, media.map((i) => h('option', { value: i.name }, i.name)));
    const stateBox = h('span', { class: 'muted small' });
    const slider = h('input', { type: 'range', min: '0', max: '0', step: '100', value: '0', style: { flex: '1', minWidth: '160px' } });
    let dragging = false;
    const path = () => `/api/obs/media/${encodeURIComponent(sel.value)}`;
    const show = (m) => {
      fill(stateBox, `${t(`test.media.${m.state}`) === `test.media.${m.state}` ? m.state : t(`test.media.${m.state}`)} · ${duration((m.cursor_ms || 0) / 1000)} / ${m.duration_ms ? duration(m.duration_ms / 1000) : '—'}`);
      slider.max = String(m.duration_ms || 0);
      if (!dragging) slider.value = String(m.cursor_ms || 0);
    };
    const poll = async () => { try { show(await api(path(), { retries: 0 })); } catch (e) { fill(stateBox, errText(e)); } };
    const act = (action, extra = {}) => async () => { try { show(await api(path(), { method: 'POST', body: { action, ...extra } })); } catch (e) { fill(stateBox, errText(e)); } };
    slider.addEventListener('input', () => { dragging = true; });
    slider.addEventListener('change', async () => { dragging = false; await act('seek', { position_ms: Number(slider.value) })(); });
    const frameBtn = h('button', { class: 'primary' }, t('test.analyse_frame'));
    frameBtn.addEventListener('click', async () => {
      try {
        const m = await api(path());
        const a = await api('/api/analyses', { method: 'POST', body: { source: sel.value, at_s: (m.cursor_ms || 0) / 1000 } });
        navigate(`/analyses?id=${encodeURIComponent(a.id)}`);
      } catch (e) { fill(resultBox, h('div', { class: 'notice err' }, errText(e))); }
    });
    sel.addEventListener('change', poll);
    if (stopPoll) stopPoll();
    stopPoll = every(1000, poll);
    fill(body,
      h('div', { class: 'toolbar' }, h('label', { class: 'field' }, h('span', { class: 'label' }, t('test.obs_source')), sel), stateBox),
      h('div', { class: 'row' }, h('button', { onclick: act('play') }, t('test.play')), h('button', { onclick: act('pause') }, t('test.pause')),
        h('button', { onclick: act('restart') }, t('test.restart')), h('button', { onclick: act('stop') }, t('test.stop')), slider, frameBtn),
      wholeRow(() => ({ source: sel.value })));
  }

  const switchMode = () => {
    if (stopPoll) { stopPoll(); stopPoll = null; }
    fill(resultBox, h('p', { class: 'empty' }, t('test.frame_help')));
    fill(body, h('p', { class: 'empty' }, t('common.loading')));
    if (mode.value === 'obs') obsMode(); else fileMode();
  };
  mode.addEventListener('change', switchMode);
  stops.push(() => stopPoll && stopPoll());
  switchMode();
  fill(box,
    card(t('test.video'), h('div', null, h('div', { class: 'toolbar' }, h('label', { class: 'field' }, h('span', { class: 'label' }, t('test.video_from')), mode)), body), { cls: 'span-12' }),
    card(t('test.frame_result'), resultBox, { cls: 'span-12' }));
  return box;
}

export default {
  render(root, params) {
    let stops = [];
    const tab = params.get('tab') === 'video' ? 'video' : 'live';
    const tabs = h('div', { class: 'tabs' });
    const content = h('div');
    function show(name) {
      stops.forEach((f) => f());
      stops = [];
      history.replaceState(null, '', name === 'video' ? '/testing?tab=video' : '/testing');
      fill(tabs, ['live', 'video'].map((n) => h('button', { class: n === name ? 'active' : '', id: `test-tab-${n}`, onclick: () => show(n) }, t(`test.tab.${n}`))));
      fill(content, name === 'video' ? videoTab(stops) : liveTab(stops));
    }
    fill(root, h('h1', null, t('nav.testing')), tabs, content);
    show(tab);
    return () => stops.forEach((f) => f());
  },
};
