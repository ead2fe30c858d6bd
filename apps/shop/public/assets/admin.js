// Admin: live sessions per node, engine and store figures, and a user's status: ending their sessions,
// disabling or enabling the account. Refreshes itself.
import { api, ApiError, describeError, el, requireLogin, toast } from './app.js';

const REFRESH_MS = 5000;

function figures(obj) {
  if (!obj) return el('p', { class: 'muted' }, 'Not reported by this store.');
  return el('table', {}, el('tbody', {}, ...Object.entries(obj).map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))))));
}

/** A user by name: their status and sessions, and the admin's actions on them (end sessions, disable, enable). */
function userPanel() {
  const input = el('input', { id: 'end-user', name: 'username', required: true, autocomplete: 'off', maxlength: '32' });
  const details = el('div', { class: 'user-details', 'data-testid': 'user-details' });
  const result = el('p', { role: 'status', class: 'muted', 'data-testid': 'user-result' });
  const path = (suffix = '') => `/api/admin/users/${encodeURIComponent(input.value.trim())}${suffix}`;

  async function show() {
    const u = await api('GET', path());
    const act = (label, suffix, message, cls = 'danger') => el('button', {
      type: 'button', class: cls, onclick: async () => {
        try {
          result.textContent = message(await api('POST', path(suffix)));
          await show();
        } catch (err) {
          result.textContent = describeError(err);
        }
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

  return el('section', { class: 'panel' },
    el('h2', {}, 'Manage a user'),
    el('form', {
      class: 'form', onsubmit: async (e) => {
        e.preventDefault();
        result.textContent = '';
        try {
          await show();
        } catch (err) {
          details.replaceChildren();
          result.textContent = describeError(err);
        }
      },
    }, el('label', {}, 'Username', input), el('div', {}, el('button', { type: 'submit', class: 'primary' }, 'Look up'))),
    details,
    result);
}

async function refresh(live, form) {
  let o;
  try {
    o = await api('GET', '/api/admin/overview');
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      document.getElementById('admin').replaceChildren(el('div', { class: 'panel empty' }, el('p', {}, 'This page is for the admin account.')));
      return false;
    }
    throw err;
  }
  live.replaceChildren(
    el('section', { class: 'panel' }, el('h2', {}, 'Live sessions per node'),
      el('table', {}, el('thead', {}, el('tr', {}, ...['Node', 'PID', 'Live sessions', 'Created', 'Regenerated', 'Destroyed', 'Expired', 'CAS conflicts', 'Uptime'].map((h) => el('th', {}, h)))),
        el('tbody', {}, ...o.nodes.map((n) => el('tr', { 'data-testid': 'node-row' },
          el('td', {}, n.node), el('td', {}, String(n.pid)), el('td', { 'data-testid': 'live-sessions' }, String(n.activeSessions)),
          el('td', {}, String(n.engine.created)), el('td', {}, String(n.engine.regenerated)), el('td', {}, String(n.engine.destroyed)),
          el('td', {}, String(n.engine.expired)), el('td', {}, String(n.engine.conflicts)), el('td', {}, `${n.uptimeSeconds} s`)))))),
    el('section', { class: 'panel' }, el('h2', {}, `Store: ${o.store.name}`),
      el('p', {}, o.store.records === null ? 'Record count not reported.' : `${o.store.records} records (sessions and user contexts).`),
      figures(o.store.stats)));
  if (!form.isConnected) document.getElementById('admin').append(form);
  return true;
}

async function main() {
  if (!(await requireLogin())) return;
  const live = el('div', { class: 'stack' });
  const form = userPanel();
  document.getElementById('admin').replaceChildren(live);
  if (!(await refresh(live, form))) return;
  const timer = setInterval(() => {
    if (!document.hidden) refresh(live, form).catch(() => clearInterval(timer));
  }, REFRESH_MS);
}

main().catch((err) => toast(describeError(err)));
