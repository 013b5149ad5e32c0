// The application shell: navigation between pages (History API, no reload), the language
// switch, and the live connection indicator.
import { applyStatic, setLang, lang, t, onLang } from './i18n.js';
import { live } from './api.js';
import { h, fill } from './ui.js';
import dashboard from './pages/dashboard.js';
import statistics from './pages/statistics.js';
import historyPage from './pages/history.js';
import testing from './pages/testing.js';
import analyses from './pages/analyses.js';
import settings from './pages/settings.js';

const PAGES = { dashboard, statistics, history: historyPage, testing, analyses, settings };
const ORDER = ['dashboard', 'statistics', 'history', 'testing', 'analyses', 'settings'];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let cleanup = null;

function current() {
  const name = location.pathname.replace(/^\/+|\/+$/g, '');
  return PAGES[name] ? name : 'dashboard';
}

function renderNav() {
  const cur = current();
  fill(nav, ORDER.map((p) => h('a', {
    href: `/${p}`, 'data-nav': true, class: p === cur ? 'active' : '', id: `nav-${p}`,
  }, t(`nav.${p}`))));
}

function render() {
  if (cleanup) { try { cleanup(); } catch { /* the old page is gone anyway */ } }
  cleanup = null;
  const name = current();
  document.title = `${t(`nav.${name}`)} · classify-audio-video`;
  renderNav();
  main.replaceChildren();
  const root = h('div', { class: 'page', id: `page-${name}` });
  main.appendChild(root);
  cleanup = PAGES[name].render(root, new URLSearchParams(location.search)) || null;
}

/** Goes to a page of the application without reloading. */
function go(path) {
  history.pushState(null, '', path);
  render();
  window.scrollTo(0, 0);
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-nav]');
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  go(a.getAttribute('href'));
});
window.addEventListener('popstate', render);
window.addEventListener('cav:navigate', (ev) => go(ev.detail));

const langSelect = document.getElementById('lang');
langSelect.value = lang();
langSelect.addEventListener('change', () => setLang(langSelect.value));
onLang(() => { applyStatic(document); render(); });

const dot = document.getElementById('live');
live.onState((s) => {
  dot.className = `live-dot ${s === 'on' ? 'on' : s === 'off' ? 'off' : ''}`;
  dot.dataset.i18n = `live.${s}`;
  dot.textContent = t(`live.${s}`);
});
live.start();

// The logout button only makes sense when a token is configured: then /login is a page (200);
// without one it redirects.
fetch('/login', { redirect: 'manual', cache: 'no-store' }).then((r) => {
  document.getElementById('logout-form').hidden = r.type === 'opaqueredirect' || !r.ok;
}).catch(() => {});

applyStatic(document);
if (location.pathname === '/') history.replaceState(null, '', '/dashboard' + location.search);
render();
