import Fastify from 'fastify';
import { createTether, TetherError } from 'tether';
import { tetherErrorHandler, tetherPlugin } from 'tether/fastify';
import { defineFlow, sessionFlows } from 'tether/flow';

const invalid = (message: string) => new TetherError('VALIDATION_FAILED', message, 400);
const SEATS: Record<string, number> = { starter: 5, team: 50 }; // the most seats each plan allows

// Kept in the session: the visitor has no account until the flow completes.
const signup = defineFlow({ name: 'signup', idleTimeoutMs: 30 * 60_000, steps: [
  { name: 'plan', parse: (input) => {
    const plan = (input as { plan?: unknown } | null)?.plan;
    if (typeof plan !== 'string' || !Object.hasOwn(SEATS, plan)) throw invalid('plan must be starter or team');
    return plan;
  } },
  { name: 'seats', parse: (input, earlier) => {
    const seats = (input as { seats?: unknown } | null)?.seats;
    const plan = earlier.plan as string;
    const max = SEATS[plan]!;
    if (typeof seats !== 'number' || !Number.isInteger(seats) || seats < 1 || seats > max) throw invalid(`the ${plan} plan takes 1 to ${max} seats`);
    return seats;
  } },
  { name: 'confirm' }, // no input: the flow is completed from here
] }).using(sessionFlows);

const app = Fastify();
await app.register(tetherPlugin, { tether: createTether({ secrets: process.env.TETHER_SECRET?.split(',') }) });
app.setErrorHandler(tetherErrorHandler);
app.get('/api/flow', async (req) => ({ ...(await signup.view(req.session)), csrfToken: req.session.csrfToken }));
app.post('/api/flow/back', async (req) => signup.back(req.session));
app.post('/api/flow/complete', async (req, reply) => {
  // A real app creates the account here, keyed by runId so that a repeat finds the first one.
  const account = await signup.complete(req.session, ({ runId, data }) => ({ runId, ...data }));
  return reply.code(201).send(account);
});
app.post<{ Params: { step: string } }>('/api/flow/:step', async (req) => signup.submit(req.session, req.params.step, req.body));
await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
