import { createHash, timingSafeEqual } from 'node:crypto';

/** What an Authorization header carries, for the two schemes the api accepts. */
export type Credentials = { scheme: 'basic'; user: string; password: string } | { scheme: 'bearer'; token: string };

export function parseAuthorization(header: string | undefined): Credentials | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (bearer) return { scheme: 'bearer', token: bearer[1] };
  const basic = /^Basic\s+([A-Za-z0-9+/=]*)\s*$/i.exec(header ?? '');
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : { scheme: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** A configured secret; both sides are hashed first, so the comparison leaks neither length nor content. */
export class Secret {
  private readonly expected: Buffer;

  constructor(value: string) {
    this.expected = digest(value);
  }

  matches(given: string | undefined): boolean {
    return timingSafeEqual(digest(given ?? ''), this.expected) && given !== undefined;
  }
}
