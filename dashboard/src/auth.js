// @ts-check
// The REST token of a JobManager that requires one (`security.rest.token-file`; on Kubernetes
// the StreamJob's Secret `<name>-rest-token`). The page's files are served without it; every
// API call carries it as `Authorization: Bearer <token>`. It is typed into the sign-in form and
// kept in this tab's sessionStorage only: gone when the tab closes, never put in a URL (so
// never in a proxy's or the JobManager's access log, nor in a Referer), never in a cookie (so
// no other site's request can carry it), never shown on the page.

const KEY = "fjord.rest-token";

/** A 401 answer of the API. */
export class AuthError extends Error {
  /**
   * @param {string} message  the API's message
   * @param {boolean} sent  whether the request carried a token (then it was refused)
   */
  constructor(message, sent) {
    super(message);
    this.name = "AuthError";
    this.sent = sent;
  }
}

/** The token of this tab, if one was entered. @returns {string | null} */
export function token() {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

/** Keeps `value` as this tab's token. @param {string} value */
export function signIn(value) {
  sessionStorage.setItem(KEY, value);
}

/** Forgets this tab's token. */
export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** The headers that authenticate an API call (none without a token). @returns {Record<string, string>} */
export function headers() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}
