// RPC URLs often carry a secret (an API key in the path or query, or user:password): what is logged or shown
// of one is only its scheme, host and port.

/** `scheme://host:port`, with `/…` when the URL had a path, query or credentials that were left out. */
export function redactRpcUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(an RPC URL that does not parse)';
  }
  const hidden =
    (parsed.pathname !== '/' && parsed.pathname !== '') ||
    parsed.search !== '' ||
    parsed.hash !== '' ||
    parsed.username !== '' ||
    parsed.password !== '';
  return `${parsed.protocol}//${parsed.host}${hidden ? '/…' : ''}`;
}

/** Shorter parts are words like `v3`, `rpc` or `eth`, not keys; scrubbing them would only garble messages. */
export const MIN_SECRET_LENGTH = 6;

/**
 * The parts of `url` that may be secret, as they may appear in text (raw and percent-decoded): the user
 * name and password, every path segment, every query value, the fragment; those of MIN_SECRET_LENGTH
 * characters or more. Empty for a URL that does not parse.
 */
export function secretPartsOf(url: string): string[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [];
  }
  const raw = [
    parsed.username,
    parsed.password,
    ...parsed.pathname.split('/'),
    ...[...parsed.searchParams.values()],
    ...parsed.search.slice(1).split('&').map((pair) => pair.slice(pair.indexOf('=') + 1)),
    parsed.hash.slice(1),
  ];
  const parts = new Set<string>();
  for (const part of raw) {
    for (const form of [part, safeDecode(part)]) if (form.length >= MIN_SECRET_LENGTH) parts.add(form);
  }
  return [...parts];
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
