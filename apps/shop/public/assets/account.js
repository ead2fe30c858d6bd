// The account page: preferences, the password, the devices (sessions) signed in, logging out others or one
// of them, and deleting the account.
import { api, ApiError, askPassword, describeError, el, ending, loadFailed, logout, onChange, requireLogin, setPreferences, setSession, signedOut, signedOutPanel, state, toast } from './app.js';

function device(ua) {
  if (!ua) return 'Unknown device';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrome\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : ua.slice(0, 40);
  const os = /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Linux/.test(ua) ? 'Linux' : '';
  return os ? `${browser} on ${os}` : browser;
}

/** Ends sessions: the server asks for the password again when the login was long ago (REAUTH_REQUIRED). */
async function endSessions(path) {
  try {
    return await api('DELETE', path);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'REAUTH_REQUIRED')) throw err;
    const password = await askPassword('You signed in a while ago. Enter your password to log out other devices.');
    if (password === null) return null;
    return api('DELETE', path, { password });
  }
}

async function renderSessions(host) {
  const sessions = await api('GET', '/api/me/sessions');
  const others = sessions.filter((s) => !s.current).length;
  const rows = sessions.map((s) => el('tr', { 'data-testid': 'session-row' },
    el('td', {}, device(s.userAgent), ' ', s.current ? el('span', { class: 'tag' }, 'This device') : null,
      ' ', s.remembered ? el('span', { class: 'tag', title: 'Stays signed in after the browser closes' }, 'Kept signed in') : null),
    el('td', {}, new Date(s.createdAt).toLocaleString()),
    el('td', {}, new Date(s.lastSeenAt).toLocaleString()),
    el('td', { 'data-testid': 'session-expires' }, new Date(s.expiresAt).toLocaleString()),
    el('td', { 'data-testid': 'session-network' }, s.network ?? '–'),
    el('td', {}, s.current ? null : el('button', {
      type: 'button', class: 'danger', 'aria-label': `Log out ${device(s.userAgent)}`,
      onclick: async () => {
        try {
          if (await endSessions(`/api/me/sessions/${encodeURIComponent(s.id)}`)) toast('That device was logged out');
        } catch (err) {
          toast(describeError(err));
        }
        await renderSessions(host);
      },
    }, 'Log out'))));
  host.replaceChildren(
    el('h2', {}, 'Where you are logged in'),
    el('p', { class: 'muted', 'data-testid': 'session-count' }, `${sessions.length} active session${sessions.length === 1 ? '' : 's'}`),
    // Six columns do not fit a phone's width: the table scrolls sideways inside the panel, not the page.
    el('div', { class: 'table-scroll', 'data-testid': 'sessions-table', tabindex: '0', role: 'region', 'aria-label': 'Sessions' },
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Device'), el('th', {}, 'Signed in'), el('th', {}, 'Last active'), el('th', { title: 'When it signs out unless it is used before' }, 'Signs out if idle'), el('th', {}, 'Network'), el('th', {}, el('span', { class: 'visually-hidden' }, 'Actions')))), el('tbody', {}, ...rows))),
    el('div', { class: 'actions' },
      el('button', {
        type: 'button', class: 'primary', disabled: others === 0, 'data-testid': 'logout-others',
        onclick: async () => {
          try {
            const r = await endSessions('/api/me/sessions/others');
            if (r) toast(`Logged out ${r.ended} other session${r.ended === 1 ? '' : 's'}`);
          } catch (err) {
            toast(describeError(err));
          }
          await renderSessions(host);
        },
      }, 'Log out other sessions'),
      el('button', { type: 'button', onclick: () => logout() }, 'Log out here')));
}

function passwordPanel(sessions) {
  const current = el('input', { id: 'current-password', type: 'password', autocomplete: 'current-password', required: true, maxlength: '128' });
  const next = el('input', { id: 'new-password', type: 'password', autocomplete: 'new-password', required: true, minlength: '8', maxlength: '128' });
  const others = el('input', { id: 'logout-others-on-change', type: 'checkbox', checked: true });
  const error = el('p', { class: 'form-error', role: 'alert', id: 'password-error' });
  return el('section', { class: 'panel' },
    el('h2', {}, 'Change password'),
    el('form', {
      class: 'form', 'data-testid': 'password-form', onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = '';
        if ([...next.value].length < 8) {
          error.textContent = 'The new password has at least 8 characters';
          next.focus();
          return;
        }
        try {
          const view = await api('POST', '/api/me/password', { currentPassword: current.value, newPassword: next.value, logoutOtherSessions: others.checked });
          setSession(view);
          current.value = '';
          next.value = '';
          toast(view.endedSessions ? `Password changed; ${view.endedSessions} other session${view.endedSessions === 1 ? '' : 's'} logged out` : 'Password changed');
          await renderSessions(sessions);
        } catch (err) {
          error.textContent = err instanceof ApiError && err.code === 'INVALID_CREDENTIALS' ? 'The current password is wrong.' : describeError(err);
        }
      },
    },
    el('div', { class: 'row' }, el('label', {}, 'Current password', current), el('label', {}, 'New password', next)),
    el('label', { class: 'check' }, others, ' Log out my other sessions'),
    error,
    el('div', {}, el('button', { type: 'submit', class: 'primary' }, 'Change password'))));
}

function deletePanel() {
  const password = el('input', { id: 'delete-password', type: 'password', autocomplete: 'current-password', required: true, maxlength: '128' });
  const error = el('p', { class: 'form-error', role: 'alert', id: 'delete-error' });
  return el('section', { class: 'panel' },
    el('h2', {}, 'Delete account'),
    el('p', { class: 'muted' }, 'Deletes your account, your orders, your saved cart and preferences, and logs out every device. This cannot be undone.'),
    el('form', {
      class: 'form', 'data-testid': 'delete-form', onsubmit: async (e) => {
        e.preventDefault();
        error.textContent = '';
        try {
          await ending(() => api('DELETE', '/api/me', { password: password.value }));
          signedOut();
        } catch (err) {
          error.textContent = err instanceof ApiError && err.code === 'INVALID_CREDENTIALS' ? 'The password is wrong.' : describeError(err);
        }
      },
    },
    el('label', {}, 'Password', password),
    error,
    el('div', {}, el('button', { type: 'submit', class: 'danger' }, 'Delete my account'))));
}

function preferencesPanel() {
  const p = state.session.preferences;
  const theme = el('select', { id: 'pref-theme' }, ...['light', 'dark'].map((t) => el('option', { value: t, selected: t === p.theme }, t === 'light' ? 'Light' : 'Dark')));
  const currency = el('select', { id: 'pref-currency' }, ...['USD', 'EUR', 'GBP'].map((c) => el('option', { value: c, selected: c === p.currency }, c)));
  return el('form', {
    class: 'form', onsubmit: async (e) => {
      e.preventDefault();
      try {
        await setPreferences({ theme: theme.value, currency: currency.value });
        toast('Preferences saved to your account');
      } catch (err) {
        toast(describeError(err));
      }
    },
  }, el('div', { class: 'row' }, el('label', {}, 'Theme', theme), el('label', {}, 'Currency', currency)),
  el('div', {}, el('button', { type: 'submit', class: 'primary' }, 'Save preferences')));
}

async function main() {
  const s = await requireLogin();
  if (!s) return;
  const sessions = el('section', { class: 'panel', 'aria-live': 'polite' });
  document.getElementById('account').replaceChildren(
    el('section', { class: 'panel' }, el('h2', {}, s.user.username), el('p', { class: 'muted' }, 'Your cart, preferences and unfinished checkout are saved to your account and follow you to every device.'), preferencesPanel()),
    sessions,
    passwordPanel(sessions),
    s.user.username === 'admin' ? null : deletePanel());
  // The header's theme and currency controls change the same preferences; keep the form in step.
  onChange((view) => {
    if (!view) return;
    if (!(view.authenticated && view.user.username === s.user.username)) {
      // Signed out elsewhere: the account's sessions, preferences and forms are no longer this page's.
      document.getElementById('account').replaceChildren(signedOutPanel('your account'));
      return;
    }
    document.getElementById('pref-theme').value = view.preferences.theme;
    document.getElementById('pref-currency').value = view.preferences.currency;
  });
  await renderSessions(sessions);
  // Shown again (another tab, a device put aside): devices may have signed in or out meanwhile, and "Log
  // out other sessions" would stay disabled, or name sessions that ended, until a reload.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && sessions.isConnected && state.session?.authenticated) renderSessions(sessions).catch(() => {});
  });
}

main().catch((err) => loadFailed(document.getElementById('account'), err));
