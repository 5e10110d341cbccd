// The public /api/v1/ API (docs/api.md): JSON GETs with the read token, errors as ApiError.

const TOKEN_KEY = "logmesh.token"; // kept in sessionStorage: this tab only

/** headers plus "Authorization: Bearer" when this tab has a read token. */
export function authHeaders(headers) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

/** Keep token for this tab; an empty one forgets it. */
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
}

/** An answer that is not 2xx (status 0: the service could not be reached); body is its JSON or {}. */
export class ApiError extends Error {
  constructor(status, body, path) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status; this.body = body || {}; this.path = path;
  }
}

/** GET path with params (null and "" left out) as JSON; aborts with signal. */
export async function api(path, params, signal) {
  const url = new URL(path, location.href);
  for (const [k, v] of Object.entries(params || {})) if (v != null && v !== "") url.searchParams.set(k, v);
  let resp;
  try {
    resp = await fetch(url, { signal, headers: authHeaders({ Accept: "application/json" }) });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { error: "cannot reach the logs service; is it running?" }, path);
  }
  let body = null;
  try { body = await resp.json(); } catch { body = null; }
  if (!resp.ok) throw new ApiError(resp.status, body || { error: `HTTP ${resp.status} ${resp.statusText}` }, path);
  return body;
}
