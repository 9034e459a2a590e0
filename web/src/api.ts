// A thin client of the server's JSON API: sends the token when one is kept,
// turns error bodies ({"error":{"code","message"}}) into ApiError.

const TOKEN_KEY = 'orch.token';

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function getToken(storage: Storage = sessionStorage): string {
  try {
    return storage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function setToken(token: string, storage: Storage = sessionStorage): void {
  try {
    if (token) storage.setItem(TOKEN_KEY, token);
    else storage.removeItem(TOKEN_KEY);
  } catch {
    /* storage refused: the token lives for this page only */
  }
}

export function authHeaders(token = getToken()): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Adds `?token=` for the clients that cannot send headers (EventSource). */
export function withToken(url: string, token = getToken()): string {
  if (!token) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
}

export type Fetch = typeof fetch;

async function readError(res: Response): Promise<ApiError> {
  let code = 'http_' + res.status;
  let message = res.statusText || `HTTP ${res.status}`;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    }
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, code, message);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  raw?: BodyInit;
  fetchImpl?: Fetch;
}

export async function request(path: string, opts: RequestOptions = {}): Promise<Response> {
  const f = opts.fetchImpl ?? fetch;
  const headers: Record<string, string> = { ...authHeaders() };
  let body: BodyInit | undefined;
  if (opts.raw !== undefined) {
    body = opts.raw;
    headers['Content-Type'] = 'application/octet-stream';
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['Content-Type'] = 'application/json';
  }
  const res = await f(path, { method: opts.method ?? 'GET', headers, body });
  if (!res.ok) throw await readError(res);
  return res;
}

export async function getJson<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const res = await request(path, opts);
  return (await res.json()) as T;
}

export function postJson<T>(path: string, body: unknown, method = 'POST'): Promise<T> {
  return getJson<T>(path, { method, body });
}

/** The base path of a run's or a session's files. */
export function filesBase(owner: { kind: 'task' | 'session'; id: string }): string {
  const seg = owner.kind === 'task' ? 'tasks' : 'sessions';
  return `/api/${seg}/${encodeURIComponent(owner.id)}/files`;
}

export function contentUrl(
  owner: { kind: 'task' | 'session'; id: string },
  path: string,
  download = false,
): string {
  return `${filesBase(owner)}/content?path=${encodeURIComponent(path)}${download ? '&download=1' : ''}`;
}
