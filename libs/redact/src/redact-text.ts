import { redactRpcUrl, secretPartsOf } from './redact-url';

// The one redaction every chain error's text goes through before anyone sees it (a log line, /v1/health,
// a ChainError or VerifierError message, the CLI's output). Two layers: every URL in the text is cut to
// scheme, host and port; and the secret parts of every RPC URL this process was given (rememberRpcUrl) are
// cut wherever they appear, since servers echo keys in their own words ("invalid project id <key>").

/** URLs as they appear in error texts; trailing punctuation is not part of them. */
const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'`<>()[\]{}\\]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?]+$/;
/** Most distinct secret parts kept (a portal user may try many URLs; a service has one). */
const MAX_REMEMBERED = 256;

const remembered = new Set<string>();
/** `remembered`, longest first (so that a secret containing another is cut whole). */
let ordered: string[] = [];

/**
 * Remembers the secret parts of an RPC URL (see secretPartsOf) so that redactText cuts them out of any
 * text from now on, in this process. Whoever is handed an RPC URL calls it before using it.
 */
export function rememberRpcUrl(url: string): void {
  let added = false;
  for (const part of secretPartsOf(url)) {
    if (remembered.has(part) || remembered.size >= MAX_REMEMBERED) continue;
    remembered.add(part);
    added = true;
  }
  if (added) ordered = [...remembered].sort((a, b) => b.length - a.length);
}

/** `text` with every URL reduced to scheme, host and port, and every remembered secret part replaced by `…`. */
export function redactText(text: string): string {
  let out = text.replace(URL_PATTERN, (match) => {
    const trailing = TRAILING_PUNCTUATION.exec(match)?.[0] ?? '';
    return redactRpcUrl(match.slice(0, match.length - trailing.length)) + trailing;
  });
  for (const secret of ordered) if (out.includes(secret)) out = out.split(secret).join('…');
  return out;
}
