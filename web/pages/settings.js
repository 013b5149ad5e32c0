// Settings: the audio sources (add, edit, enable, remove, device, VBAN stream, RTSP URL, webhook
// with a test button), and the daemon's settings from /api/settings (classifier, vision,
// hearing, external service, OBS...), validated by the server with per-field errors.
import { api, afterRestart } from '../api.js';
import { t } from '../i18n.js';
import { h, fill, card, stateBadge, errText } from '../ui.js';

const SECTION_ORDER = ['classifier', 'vision', 'hearing', 'external_service', 'obs', 'file', 'video', 'analysis', 'outbox', 'storage', 'retention', 'mqtt', 'http', 'log'];
const KINDS = ['microphone', 'vban', 'rtsp'];
/** The order fields are shown in (others follow, alphabetically). */
const FIELD_ORDER = [
  'classifier.window_s', 'classifier.audio_source',
  'vision.enabled', 'vision.fps', 'vision.faces', 'vision.landmarks',
  'hearing.enabled', 'hearing.top_k', 'hearing.hop_s', 'hearing.level_gate_dbfs', 'hearing.webhook_timeout_s',
  'external_service.url', 'external_service.token_set', 'external_service.timeout_s', 'external_service.interval_s',
  'obs.enabled', 'obs.host', 'obs.port', 'obs.password_set', 'obs.source', 'obs.fps', 'obs.width', 'obs.jpeg_quality',
  'file.enabled', 'file.path', 'file.streams', 'file.loop', 'file.webhook',
  'video.analysis_fps', 'video.analysis_width', 'video.motion_threshold',
  'retention.activities_days', 'retention.spans_days', 'retention.sound_events_days', 'retention.delivered_days', 'retention.dead_letter_days',
  'enabled', 'threshold', 'min_gap_s', 'over_loud_background',
];

function ordered(path, keys) {
  const rank = (k) => {
    const i = FIELD_ORDER.indexOf(path ? `${path}.${k}` : k);
    const j = FIELD_ORDER.indexOf(k);
    return i >= 0 ? i : j >= 0 ? 500 + j : 1000;
  };
  return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** Settings that take one of a few words. */
const CHOICES = {
  'vision.faces': ['full_range', 'short_range', 'both', 'off'],
  'file.streams': ['both', 'video', 'audio'],
};

/** A label for a settings key: its translation, else the key in words. */
function keyLabel(path) {
  const known = (k) => (t(k) === k ? null : t(k));
  const parts = path.split('.');
  const last = parts[parts.length - 1];
  const parent = parts[parts.length - 2];
  const found = known(`set.${path}`) || (parent === 'events' ? known(`event.${last}`) : null) || known(`set.${last}`);
  if (found) return found;
  const unit = last.match(/_(s|ms|dbfs|hz|days)$/);
  const words = last.replace(/_(s|ms|dbfs|hz|days)$/, '').replace(/_/g, ' ');
  return unit ? `${words} (${unit[1] === 'dbfs' ? 'dBFS' : unit[1]})` : words;
}

function sectionLabel(name) {
  const k = `section.${name}`;
  return t(k) === k ? name.replace(/_/g, ' ') : t(k);
}

/** Sends a test payload to a webhook URL and shows the receiver's answer next to the button. */
function webhookTester(getUrl, source) {
  const out = h('span', { class: 'small' });
  const btn = h('button', { type: 'button', class: 'webhook-test' }, t('set.test'));
  btn.addEventListener('click', async () => {
    const url = getUrl().trim();
    if (!url) { fill(out, h('span', { class: 'error-text' }, t('set.webhook_empty'))); return; }
    btn.disabled = true;
    fill(out, h('span', { class: 'muted' }, t('common.working')));
    try {
      const r = await api('/api/webhooks/test', { method: 'POST', body: { url, source } });
      fill(out, h('span', { class: 'badge ok' }, t('set.webhook_ok', { status: r.status })));
    } catch (e) {
      fill(out, h('span', { class: 'badge err' }, e.body?.status && e.body?.url ? t('set.webhook_status', { status: e.body.status }) : errText(e)));
    } finally { btn.disabled = false; }
  });
  return h('span', { class: 'row' }, btn, out);
}

// --- Sources -----------------------------------------------------------------------------

function sourceDialog(existing, devices, onSaved) {
  const dlg = h('dialog', { id: 'source-dialog' });
  const f = {
    id: h('input', { name: 'id', value: existing?.id || '', disabled: !!existing, placeholder: 'living-room' }),
    name: h('input', { name: 'name', value: existing?.name || '' }),
    kind: h('select', { name: 'kind', disabled: !!existing }, KINDS.map((k) => h('option', { value: k }, t(`kind.${k}`)))),
    enabled: h('input', { type: 'checkbox', name: 'enabled', checked: existing ? existing.enabled : true }),
    device: h('select', { name: 'device' }, h('option', { value: 'default' }, t('set.default_device')),
      devices.map((d) => h('option', { value: d.name }, `${d.index}: ${d.name}`))),
    stream: h('input', { name: 'stream', value: existing?.stream || '', placeholder: 'Stream1' }),
    sender: h('input', { name: 'sender', value: existing?.sender || '', placeholder: '192.168.1.20' }),
    url: h('input', { name: 'url', value: existing?.url || '', placeholder: 'rtsp://user:pass@camera/stream' }),
    transport: h('select', { name: 'transport' }, h('option', { value: 'tcp' }, 'TCP'), h('option', { value: 'udp' }, 'UDP')),
    webhook: h('input', { name: 'webhook', value: existing?.webhook || '', placeholder: 'http://127.0.0.1:8123/api/webhook/clap' }),
  };
  f.kind.value = existing?.kind || 'microphone';
  if (existing?.device) {
    if (![...f.device.options].some((o) => o.value === existing.device)) f.device.appendChild(h('option', { value: existing.device }, existing.device));
    f.device.value = existing.device;
  }
  f.transport.value = existing?.transport || 'tcp';
  const errors = {};
  const field = (name, input, extra) => {
    errors[name] = h('div', { class: 'field-error', dataset: { for: name } });
    return h('label', { class: 'field', dataset: { field: name } }, h('span', { class: 'label' }, t(`src.f.${name}`)), input, extra, errors[name]);
  };
  const general = h('div', { class: 'field-error' });
  const kindFields = h('div', { class: 'form-grid' });
  const showKind = () => {
    const k = f.kind.value;
    fill(kindFields,
      k === 'microphone' ? field('device', f.device) : null,
      k === 'vban' ? [field('stream', f.stream), field('sender', f.sender)] : null,
      k === 'rtsp' ? [field('url', f.url, existing?.url?.includes('***') ? h('span', { class: 'field-help' }, t('set.url_hidden')) : null), field('transport', f.transport)] : null);
  };
  f.kind.addEventListener('change', showKind);
  showKind();
  const save = h('button', { class: 'primary', type: 'submit' }, t('common.save'));
  const form = h('form', { method: 'dialog' },
    h('div', { class: 'dialog-body' },
      h('h2', null, existing ? t('set.edit_source', { id: existing.id }) : t('set.add_source')),
      h('div', { class: 'form-grid' }, field('id', f.id), field('name', f.name), field('kind', f.kind),
        h('label', { class: 'check', style: { alignSelf: 'end' } }, f.enabled, t('src.f.enabled'))),
      h('div', { style: { marginTop: '.8rem' } }, kindFields),
      h('div', { style: { marginTop: '.8rem' } }, field('webhook', f.webhook, webhookTester(() => f.webhook.value, existing?.id || f.id.value || 'test'))),
      general,
      h('div', { class: 'row', style: { marginTop: '1rem', justifyContent: 'flex-end' } },
        h('button', { type: 'button', onclick: () => { dlg.close(); dlg.remove(); } }, t('common.cancel')), save)));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const e of Object.values(errors)) fill(e);
    fill(general);
    for (const i of Object.values(f)) i.classList.remove('invalid');
    const k = f.kind.value;
    // An RTSP URL sent back with its password shown as *** keeps the saved password (server).
    const body = { name: f.name.value, kind: k, enabled: f.enabled.checked, webhook: f.webhook.value.trim() || null };
    if (k === 'microphone') body.device = f.device.value;
    if (k === 'vban') { body.stream = f.stream.value; body.sender = f.sender.value.trim() || null; }
    if (k === 'rtsp') { body.url = f.url.value; body.transport = f.transport.value; }
    if (existing?.events && Object.keys(existing.events).length) body.events = existing.events;
    save.disabled = true;
    try {
      if (existing) await api(`/api/sources/${encodeURIComponent(existing.id)}`, { method: 'PUT', body });
      else await api('/api/sources', { method: 'POST', body: { id: f.id.value.trim(), ...body } });
      dlg.close();
      dlg.remove();
      onSaved();
    } catch (e) {
      const name = e.body?.field;
      if (name && errors[name]) { fill(errors[name], errText(e)); f[name]?.classList.add('invalid'); } else fill(general, errText(e));
    } finally { save.disabled = false; }
  });
  dlg.appendChild(form);
  document.body.appendChild(dlg);
  dlg.addEventListener('close', () => dlg.remove());
  dlg.showModal();
}

function sourcesCard() {
  const box = h('div', { id: 'set-sources' }, h('p', { class: 'empty' }, t('common.loading')));
  const msg = h('div');
  let devices = [];
  async function load() {
    let list;
    try { list = (await api('/api/sources')).sources; } catch (e) { fill(box, h('p', { class: 'error-text' }, errText(e))); return; }
    fill(box, h('div', { class: 'table-wrap' }, h('table', null,
      h('thead', null, h('tr', null, h('th', null, t('src.source')), h('th', null, t('src.state')), h('th', { class: 'hide-phone' }, t('src.settings')), h('th', null, t('src.f.enabled')), h('th', null, ''))),
      h('tbody', null, list.map((s) => {
        const detail = s.builtin ? t('src.builtin') : s.kind === 'microphone' ? s.device || 'default' : s.kind === 'vban' ? `${s.stream || ''}${s.sender ? ` @ ${s.sender}` : ''}` : s.url || '';
        const toggle = h('input', { type: 'checkbox', checked: s.enabled, disabled: s.builtin, 'aria-label': t('src.f.enabled'), dataset: { toggle: s.id } });
        toggle.addEventListener('change', async () => {
          const body = { name: s.name, kind: s.kind, enabled: toggle.checked, webhook: s.webhook || null, device: s.device, stream: s.stream, sender: s.sender, url: s.url, transport: s.transport };
          if (s.events && Object.keys(s.events).length) body.events = s.events;
          fill(msg);
          try { await api(`/api/sources/${encodeURIComponent(s.id)}`, { method: 'PUT', body }); } catch (e) { toggle.checked = s.enabled; fill(msg, h('div', { class: 'notice err' }, errText(e))); }
          load();
        });
        return h('tr', { dataset: { source: s.id } },
          h('td', null, h('strong', null, s.name || s.id), h('div', { class: 'muted small' }, `${s.id} · ${t(`kind.${s.kind}`) === `kind.${s.kind}` ? s.kind : t(`kind.${s.kind}`)}`),
            s.webhook ? h('div', { class: 'muted small mono' }, `↪ ${s.webhook}`) : null),
          h('td', null, stateBadge(!s.enabled ? 'disabled' : s.status ? s.status.state : 'stopped'),
            s.status?.last_error ? h('div', { class: 'error-text small' }, s.status.last_error) : null),
          h('td', { class: `hide-phone small ${s.builtin ? 'muted' : 'mono'}` }, detail),
          h('td', null, toggle),
          h('td', null, s.builtin ? null : h('div', { class: 'row' },
            h('button', { onclick: () => sourceDialog(s, devices, load) }, t('common.edit')),
            s.webhook ? webhookTester(() => s.webhook, s.id) : null,
            h('button', { class: 'danger', onclick: async () => {
              if (!confirm(t('set.confirm_remove', { id: s.id }))) return;
              fill(msg);
              try { await api(`/api/sources/${encodeURIComponent(s.id)}`, { method: 'DELETE' }); } catch (e) { fill(msg, h('div', { class: 'notice err' }, errText(e))); }
              load();
            } }, t('common.remove')))));
      })))));
  }
  (async () => {
    try { devices = await api('/api/audio-devices', { retries: 0 }); } catch { devices = []; }
    load();
  })();
  return card(t('set.sources'), h('div', null, msg, box), {
    cls: 'span-12', id: 'card-sources',
    tools: h('button', { class: 'primary', id: 'add-source', onclick: () => sourceDialog(null, devices, load) }, t('set.add_source')),
  });
}

// --- Settings ------------------------------------------------------------------------------

function settingsCard() {
  const box = h('div', { id: 'settings-form' }, h('p', { class: 'empty' }, t('common.loading')));
  const msg = h('div', { id: 'settings-message' });
  const fileNote = h('span', { class: 'muted small mono' });
  let original = null;
  const inputs = new Map(); // path → {input, error, kind, secret}

  function leaf(path, value, { bare = false } = {}) {
    const last = path.split('.').pop();
    const error = h('div', { class: 'field-error', dataset: { for: path } });
    let input;
    let kind;
    let secret = false;
    let name = path;
    if (/_set$/.test(last) && typeof value === 'boolean') {
      secret = true;
      kind = 'secret';
      name = path.replace(/_set$/, '');
      input = h('input', { type: 'password', autocomplete: 'new-password', placeholder: value ? t('set.secret_set') : t('set.secret_unset') });
    } else if (CHOICES[path]) {
      kind = 'text';
      input = h('select', null, CHOICES[path].map((c) => h('option', { value: c }, t(`choice.${c}`) === `choice.${c}` ? c : t(`choice.${c}`))));
      input.value = value ?? CHOICES[path][0];
    } else if (typeof value === 'boolean') {
      kind = 'bool';
      input = h('input', { type: 'checkbox', checked: value });
    } else if (typeof value === 'number') {
      kind = 'number';
      input = h('input', { type: 'number', step: 'any', value: String(value) });
    } else if (Array.isArray(value)) {
      kind = 'list';
      input = h('input', { value: value.join(', ') });
    } else {
      kind = 'text';
      const hint = t(`set.${path}.placeholder`);
      input = h('input', { value: value ?? '', placeholder: hint === `set.${path}.placeholder` ? null : hint });
    }
    input.name = name;
    input.id = `set-${name.replace(/\./g, '-')}`;
    inputs.set(name, { input, error, kind, original: value });
    let extra = null;
    let control = input;
    if (last === 'webhook') {
      // The test button beside the URL, so that the field is as tall as its neighbours.
      control = h('div', { class: 'input-row' }, input, webhookTester(() => input.value, path.split('.')[0]));
    }
    if (secret && value) {
      // A set secret can be removed: the field is sent empty.
      const clear = h('button', { type: 'button', class: 'small' }, t('set.secret_clear'));
      clear.addEventListener('click', () => {
        input.value = '';
        input.dataset.clear = '1';
        input.placeholder = t('set.secret_cleared');
      });
      input.addEventListener('input', () => { delete input.dataset.clear; });
      extra = h('span', { class: 'row' }, clear);
    }
    if (bare) {
      input.setAttribute('aria-label', keyLabel(path));
      return h('div', { class: 'field', dataset: { field: name } }, input, error);
    }
    if (kind === 'bool') {
      return h('div', { class: 'field bool', dataset: { field: name } }, h('label', { class: 'check' }, input, keyLabel(name)), error);
    }
    return h('label', { class: 'field', dataset: { field: name } }, h('span', { class: 'label' }, keyLabel(secret ? name : path)), control, extra, error);
  }

  /** A table of like objects (e.g. the rule of each sound event): one row each, one column per key. */
  function table(path, obj) {
    const rows = Object.keys(obj);
    const cols = ordered(`${path}.${rows[0]}`, Object.keys(obj[rows[0]]));
    return h('div', { class: 'table-wrap' }, h('table', { class: 'settings-table' },
      h('thead', null, h('tr', null, h('th', null, ''), cols.map((c) => h('th', null, keyLabel(`${path}.${rows[0]}.${c}`))))),
      h('tbody', null, rows.map((r) => h('tr', null,
        h('td', null, keyLabel(`${path}.${r}`)),
        cols.map((c) => h('td', null, leaf(`${path}.${r}.${c}`, obj[r][c], { bare: true }))))))));
  }

  function isTable(obj) {
    const vals = Object.values(obj);
    if (vals.length < 2 || !vals.every((v) => v && typeof v === 'object' && !Array.isArray(v))) return false;
    const keys = JSON.stringify(Object.keys(vals[0]).sort());
    return vals.every((v) => JSON.stringify(Object.keys(v).sort()) === keys && Object.values(v).every((x) => x === null || typeof x !== 'object'));
  }

  function group(path, obj) {
    const leaves = [];
    const groups = [];
    for (const k of ordered(path, Object.keys(obj))) {
      const v = obj[k];
      const p = path ? `${path}.${k}` : k;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) groups.push(h('div', null, h('h3', null, keyLabel(p)), isTable(v) ? table(p, v) : group(p, v)));
      else leaves.push(leaf(p, v));
    }
    return h('div', null, leaves.length ? h('div', { class: 'form-grid' }, leaves) : null, groups);
  }

  function render(data) {
    original = data.settings;
    inputs.clear();
    fill(fileNote, data.file ? t('set.saved_in', { file: data.file }) : '');
    const names = Object.keys(original).sort((a, b) => {
      const ia = SECTION_ORDER.indexOf(a); const ib = SECTION_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    fill(box, names.map((n) => {
      const v = original[n];
      const content = v !== null && typeof v === 'object' && !Array.isArray(v) ? group(n, v) : h('div', { class: 'form-grid' }, leaf(n, v));
      return h('div', { class: 'form-section', dataset: { section: n } }, h('h2', null, sectionLabel(n)), content);
    }));
  }

  /** The changed fields as a partial settings object, or an error per unreadable field. */
  function changes() {
    const out = {};
    const bad = {};
    let count = 0;
    for (const [path, f] of inputs) {
      let v;
      if (f.kind === 'secret') {
        if (f.input.dataset.clear) v = '';
        else if (!f.input.value) continue;
        else v = f.input.value;
      }
      else if (f.kind === 'bool') { v = f.input.checked; if (v === f.original) continue; }
      else if (f.kind === 'number') {
        if (f.input.value.trim() === '' || Number.isNaN(Number(f.input.value))) { bad[path] = t('set.not_a_number'); continue; }
        v = Number(f.input.value); if (v === f.original) continue;
      } else if (f.kind === 'list') {
        v = f.input.value.split(',').map((x) => x.trim()).filter((x) => x);
        if (JSON.stringify(v) === JSON.stringify(f.original)) continue;
      } else { v = f.input.value; if (v === (f.original ?? '')) continue; }
      const keys = path.split('.');
      let o = out;
      for (const k of keys.slice(0, -1)) o = o[k] ??= {};
      o[keys[keys.length - 1]] = v;
      count += 1;
    }
    return { out, bad, count };
  }

  function showErrors(fields) {
    let unplaced = [];
    for (const [path, text] of Object.entries(fields)) {
      const f = inputs.get(path) || inputs.get(path.replace(/_set$/, ''));
      if (f) { fill(f.error, text); f.input.classList.add('invalid'); } else unplaced.push(`${path}: ${text}`);
    }
    const first = document.querySelector('#settings-form .invalid');
    if (first) first.scrollIntoView({ block: 'center' });
    return unplaced;
  }

  async function load() {
    try {
      render(await api('/api/settings'));
      saveBtn.hidden = false;
      resetBtn.hidden = false;
    } catch (e) {
      fill(box, h('p', { class: 'error-text' }, errText(e)));
      saveBtn.hidden = true;
      resetBtn.hidden = true;
    }
  }

  const saveBtn = h('button', { class: 'primary', id: 'settings-save' }, t('common.save'));
  const resetBtn = h('button', { id: 'settings-reset', onclick: () => { fill(msg); load(); } }, t('common.reset'));
  saveBtn.addEventListener('click', async () => {
    if (!original) return;
    fill(msg);
    for (const f of inputs.values()) { fill(f.error); f.input.classList.remove('invalid'); }
    const { out, bad, count } = changes();
    if (Object.keys(bad).length) { showErrors(bad); fill(msg, h('div', { class: 'notice err' }, t('set.fix_fields'))); return; }
    if (count === 0) { fill(msg, h('div', { class: 'notice info' }, t('set.nothing_changed'))); return; }
    saveBtn.disabled = true;
    try {
      const r = await api('/api/settings', { method: 'PUT', body: out });
      fill(msg, h('div', { class: 'notice ok', id: 'settings-saved' }, r.applied === 'restart' ? t('set.saved_restart') : t('set.saved_live')));
      // The daemon applies the change by restarting its pipeline and API in-process.
      if (r.changed?.length) await afterRestart();
      await load();
    } catch (e) {
      if (e.status === 422 && e.body?.fields) {
        const rest = showErrors(e.body.fields);
        fill(msg, h('div', { class: 'notice err', id: 'settings-invalid' }, t('set.invalid'), rest.length ? h('div', null, rest.join('; ')) : null));
      } else fill(msg, h('div', { class: 'notice err' }, errText(e)));
    } finally { saveBtn.disabled = false; }
  });
  load();
  return card(t('set.settings'), h('div', null, msg, box, h('div', { class: 'row', style: { marginTop: '1rem' } }, saveBtn, resetBtn, h('span', { class: 'spacer' }), fileNote)), {
    cls: 'span-12', id: 'card-settings',
  });
}

export default {
  render(root) {
    fill(root, h('h1', null, t('nav.settings')), h('div', { class: 'grid' }, sourcesCard(), settingsCard()));
    return () => document.querySelectorAll('#source-dialog').forEach((d) => d.remove());
  },
};
