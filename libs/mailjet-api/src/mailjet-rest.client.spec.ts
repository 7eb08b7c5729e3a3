import { MailjetRestClient } from './mailjet-rest.client';

// Requests are tested against the Mailjet fake (test/mailjet-rest-client.e2e-spec.ts); this is
// what the client refuses before sending any.
describe('MailjetRestClient options', () => {
  const credentials = { apiKey: 'key', apiSecret: 'secret' };

  it('takes an origin, with or without a trailing slash', () => {
    expect(() => new MailjetRestClient({ baseUrl: 'https://api.mailjet.com/', ...credentials })).not.toThrow();
    expect(() => new MailjetRestClient({ baseUrl: 'http://127.0.0.1:8080', ...credentials })).not.toThrow();
  });

  it.each([
    ['a /v3 suffix, which the client adds itself', 'https://api.mailjet.com/v3', /must not end in \/v3/],
    ['a /v3/REST suffix', 'https://api.mailjet.com/v3/REST/', /must not end in \/v3/],
    ['credentials in the URL', 'https://key:secret@api.mailjet.com', /must not carry credentials/],
    ['another scheme', 'ftp://api.mailjet.com', /must be http\(s\)/],
    ['no URL at all', 'api.mailjet.com', /not a URL/],
  ])('refuses a baseUrl with %s', (_, baseUrl, message) => {
    expect(() => new MailjetRestClient({ baseUrl, ...credentials })).toThrow(message);
  });

  it('refuses missing credentials and nonsensical numbers', () => {
    expect(() => new MailjetRestClient({ baseUrl: 'https://api.mailjet.com', apiKey: '', apiSecret: 's' })).toThrow(/required/);
    expect(() => new MailjetRestClient({ baseUrl: 'https://api.mailjet.com', ...credentials, maxRetries: -1 })).toThrow(/maxRetries/);
    expect(() => new MailjetRestClient({ baseUrl: 'https://api.mailjet.com', ...credentials, requestTimeoutMs: 0 })).toThrow(
      /requestTimeoutMs/,
    );
  });

  it('refuses a resource path that would leave /v3/REST or carry a query', async () => {
    const client = new MailjetRestClient({ baseUrl: 'https://api.mailjet.com', ...credentials });
    await expect(client.listAll('../v1/send')).rejects.toThrow(/not a resource path/);
    await expect(client.listAll('message/../../v1/send')).rejects.toThrow(/not a resource path/);
    await expect(client.listAll('message?Limit=10')).rejects.toThrow(/not a resource path/);
    await expect(client.get('eventcallbackurl', '')).rejects.toThrow(/empty id/);
  });
});
