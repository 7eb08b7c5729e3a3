/** Retry-After as delay-seconds or as an HTTP-date (RFC 9110); anything else is ignored. */
export function retryAfterMsOf(header: string | null): number | undefined {
  if (!header) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(header)) return Number(header) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(date - Date.now(), 0);
}

// Errors from fetch (undici) are read by shape: under Jest they come from another realm, where
// `instanceof Error` is false.

/** The message of anything thrown, Error or not. */
export function errorMessageOf(error: unknown): string {
  const message = typeof error === 'object' && error !== null ? (error as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(error);
}

/** Whether fetch gave up because its `AbortSignal.timeout(...)` fired. */
export function isFetchTimeout(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'TimeoutError';
}

/** What went wrong under a fetch that threw: it says "fetch failed", the cause says what (ECONNREFUSED, a reset). */
export function fetchFailureReason(error: unknown): string {
  const cause = typeof error === 'object' && error !== null ? (error as { cause?: unknown }).cause : undefined;
  return errorMessageOf(cause ?? error);
}
