import { DemoError } from './errors';

/** What a request sends: a JSON value, or a stream of bytes with its content type. */
export type RequestBody = { json: unknown } | { stream: ReadableStream<Uint8Array>; contentType: string };

export interface ClientHooks {
  /** Ends every request in flight and refuses new ones (the demo is stopping). */
  signal?: AbortSignal;
  /** Called when the service does not answer: a better explanation (it exited), if there is one. */
  explainUnreachable?: () => Promise<DemoError | undefined>;
}

/**
 * A client of the service's HTTP API with one API key (or none, for public routes). A failed request is a
 * DemoError naming the method, the path, the status and the service's message; the key is never shown.
 */
export class ApiClient {
  constructor(readonly baseUrl: string, private readonly key?: string, private readonly hooks: ClientHooks = {}) {}

  withKey(key: string): ApiClient {
    return new ApiClient(this.baseUrl, key, this.hooks);
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, json: unknown): Promise<T> {
    return this.request<T>('POST', path, { json });
  }

  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path);
  }

  /** The status and parsed body of a GET, whatever the status (for routes where a 404 means "not yet"). */
  async probe<T>(path: string): Promise<{ status: number; body: T | undefined }> {
    const res = await this.send('GET', path);
    return { status: res.status, body: await readJson<T>(res) };
  }

  async request<T>(method: string, path: string, body?: RequestBody): Promise<T> {
    const res = await this.send(method, path, body);
    const parsed = await readJson<unknown>(res);
    if (res.status >= 300) throw new DemoError(`${method} ${path} failed: ${res.status} ${describeError(parsed, res.statusText)}`);
    return parsed as T;
  }

  private async send(method: string, path: string, body?: RequestBody): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.key !== undefined) headers.authorization = `Bearer ${this.key}`;
    const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: this.hooks.signal };
    if (body && 'json' in body) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body.json);
    } else if (body) {
      headers['content-type'] = body.contentType;
      init.body = body.stream;
      init.duplex = 'half'; // a streamed request body (Node's fetch requires saying so)
    }
    if (this.hooks.signal?.aborted) throw new DemoError(`${method} ${path}: interrupted`);
    try {
      return await fetch(`${this.baseUrl}${path}`, init);
    } catch (error) {
      if (this.hooks.signal?.aborted) throw new DemoError(`${method} ${path}: interrupted`);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw (
        (await this.hooks.explainUnreachable?.()) ??
        new DemoError(`${method} ${path} failed: the service did not answer (${cause?.code ?? cause?.message ?? (error as Error).message})`)
      );
    }
  }
}

async function readJson<T>(res: Response): Promise<T | undefined> {
  const text = await res.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return text as T;
  }
}

/** The service's error body is `{statusCode, error, message}`, message a string or a list of them. */
function describeError(body: unknown, fallback: string): string {
  if (body && typeof body === 'object' && 'message' in body) {
    const message = (body as { message: unknown }).message;
    return Array.isArray(message) ? message.join('; ') : String(message);
  }
  return typeof body === 'string' && body !== '' ? body.slice(0, 300) : fallback;
}
