/** Request bodies for the tests' plain node:http apps. */
import type { IncomingMessage } from 'node:http';

/** The request's JSON body, or undefined when it is empty or not declared JSON. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text && /json/.test(req.headers['content-type'] ?? '') ? JSON.parse(text) : undefined;
}
