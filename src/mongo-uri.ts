/**
 * The database part of a mongodb:// URI. Hosts never contain `/` (the driver wants socket paths
 * percent-encoded), so the first `/` after the scheme starts the path, and `?` ends it.
 */
function splitUri(uri: string): { head: string; path: string; query: string } {
  const scheme = /^mongodb(\+srv)?:\/\//.exec(uri)?.[0] ?? '';
  const rest = uri.slice(scheme.length);
  const slash = rest.indexOf('/');
  const question = rest.indexOf('?');
  const pathStart = slash !== -1 && (question === -1 || slash < question) ? slash : -1;
  const hostsEnd = pathStart !== -1 ? pathStart : question !== -1 ? question : rest.length;
  const queryStart = question === -1 ? rest.length : question;
  return {
    head: scheme + rest.slice(0, hostsEnd),
    path: pathStart === -1 ? '' : rest.slice(pathStart + 1, queryStart),
    query: rest.slice(queryStart),
  };
}

/** `mongodb://host/mydb?…` → `mydb`; undefined when the URI names no database. */
export function databaseNameInUri(uri: string): string | undefined {
  const { path } = splitUri(uri);
  if (path === '') return undefined;
  try {
    return decodeURIComponent(path);
  } catch {
    return path; // a malformed escape: the caller's name check refuses it
  }
}

/** The same URI naming `dbName` instead (empty: no database), its options kept. */
export function uriWithDatabase(uri: string, dbName: string): string {
  const { head, query } = splitUri(uri);
  return `${head}/${encodeURIComponent(dbName)}${query}`;
}
