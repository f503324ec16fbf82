// GET a JSON document from the service with a deadline, for the routes LogClient does not cover (receipts,
// models). Global fetch only; every failure is a VerifierError SERVER_ERROR naming the route.
import { VerifierError } from './errors';
import { networkReason, parseHttpUrl, serverMessage } from './log-client';
import { describe } from './server-data';

export interface FetchJsonOptions {
  /** Per request, body included; 30 s unless given. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** An API key sent as `Authorization: Bearer <key>` (routes with a role). */
  apiKey?: string;
}

/** A JSON answer, or `null` when the service answered 404 and `notFoundIsNull` is set. */
export async function fetchJson(apiUrl: string, path: string, route: string, options: FetchJsonOptions & { notFoundIsNull?: boolean } = {}): Promise<unknown> {
  const base = parseHttpUrl(apiUrl, 'API URL');
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const url = new URL(path, base);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const fail = (message: string, status?: number, cause?: unknown) =>
    new VerifierError('SERVER_ERROR', `${route} at ${url.origin}: ${message}`, { url: url.toString(), status, cause });
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    let text: string;
    let response: Response;
    try {
      response = await fetchImpl(url, { headers, signal: controller.signal });
      text = await response.text();
    } catch (err) {
      if (controller.signal.aborted) throw fail(`no answer within ${timeoutMs} ms`, undefined, err);
      throw fail(`cannot reach the service (${networkReason(err)})`, undefined, err);
    }
    if (response.status === 404 && options.notFoundIsNull) return null;
    if (!response.ok) throw fail(`answered HTTP ${response.status}${serverMessage(text)}`, response.status);
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw fail(`answered something that is not JSON: ${describe(text)}`, response.status, err);
    }
  } finally {
    clearTimeout(timer);
  }
}
