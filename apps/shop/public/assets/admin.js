// Admin: live sessions per node, engine and store figures, ending a user's sessions. Refreshes itself.
import { api, ApiError, describeError, el, requireLogin, toast } from './app.js';

const REFRESH_MS = 5000;

function figures(obj) {
  if (!obj) return el('p', { class: 'muted' }, 'Not reported by this store.');
  return el('table', {}, el('tbody', {}, ...Object.entries(obj).map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))))));
}

function endSessionsForm() {
  const input = el('input', { id: 'end-user', name: 'username', required: true, autocomplete: 'off', maxlength: '32' });
  const result = el('p', { role: 'status', class: 'muted' });
  return el('section', { class: 'panel' },
    el('h2', {}, 'End a user\'s sessions'),
    el('form', {
      class: 'form', onsubmit: async (e) => {
        e.preventDefault();
        try {
          const r = await api('POST', `/api/admin/users/${encodeURIComponent(input.value.trim())}/sessions/end`);
          result.textContent = `Ended ${r.ended} session${r.ended === 1 ? '' : 's'} of ${r.username}.`;
        } catch (err) {
          result.textContent = describeError(err);
        }
      },
    }, el('label', {}, 'Username', input), el('div', {}, el('button', { type: 'submit', class: 'danger' }, 'End sessions'))),
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
  const form = endSessionsForm();
  document.getElementById('admin').replaceChildren(live);
  if (!(await refresh(live, form))) return;
  const timer = setInterval(() => {
    if (!document.hidden) refresh(live, form).catch(() => clearInterval(timer));
  }, REFRESH_MS);
}

main().catch((err) => toast(describeError(err)));
