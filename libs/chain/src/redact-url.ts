// RPC URLs often carry a secret (an API key in the path or query, or user:password): what the service logs
// or shows of one is only its scheme, host and port.

/** `scheme://host:port`, with `/…` when the URL had a path, query or credentials that were left out. */
export function redactRpcUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(an RPC URL that does not parse)';
  }
  const hidden = (parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search !== '' || parsed.hash !== '' || parsed.username !== '' || parsed.password !== '';
  return `${parsed.protocol}//${parsed.host}${hidden ? '/…' : ''}`;
}
