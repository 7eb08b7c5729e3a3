/**
 * A Mailjet REST call that did not give what was asked: Mailjet's refusal (`status` set), no answer
 * in time, no connection, or an answer that is not what the API documents. The message says
 * which call and what Mailjet said, in at most a few hundred characters, never with the API key
 * or secret in it.
 */
export class MailjetApiError extends Error {
  constructor(
    message: string,
    /** Mailjet's HTTP status, when it answered. */
    readonly status: number | undefined,
    readonly method: string,
    /** The resource path below /v3/REST, e.g. `eventcallbackurl/12`. */
    readonly resource: string,
    /** Requests made for this call, retries included. */
    readonly attempts: number,
  ) {
    super(message);
    this.name = 'MailjetApiError';
  }
}
