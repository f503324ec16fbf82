// GET a JSON document from the service with a deadline: LogClient's ledger routes and the routes it does not
// cover (receipts, models). Global fetch only; every failure is a VerifierError SERVER_ERROR naming the route
// and how it failed (unreachable, timeout, status, not JSON).
import { VerifierError } from './errors';
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
  const body = await requestJson(new URL(path, base), route, {
    timeoutMs: options.timeoutMs ?? 30_000,
    fetch: options.fetch ?? globalThis.fetch,
    apiKey: options.apiKey,
    notFoundOn: options.notFoundIsNull ? [404] : [],
  });
  return body === NOT_FOUND ? null : body;
}

/** What requestJson returns for a status in its `notFoundOn`. */
export const NOT_FOUND = Symbol('NOT_FOUND');

/** GETs `url` and parses its JSON, body included within `timeoutMs`; NOT_FOUND for a status in `notFoundOn`. */
export async function requestJson(
  url: URL,
  route: string,
  options: { timeoutMs: number; fetch: typeof fetch; apiKey?: string; notFoundOn?: number[] },
): Promise<unknown> {
  // Called unbound: a browser's fetch called as a method of another object throws "Illegal invocation".
  const { timeoutMs, fetch: fetchImpl } = options;
  const fail = (message: string, status?: number, cause?: unknown) =>
    new VerifierError('SERVER_ERROR', `${route} at ${url.origin}: ${message}`, { url: url.toString(), status, cause });
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.apiKey !== undefined) headers.authorization = `Bearer ${options.apiKey}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    let response: Response;
    try {
      response = await fetchImpl(url, { headers, signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) throw fail(`no answer within ${timeoutMs} ms`, undefined, err);
      throw fail(`cannot reach the service (${networkReason(err)})`, undefined, err);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (err) {
      if (controller.signal.aborted) throw fail(`the answer did not complete within ${timeoutMs} ms`, response.status, err);
      throw fail(`the answer broke off (${networkReason(err)})`, response.status, err);
    }
    if (options.notFoundOn?.includes(response.status)) return NOT_FOUND;
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

/** Parses an http(s) URL, or throws INVALID_ARGUMENT naming `what`. */
export function parseHttpUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new VerifierError('INVALID_ARGUMENT', `${what} ${describe(value)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new VerifierError('INVALID_ARGUMENT', `${what} ${describe(value)} is not an http(s) URL`);
  }
  return url;
}

/** `ECONNREFUSED` rather than undici's bare "fetch failed". */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (cause && typeof cause.code === 'string') return cause.code;
  if (cause && typeof cause.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** The `message` of the service's JSON error body, if it has one. */
function serverMessage(text: string): string {
  try {
    const message = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof message === 'string') return `: ${describe(message).slice(1, -1)}`;
  } catch {
    // not the service's error format: the status says enough
  }
  return '';
}
