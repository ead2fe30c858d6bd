import express from 'express';
import { createTether } from 'tether';
import { sessions, sessionOf, sessionErrors } from 'tether/express';

type Data = { notes: string[] };
const tether = createTether<Data>({ secrets: process.env.TETHER_SECRET?.split(','), csrf: { forms: true } });

// No template engine here, so everything written into the page is escaped by hand.
const html = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const app = express();
// Before sessions(): it reads a form post's token from req.body's _csrf field.
app.use(express.urlencoded({ extended: false }));
app.use(sessions(tether));
app.get('/', (req, res) => {
  const s = sessionOf<Data>(req);
  const notes = (s.data.notes ?? []).map((n) => `<li>${html(n)}</li>`).join('');
  res.type('html').send(`<!doctype html><title>Notes</title><ul>${notes}</ul>
<form method="post" action="/notes">
  <input type="hidden" name="_csrf" value="${html(s.csrfToken)}">
  <label>Note <input name="note" maxlength="200" required></label> <button>Add</button>
</form>`);
});
app.post('/notes', async (req, res) => {
  // No body when no parser here read it (JSON with the token header); an array when the field came twice.
  const field = (req.body as { note?: unknown } | undefined)?.note;
  const note = typeof field === 'string' ? field.trim().slice(0, 200) : '';
  // The last 50 only: a session is no place for an unbounded list.
  if (note) await sessionOf<Data>(req).update((d) => { d.notes = [...(d.notes ?? []), note].slice(-50); });
  // 303: the browser follows with a GET, so reloading the page does not post the note again.
  res.redirect(303, '/');
});
app.use(sessionErrors());
app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
