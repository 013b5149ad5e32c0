// End-to-end tests of the web interface in headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core; no browser download). Started by tests/ui.rs against a real daemon that
// plays the demo clip as its file source, with a token, a 5 s window and tests/data/video as
// its media folder.
//
// Environment: CAV_BASE (http://127.0.0.1:PORT), CAV_TOKEN, CAV_MEDIA (a file in the media
// folder), CAV_OUT (screenshots and downloads go there), CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

// The labels, from the page's own module (loaded as a data: URL: web/ is not a Node package).
const i18nSource = readFileSync(new URL('../../web/i18n.js', import.meta.url), 'utf8');
const { DICTS } = await import(`data:text/javascript,${encodeURIComponent(i18nSource)}`);

const BASE = process.env.CAV_BASE;
const TOKEN = process.env.CAV_TOKEN;
const MEDIA = process.env.CAV_MEDIA;
const OUT = process.env.CAV_OUT;
const SHOTS = join(OUT, 'ui-screenshots');
const DOWNLOADS = join(OUT, 'downloads');
mkdirSync(SHOTS, { recursive: true });
mkdirSync(DOWNLOADS, { recursive: true });

const PAGES = ['dashboard', 'statistics', 'history', 'testing', 'analyses', 'settings'];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const problems = []; // console errors and uncaught exceptions, with the page they came from
let step = 'start';
// Console errors a step provokes on purpose (Chromium logs every non-2xx fetch as an error):
// the 422 of an invalid setting, and the refused connections while the daemon restarts its API
// after a saved setting. Anything else fails the test.
let expected = [];
const log = (...a) => console.log(`[ui ${new Date().toISOString().slice(11, 19)}]`, ...a);

async function check(name, fn, allowed = []) {
  step = name;
  expected = allowed;
  const t0 = Date.now();
  await fn();
  expected = [];
  log(`ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

function watch(page) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = `${m.text()} (${m.location().url})`;
    if (expected.some((re) => re.test(text))) return;
    problems.push(`[${step}] console: ${text} on ${page.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`[${step}] page error: ${e.message} @ ${page.url()}`));
}

async function waitText(page, selector, predicate, timeout, what) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    last = await page.locator(selector).first().textContent({ timeout: 2000 }).catch(() => null);
    if (last !== null && predicate(last)) return last;
    await page.waitForTimeout(250);
  }
  throw new Error(`${what}: ${selector} still reads ${JSON.stringify(last)} after ${timeout} ms`);
}

async function noHorizontalScroll(page, name) {
  const { sw, cw } = await page.evaluate(() => ({ sw: document.documentElement.scrollWidth, cw: document.documentElement.clientWidth }));
  assert.ok(sw <= cw + 1, `${name}: the page is ${sw} px wide in a ${cw} px viewport`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true, locale: 'en-GB' });
  const page = await context.newPage();
  watch(page);

  await check('i18n: French has every English label', async () => {
    const missing = Object.keys(DICTS.en).filter((k) => !(k in DICTS.fr));
    const extra = Object.keys(DICTS.fr).filter((k) => !(k in DICTS.en));
    assert.deepEqual(missing, [], 'labels missing in French');
    assert.deepEqual(extra, [], 'labels only in French');
  });

  await check('token: the API and the pages need it', async () => {
    const api = await fetch(`${BASE}/api/status`);
    assert.equal(api.status, 401);
    const asset = await fetch(`${BASE}/assets/app.js`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get('content-type'), /javascript/);
    assert.ok(asset.headers.get('etag'));
    const again = await fetch(`${BASE}/assets/app.js`, { headers: { 'If-None-Match': asset.headers.get('etag') } });
    assert.equal(again.status, 304);
    await page.goto(`${BASE}/history`);
    assert.match(page.url(), /\/login\?next=%2Fhistory$/);
    await page.screenshot({ path: join(SHOTS, 'desktop-login.png') });
    await page.fill('#token', 'not-the-token');
    await page.click('#login-submit');
    await page.waitForURL(/\/login\?error=1/);
    assert.ok(await page.isVisible('#login-error'), 'the wrong token is said to be wrong');
    await page.fill('#token', TOKEN);
    await page.click('#login-submit');
    // Committed is enough: the page shows itself below (its load event may wait on the network).
    await page.waitForURL(`${BASE}/history`, { waitUntil: 'commit' });
    await page.waitForSelector('#page-history');
  });

  await check('dashboard: activity and sound labels update live', async () => {
    await page.click('#nav-dashboard');
    await page.waitForSelector('#page-dashboard');
    await page.evaluate(() => { window.__sameDocument = true; });
    // Labels: the demo clip's sound streams in several times a second.
    await page.waitForFunction(() => Number(document.querySelector('#labels')?.dataset.updates) > 0, null, { timeout: 30000 });
    const first = await page.locator('#labels').textContent();
    await waitText(page, '#labels', (t) => t !== first, 20000, 'the sound labels never changed');
    // Activity: a window closes every 5 s and the page shows it without reloading.
    await page.waitForSelector('#activity-name', { timeout: 60000 });
    const end1 = await page.getAttribute('#activity-window', 'data-end');
    await page.waitForFunction((e) => {
      const w = document.querySelector('#activity-window');
      return w && w.dataset.end !== e;
    }, end1, { timeout: 30000 });
    const name = await page.getAttribute('#activity-name', 'data-activity');
    assert.ok(DICTS.en[`act.${name}`], `a known activity: ${name}`);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no page reload');
    assert.equal(await page.locator('#live').getAttribute('class'), 'live-dot on');
    // The other live parts have content (or say they have none).
    await page.waitForSelector('#sources tr[data-source="file"]');
    await page.waitForSelector('#timeline svg, #timeline .empty');
    await page.waitForSelector('#outbox .tiles');
  });

  await check('every page loads (direct URLs and navigation)', async () => {
    for (const p of PAGES) {
      await page.goto(`${BASE}/${p}`);
      await page.waitForSelector(`#page-${p}`);
      await page.waitForTimeout(1200);
      assert.equal(await page.locator('#nav a.active').getAttribute('id'), `nav-${p}`);
    }
    for (const p of PAGES) {
      await page.click(`#nav-${p}`);
      await page.waitForSelector(`#page-${p}`);
      await page.waitForTimeout(600);
    }
    const missing = await fetch(`${BASE}/no-such-page`, { headers: { Cookie: `cav_token=${TOKEN}` } });
    assert.equal(missing.status, 404);
  });

  await check('statistics and history show the stored windows', async () => {
    await page.goto(`${BASE}/statistics`);
    await page.waitForSelector('#stats-classes');
    await page.waitForSelector('#stats-hourly svg');
    await page.goto(`${BASE}/history?kind=activities`);
    await page.waitForSelector('#hist-list tr.clickable');
    await page.locator('#hist-list tr.clickable').first().click();
    await page.waitForSelector('#hist-detail[open] .kv');
    await page.click('#hist-detail-close');
    await page.click('#hist-tab-spans');
    await page.waitForSelector('#hist-list tr.clickable');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('button[data-export="csv"]')]);
    const file = join(DOWNLOADS, 'spans.csv');
    await dl.saveAs(file);
    assert.match(readFileSync(file, 'utf8'), /^start,end,/);
  });

  await check('model testing: live picture, classify now, analyse the live frame', async () => {
    await page.goto(`${BASE}/testing`);
    await page.waitForSelector('#test-features .kv', { timeout: 20000 });
    // Right after a window closes the next one has no second yet: the daemon answers 409 and
    // the page says so; a moment later there is something to classify.
    for (let i = 0; ; i++) {
      await page.click('#classify-now');
      await page.waitForSelector('#classify-result .act-badge, #classify-result .notice', { timeout: 20000 });
      if (await page.locator('#classify-result .act-badge').count() === 1) break;
      assert.ok(i < 5, `classify now keeps failing: ${await page.locator('#classify-result').textContent()}`);
      await page.waitForTimeout(1500);
    }
    await page.click('#analyze-live-frame');
    await page.waitForSelector('#live-frame-result #frame-result', { timeout: 30000 });
    await page.waitForSelector('#test-labels .bar-row, #test-labels .empty');
    await page.screenshot({ path: join(SHOTS, 'desktop-testing-results.png'), fullPage: true });
  }, [/status of 409 .*\/api\/classify-now\)$/]);

  await check('model testing: the media file plays, a frame is analysed, the whole video is analysed from the page', async () => {
    await page.goto(`${BASE}/testing?tab=video`);
    await page.waitForSelector('#video-file');
    await page.selectOption('#video-file', MEDIA);
    await page.waitForFunction(() => {
      const v = document.querySelector('#video-player');
      return v && v.readyState >= 1 && v.duration > 14 && v.duration < 16;
    }, null, { timeout: 20000 });
    await page.evaluate(() => { document.querySelector('#video-player').currentTime = 3; });
    await page.waitForFunction(() => Math.abs(document.querySelector('#video-player').currentTime - 3) < 0.1);
    await page.click('#analyse-frame');
    await page.waitForSelector('#video-frame-result #frame-result img.snapshot', { timeout: 30000 });
    await page.screenshot({ path: join(SHOTS, 'desktop-testing-video.png'), fullPage: true });
    await page.fill('#video-interval', '1');
    await page.click('#analyse-whole');
    await page.waitForURL(/\/analyses\?id=/);
    await waitText(page, '#an-percent', (t) => t.trim() === '100 %', 180000, 'the analysis did not reach 100 %');
    await page.waitForSelector('#an-main');
    await page.waitForSelector('#an-timeline svg');
    const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#an-export-csv')]);
    const csvFile = join(DOWNLOADS, 'analysis.csv');
    await csv.saveAs(csvFile);
    const rows = readFileSync(csvFile, 'utf8').trim().split('\n');
    assert.match(rows[0], /^t_s,activity,confidence/);
    assert.equal(rows.length - 1, 15, 'one sample a second of a 15 s video');
    const [json] = await Promise.all([page.waitForEvent('download'), page.click('#an-export-json')]);
    const jsonFile = join(DOWNLOADS, 'analysis.json');
    await json.saveAs(jsonFile);
    const doc = JSON.parse(readFileSync(jsonFile, 'utf8'));
    assert.equal(doc.analysis.status, 'done');
    assert.equal(doc.samples.length, 15);
  });

  await check('settings: an invalid value shows its error and changes nothing', async () => {
    await page.goto(`${BASE}/settings`);
    await page.waitForSelector('#set-classifier-window_s');
    const before = await (await page.request.get(`${BASE}/api/settings`)).json();
    await page.fill('#set-classifier-window_s', '0');
    await page.click('#settings-save');
    await page.waitForSelector('#settings-invalid');
    const err = await page.locator('.field-error[data-for="classifier.window_s"]').textContent();
    assert.ok(err.trim().length > 0, 'the field shows its error');
    assert.ok(await page.locator('#set-classifier-window_s.invalid').count() === 1);
    const after = await (await page.request.get(`${BASE}/api/settings`)).json();
    assert.deepEqual(after, before, 'nothing changed');
  }, [/status of 422 .*\/api\/settings\)$/]);

  await check('settings: a valid change is saved and shown after a reload', async () => {
    await page.goto(`${BASE}/settings`);
    await page.waitForSelector('#set-external_service-timeout_s');
    const old = Number(await page.inputValue('#set-external_service-timeout_s'));
    const want = old === 7 ? 8 : 7;
    await page.fill('#set-external_service-timeout_s', String(want));
    await page.click('#settings-save');
    await page.waitForSelector('#settings-saved', { timeout: 20000 });
    // The daemon reloads its configuration in-process: the live stream drops while the API
    // restarts, and the page reconnects by itself.
    await page.waitForFunction(() => document.querySelector('#live').classList.contains('off'), null, { timeout: 15000, polling: 50 });
    await page.waitForFunction(() => document.querySelector('#live').classList.contains('on'), null, { timeout: 30000 });
    await page.reload();
    await page.waitForSelector('#set-external_service-timeout_s');
    assert.equal(Number(await page.inputValue('#set-external_service-timeout_s')), want);
    const s = await (await page.request.get(`${BASE}/api/settings`)).json();
    assert.equal(s.settings.external_service.timeout_s, want);
  }, [/net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|CONNECTION_CLOSED)/]);

  await check('language: French everywhere, kept after a reload', async () => {
    await page.goto(`${BASE}/dashboard`);
    await page.selectOption('#lang', 'fr');
    await waitText(page, '#nav-dashboard', (t) => t === 'Tableau de bord', 5000, 'no French');
    await page.reload();
    await waitText(page, '#nav-statistics', (t) => t === 'Statistiques', 5000, 'French not kept');
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(SHOTS, 'desktop-dashboard-fr.png'), fullPage: true });
    await page.selectOption('#lang', 'en');
    await waitText(page, '#nav-dashboard', (t) => t === 'Dashboard', 5000, 'no English');
  });

  await check('screenshots at 1280×800 and 390×844', async () => {
    for (const [name, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      await page.setViewportSize(size);
      for (const p of PAGES) {
        await page.goto(`${BASE}/${p}${p === 'analyses' ? '' : ''}`);
        await page.waitForSelector(`#page-${p}`);
        await page.waitForTimeout(2000);
        if (p === 'analyses') {
          await page.locator('#an-list tr.clickable').first().click();
          await page.waitForSelector('#an-timeline svg');
        }
        if (p === 'testing') {
          // With results: the classification so far and the analysed live frame.
          for (let i = 0; ; i++) {
            await page.click('#classify-now');
            await page.waitForSelector('#classify-result .act-badge, #classify-result .notice', { timeout: 20000 });
            if (await page.locator('#classify-result .act-badge').count() === 1) break;
            assert.ok(i < 5, 'classify now keeps failing');
            await page.waitForTimeout(1500);
          }
          await page.click('#analyze-live-frame');
          await page.waitForSelector('#live-frame-result #frame-result', { timeout: 30000 });
        }
        await noHorizontalScroll(page, `${name} ${p}`);
        await page.screenshot({ path: join(SHOTS, `${name}-${p}.png`), fullPage: true });
        if (p === 'history') {
          // A stored window in detail: scores, cues and features.
          await page.goto(`${BASE}/history?kind=activities`);
          await page.locator('#hist-list tr.clickable').first().click();
          await page.waitForSelector('#hist-detail[open] .kv');
          await noHorizontalScroll(page, `${name} history detail`);
          await page.screenshot({ path: join(SHOTS, `${name}-history-detail.png`) });
          await page.click('#hist-detail-close');
        }
      }
    }
    await page.setViewportSize(PHONE);
    await page.context().clearCookies();
    await page.goto(`${BASE}/dashboard`);
    await page.waitForURL(/\/login/);
    await page.screenshot({ path: join(SHOTS, 'phone-login.png') });
  }, [/status of 409 .*\/api\/classify-now\)$/]);

  step = 'end';
  assert.deepEqual(problems, [], 'console errors or uncaught exceptions');
  log(`screenshots in ${SHOTS}`);
} catch (e) {
  failed = true;
  console.error(`[ui] FAILED at "${step}": ${e.stack || e}`);
  console.error(`[ui] pages open: ${browser.contexts().flatMap((c) => c.pages()).map((p) => p.url()).join(', ')}`);
  if (problems.length) console.error(`[ui] console errors:\n  ${problems.join('\n  ')}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
