/** How a PostgreSQL URL is named in messages and logs: `PostgreSQL host:port/database`, never its user or password. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `PostgreSQL ${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'PostgreSQL (an unparsable URL)';
  }
}
