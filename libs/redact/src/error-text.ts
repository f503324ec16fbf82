import { redactText } from './redact-text';

/** Longest error text shown (a log line, /v1/health's lastError). */
export const MAX_ERROR_TEXT = 300;

/**
 * What may be shown of an error from a JSON-RPC call, ethers or fetch: ethers' `shortMessage` (never its
 * `message`, which lists the `info`, `request`, `response`, `payload` and body fields it attaches, the
 * request URL among them), the JSON-RPC error's code and message when the node answered one, or else the
 * error's own message and its cause's code (ECONNREFUSED); one line, redacted (redactText), at most
 * MAX_ERROR_TEXT characters.
 */
export function chainErrorText(err: unknown): string {
  return redactLine(describe(err));
}

/** `text`'s first line, redacted and cut to MAX_ERROR_TEXT characters. */
export function redactLine(text: string): string {
  const line = redactText(text.split('\n')[0]);
  return line.length > MAX_ERROR_TEXT ? `${line.slice(0, MAX_ERROR_TEXT - 1)}…` : line;
}

function describe(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const { shortMessage, error, message, cause } = err as { shortMessage?: unknown; error?: unknown; message?: unknown; cause?: unknown };
  if (typeof shortMessage === 'string') {
    const rpc = rpcErrorOf(error);
    return rpc ? `${shortMessage}: ${rpc}` : shortMessage;
  }
  const own = typeof message === 'string' ? message : String(err);
  const causeCode = (cause as { code?: unknown } | undefined)?.code;
  return typeof causeCode === 'string' && !own.includes(causeCode) ? `${own} (${causeCode})` : own;
}

/** A JSON-RPC error object ({code, message}) as `JSON-RPC error <code>: <message>`, or null. */
function rpcErrorOf(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof message !== 'string') return null;
  return `JSON-RPC error${typeof code === 'number' ? ` ${code}` : ''}: ${message}`;
}

/**
 * What an error class keeps as the `cause` of a chain error: a plain Error with chainErrorText(cause) as
 * its message and the cause's string `code` (ECONNREFUSED, SERVER_ERROR), never the original, whose fields
 * (ethers' info, request and response) would show wherever the error is printed whole (util.inspect lists
 * causes).
 */
export function redactCause(cause: unknown): Error & { code?: string } {
  const code = (cause as { code?: unknown } | null)?.code;
  const summary: Error & { code?: string } = new Error(chainErrorText(cause));
  if (typeof code === 'string') summary.code = code;
  return summary;
}
