// Admin: live sessions per node, engine and store figures, and a user's status: ending their sessions,
// disabling or enabling the account; ending every session. Refreshes itself.
import { api, ApiError, askPassword, describeError, el, loadSession, onChange, requireLogin, signedOut, signedOutPanel, toast } from './app.js';

const REFRESH_MS = 5000;

function figures(obj) {
  if (!obj) return el('p', { class: 'muted' }, 'Not reported by this store.');
  return el('table', {}, el('tbody', {}, ...Object.entries(obj).map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))))));
}

/**
 * A user by name: their status and sessions, and the admin's actions on them (end sessions, disable,
 * enable). `manage(name)` fills in the name and looks the user up; `changed` runs after each action.
 */
function userPanel(changed) {
  const input = el('input', { id: 'end-user', name: 'username', required: true, autocomplete: 'off', maxlength: '32' });
  const details = el('div', { class: 'user-details', 'data-testid': 'user-details' });
  const result = el('p', { role: 'status', class: 'muted', 'data-testid': 'user-result' });
  outcome = result;
  const path = (suffix = '') => `/api/admin/users/${encodeURIComponent(input.value.trim())}${suffix}`;

  async function show() {
    const u = await api('GET', path());
    const act = (label, suffix, message, cls = 'danger') => el('button', {
      type: 'button', class: cls, onclick: async () => {
        let done;
        try {
          done = message(await api('POST', path(suffix)));
        } catch (err) {
          result.textContent = describeError(err);
          return;
        }
        result.textContent = done;
        try {
          await show();
        } catch (err) {
          // The action was done: what failed is reading the user again. Ending the admin's own sessions
          // ends this one too, after which nothing here can be read.
          details.replaceChildren();
          result.textContent = err instanceof ApiError && err.code === 'AUTH_REQUIRED'
            ? `${done} That signed you out here too: log in again to go on.`
            : `${done} The user could not be loaded again: ${describeError(err)}`;
          return;
        }
        changed();
      },
    }, label);
    details.replaceChildren(
      el('table', {}, el('tbody', {},
        el('tr', {}, el('th', { scope: 'row' }, 'User'), el('td', {}, u.username)),
        el('tr', {}, el('th', { scope: 'row' }, 'Registered'), el('td', {}, new Date(u.createdAt).toLocaleString())),
        el('tr', {}, el('th', { scope: 'row' }, 'Status'), el('td', { 'data-testid': 'user-status' }, u.disabledAt ? `Disabled since ${new Date(u.disabledAt).toLocaleString()}` : 'Active')),
        el('tr', {}, el('th', { scope: 'row' }, 'Live sessions'), el('td', { 'data-testid': 'user-sessions' }, String(u.sessions))))),
      el('div', { class: 'actions' },
        act('End sessions', '/sessions/end', (r) => `Ended ${r.ended} session${r.ended === 1 ? '' : 's'} of ${r.username}.`),
        u.admin ? null : u.disabledAt
          ? act('Enable account', '/enable', (r) => `${r.username} can log in again.`, 'primary')
          : act('Disable account', '/disable', (r) => `Disabled ${r.username} and ended ${r.ended} session${r.ended === 1 ? '' : 's'}.`)));
  }

  async function lookUp() {
    result.textContent = '';
    try {
      await show();
    } catch (err) {
      details.replaceChildren();
      result.textContent = describeError(err);
    }
  }

  const panel = el('section', { class: 'panel', id: 'manage-user' },
    el('h2', {}, 'Manage a user'),
    el('form', {
      class: 'form', onsubmit: (e) => {
        e.preventDefault();
        return lookUp();
      },
    }, el('label', {}, 'Username', input), el('div', {}, el('button', { type: 'submit', class: 'primary' }, 'Look up'))),
    details,
    result);
  return {
    panel,
    manage(name) {
      input.value = name;
      panel.scrollIntoView({ block: 'start' });
      return lookUp();
    },
  };
}

/**
 * The users, by name, narrowed to a name prefix as the admin types; each can be managed below.
 * `list()` reads them again.
 */
function usersPanel(manage) {
  const search = el('input', { id: 'user-search', type: 'search', autocomplete: 'off', maxlength: '64' });
  const body = el('tbody', {});
  const note = el('p', { class: 'muted', role: 'status' });
  let asked = 0;
  async function list() {
    const mine = ++asked;
    try {
      const users = await api('GET', `/api/admin/users?prefix=${encodeURIComponent(search.value.trim())}&limit=50`);
      if (mine !== asked) return;
      body.replaceChildren(...users.map((u) => el('tr', { 'data-testid': 'user-row' },
        el('td', {}, el('button', { type: 'button', class: 'link', onclick: () => manage(u.username) }, u.username)),
        el('td', {}, new Date(u.createdAt).toLocaleString()),
        el('td', {}, u.admin ? 'Admin' : u.disabledAt ? 'Disabled' : 'Active'))));
      note.textContent = users.length === 50 ? 'Showing the first 50; type more of the name to narrow it.' : `${users.length} user${users.length === 1 ? '' : 's'}`;
    } catch (err) {
      note.textContent = describeError(err);
    }
  }
  search.addEventListener('input', () => void list());
  void list();
  const panel = el('section', { class: 'panel' },
    el('h2', {}, 'Users'),
    el('label', {}, 'Find by name', search),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'User'), el('th', {}, 'Registered'), el('th', {}, 'Status'))), body),
    note);
  return { panel, list };
}

/**
 * Ends every session of every user, the admin's own too (after a breach): always after the password,
 * since nothing undoes it. Saved carts stay with the accounts.
 */
function endAllPanel() {
  const result = el('p', { role: 'status', class: 'muted', 'data-testid': 'end-all-result' });
  const button = el('button', {
    type: 'button', class: 'danger', onclick: async () => {
      const password = await askPassword('Ending every session signs out every visitor, you included, and empties guests\' carts. Enter your password to go on.');
      if (password === null) return;
      try {
        const r = await api('POST', '/api/admin/sessions/end', { password });
        toast(`Ended ${r.ended} session${r.ended === 1 ? '' : 's'}. Log in again to go on.`);
        setTimeout(signedOut, 1500);
      } catch (err) {
        result.textContent = describeError(err);
      }
    },
  }, 'End every session');
  return el('section', { class: 'panel', id: 'end-all' },
    el('h2', {}, 'End every session'),
    el('p', {}, 'Signs out every visitor on every node at once, anonymous ones too. Accounts, orders and saved carts stay.'),
    el('div', { class: 'actions' }, button),
    result);
}

/** A failure in place of what could not be loaded: stale figures would pass for current ones. */
function failure(what, err) {
  return el('div', { class: 'panel', role: 'alert', 'data-testid': 'admin-error' },
    el('p', { class: 'form-error' }, `${what}: ${describeError(err)}`));
}

/** Set once the page is no longer the admin's (signed out, or signed in as someone else): it shows nothing more. */
let closed = false;
/**
 * What the last action on a user said: kept when the page closes, since ending the admin account's own
 * sessions signs this page out too, and its outcome (set once its answer comes) says so.
 */
let outcome = null;
/** The figures' refresh. */
let timer;

/**
 * The page is no longer the admin's: its figures, users and tools go, in their place what happened, and
 * it stops asking for figures.
 */
function close(signedIn) {
  if (closed) return;
  closed = true;
  clearInterval(timer);
  const panel = signedIn ? el('div', { class: 'panel empty' }, el('p', {}, 'This page is for the admin account.')) : signedOutPanel('the admin page');
  if (outcome?.isConnected) panel.append(outcome);
  document.getElementById('admin').replaceChildren(panel);
}

/** Shows the figures, or why they are missing (a store outage answers 503); false once the page is not the admin's. */
async function refresh(live, panels) {
  let o;
  try {
    o = await api('GET', '/api/admin/overview');
  } catch (err) {
    if (closed) return false;
    if (err instanceof ApiError && (err.status === 403 || err.code === 'AUTH_REQUIRED')) {
      // Signed out (or in as someone else) without this page being told: the header learns it too.
      close(err.status === 403);
      await loadSession().catch(() => null);
      return false;
    }
    live.replaceChildren(failure(`The figures could not be loaded (trying again every ${REFRESH_MS / 1000} s)`, err));
    return true;
  }
  if (closed) return false;
  live.replaceChildren(
    el('section', { class: 'panel' }, el('h2', {}, 'Live sessions per node'),
      el('table', {}, el('thead', {}, el('tr', {}, ...['Node', 'PID', 'Live sessions', 'Live sockets', 'Created', 'Regenerated', 'Destroyed', 'Expired', 'CAS conflicts', 'Uptime'].map((h) => el('th', {}, h)))),
        el('tbody', {}, ...o.nodes.map((n) => el('tr', { 'data-testid': 'node-row' },
          el('td', {}, n.node), el('td', {}, n.pid === null ? '—' : String(n.pid)), el('td', { 'data-testid': 'live-sessions' }, String(n.activeSessions)),
          el('td', { 'data-testid': 'live-sockets' }, String(n.engine.sockets ?? 0)), el('td', {}, String(n.engine.created)), el('td', {}, String(n.engine.regenerated)), el('td', {}, String(n.engine.destroyed)),
          el('td', {}, String(n.engine.expired)), el('td', {}, String(n.engine.conflicts)), el('td', {}, n.uptimeSeconds === null ? '—' : `${n.uptimeSeconds} s`)))))),
    el('section', { class: 'panel' }, el('h2', {}, `Store: ${o.store.name}`),
      el('p', { 'data-testid': 'store-sessions' }, o.store.sessions === null ? 'Session count not reported.'
        : `${o.store.sessions} sessions${o.store.cap === null ? '' : `, of at most ${o.store.cap}: past it, new visitors are asked to come back later`}.`),
      figures(o.store.stats)));
  if (!panels[0].isConnected) document.getElementById('admin').append(...panels);
  return true;
}

async function main() {
  const s = await requireLogin();
  if (!s) return;
  // Signed out from elsewhere (another tab, "log out other sessions", the idle timeout, every session
  // ended), or signed in there as another user: the figures and the tools are no longer this page's.
  onChange((view) => {
    if (view && !(view.authenticated && view.user.username === s.user.username)) close(view.authenticated);
  });
  const live = el('div', { class: 'stack' });
  const manager = userPanel(() => void users.list());
  const users = usersPanel((name) => manager.manage(name));
  const panels = [users.panel, manager.panel, endAllPanel()];
  document.getElementById('admin').replaceChildren(live);
  if (!(await refresh(live, panels))) return;
  timer = setInterval(() => {
    if (!document.hidden) {
      refresh(live, panels).then((more) => more || clearInterval(timer), () => clearInterval(timer));
    }
  }, REFRESH_MS);
}

main().catch((err) => document.getElementById('admin').replaceChildren(failure('The admin page could not be loaded; reload it to try again', err)));
