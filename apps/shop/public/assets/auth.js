// Log in and register (one page, two modes). Success regenerates the session; the page moves on to ?next=.
import { api, ApiError, loadSession, safeNext, setSession, toast, describeError } from './app.js';

const register = location.pathname === '/register';

function setup() {
  const title = document.getElementById('auth-title');
  const submit = document.getElementById('auth-submit');
  const switcher = document.getElementById('auth-switch');
  const next = new URLSearchParams(location.search).get('next');
  const suffix = next ? '?next=' + encodeURIComponent(next) : '';
  if (register) {
    document.title = 'Register · Tether Supply Co.';
    title.textContent = 'Create an account';
    document.getElementById('auth-intro').textContent = 'Save your cart, check out, and pick up where you left off on any device.';
    submit.textContent = 'Create account';
    switcher.textContent = 'I already have an account';
    switcher.href = '/login' + suffix;
    document.getElementById('password').autocomplete = 'new-password';
  } else {
    switcher.href = '/register' + suffix;
  }
}

async function onSubmit(e) {
  e.preventDefault();
  const error = document.getElementById('auth-error');
  const submit = document.getElementById('auth-submit');
  const username = document.getElementById('username').value.trim();
  const password = document.getElementById('password').value;
  const remember = document.getElementById('remember').checked;
  error.textContent = '';
  if (!/^[A-Za-z0-9_.-]{3,32}$/.test(username)) {
    error.textContent = 'The username is 3 to 32 letters, digits, _ . or -';
    document.getElementById('username').focus();
    return;
  }
  if (password.length < 8) {
    error.textContent = 'The password has at least 8 characters';
    document.getElementById('password').focus();
    return;
  }
  submit.disabled = true;
  try {
    const view = await api('POST', register ? '/api/auth/register' : '/api/auth/login', { username, password, remember });
    setSession(view);
    location.assign(safeNext('/'));
  } catch (err) {
    error.textContent = err instanceof ApiError && err.code === 'INVALID_CREDENTIALS' ? 'Wrong username or password.'
      : err instanceof ApiError && err.code === 'ACCOUNT_DISABLED' ? 'This account is disabled. Contact the shop to have it enabled.'
        // The form needs a session first, and new sessions are limited too: only the registrations' own
        // limit is about accounts.
        : register && err instanceof ApiError && err.code === 'RATE_LIMITED' && err.reason === 'registrations' ? 'Too many accounts were created from your network in the last hour. Try again later, or log in if you have an account already.'
          : err instanceof ApiError && err.code === 'RATE_LIMITED' && err.reason === 'new_sessions' ? 'Too many visits from your network right now. Try again in a minute.'
            : describeError(err);
    submit.disabled = false;
  }
}

setup();
document.getElementById('auth-form').addEventListener('submit', onSubmit);
// The form posts with the session's CSRF token, so make sure there is one.
loadSession({ create: true }).catch((err) => toast(describeError(err)));
