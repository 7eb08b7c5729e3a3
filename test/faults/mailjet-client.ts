import { basicAuth } from '../support/test-env';

const RETRY_DELAY_MS = 200;
const REQUEST_TIMEOUT_MS = 10000;

/** Where a Mailjet account posts its callbacks: the path on the api and its Basic credentials. */
export interface CallbackTarget {
  path: string;
  authorization: string;
}

/** The default source's callback, configured by the environment (MAILJET_WEBHOOK_*). */
export const DEFAULT_CALLBACK: CallbackTarget = { path: '/webhooks/mailjet', authorization: basicAuth() };

/** One callback body and where it goes. */
export interface Callback {
  target: CallbackTarget;
  body: string;
}

export interface DeliveryStats {
  requests: number;
  statuses: Record<string, number>;
}

/**
 * Posts like Mailjet does: any answer but 200 (or no answer) is retried, here every 200 ms
 * instead of every 30 seconds, until the deadline.
 */
export class MailjetLikeClient {
  readonly stats: DeliveryStats = { requests: 0, statuses: {} };
  private next = 0;

  constructor(private readonly apiUrls: () => string[]) {}

  async deliver(callback: Callback, deadlineMs = 120000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      const urls = this.apiUrls();
      const url = urls[this.next++ % urls.length];
      const status = await this.post(url, callback);
      this.stats.requests++;
      this.stats.statuses[status] = (this.stats.statuses[status] ?? 0) + 1;
      if (status === '200') return;
      if (Date.now() > deadline) throw new Error(`callback not accepted before the deadline (last: ${status})`);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
    }
  }

  /** Delivers every callback, `concurrency` at a time. */
  async deliverAll(callbacks: Callback[], concurrency: number, onProgress?: (done: number) => void): Promise<void> {
    let index = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (index < callbacks.length) {
          const callback = callbacks[index++];
          await this.deliver(callback);
          onProgress?.(++done);
        }
      }),
    );
  }

  private async post(url: string, { target, body }: Callback): Promise<string> {
    try {
      const response = await fetch(`${url}${target.path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: target.authorization },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      return String(response.status);
    } catch {
      return 'no answer';
    }
  }
}

const TYPES = ['sent', 'open', 'click', 'bounce', 'blocked', 'spam', 'unsub'] as const;

/**
 * Mailjet-like events with MessageIDs beyond 2^53, unique per run: `count` events starting at
 * `first`, as JSON text (the ids must not pass through a JS number).
 */
export function generateEvents(first: bigint, count: number): Array<{ messageId: string; json: string }> {
  return Array.from({ length: count }, (_, i) => {
    const messageId = (first + BigInt(i)).toString();
    const type = TYPES[i % TYPES.length];
    const extra = type === 'click' ? ',"url":"https://example.com/a"' : type === 'unsub' ? ',"mj_list_id":1' : '';
    const json =
      `{"event":"${type}","time":${1764000000 + (i % 3600)},"MessageID":${messageId},` +
      `"Message_GUID":"guid-${messageId}","email":"user${i % 500}@example.com","mj_campaign_id":7,"mj_contact_id":${i},` +
      `"customcampaign":"fault","CustomID":"","Payload":""${extra}}`;
    return { messageId, json };
  });
}

/** Groups events into callback bodies of `size` events (Mailjet's grouped Version 2). */
export function bodiesOf<E extends { json: string }>(events: E[], size: number): Array<{ events: E[]; body: string }> {
  const bodies: Array<{ events: E[]; body: string }> = [];
  for (let i = 0; i < events.length; i += size) {
    const group = events.slice(i, i + size);
    bodies.push({ events: group, body: `[${group.map((e) => e.json).join(',')}]` });
  }
  return bodies;
}

/**
 * Callbacks of `size` events, taking turns between the accounts (body i goes to `accounts[i % n]`)
 * so that each account's traffic spans the whole fault, and the MessageIDs each account was sent.
 */
export function splitBetween<A extends { target: CallbackTarget }>(
  accounts: readonly A[],
  events: Array<{ messageId: string; json: string }>,
  size: number,
): { callbacks: Callback[]; posted: Map<A, string[]> } {
  const posted = new Map<A, string[]>(accounts.map((account) => [account, []]));
  const callbacks = bodiesOf(events, size).map(({ events: group, body }, index) => {
    const account = accounts[index % accounts.length];
    posted.get(account)!.push(...group.map((e) => e.messageId));
    return { target: account.target, body };
  });
  return { callbacks, posted };
}
