// The login page: the token is posted to /login, which stores it in an HttpOnly cookie.
import { applyStatic, setLang, lang, onLang, t } from './i18n.js';

const q = new URLSearchParams(location.search);
document.getElementById('next').value = q.get('next') || '/';
const error = document.getElementById('login-error');
const sel = document.getElementById('lang');

function show() {
  applyStatic(document);
  document.title = `${t('login.submit')} · classify-audio-video`;
  const e = q.get('error');
  error.hidden = !e;
  error.textContent = e === '2' ? t('login.cookie') : e ? t('login.wrong') : '';
}

sel.value = lang();
sel.addEventListener('change', () => setLang(sel.value));
onLang(show);
show();
