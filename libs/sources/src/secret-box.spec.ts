import { randomBytes } from 'node:crypto';
import { SecretBox, SecretsKeyError, SecretsKeyMissingError } from './secret-box';

describe('SecretBox (AES-256-GCM with SECRETS_KEY)', () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);

  it('opens what it sealed, and seals the same text differently each time', () => {
    const sealed = box.seal('wk-0123456789', 'destination_write_key');
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('wk-0123456789');
    expect(box.seal('wk-0123456789', 'destination_write_key')).not.toBe(sealed);
    expect(box.open(sealed, 'destination_write_key', 'source "a"')).toBe('wk-0123456789');
  });

  it('refuses another key, naming SECRETS_KEY and the source, never the secret', () => {
    const sealed = box.seal('wk-0123456789', 'destination_write_key');
    const other = new SecretBox(randomBytes(32));
    expect(() => other.open(sealed, 'destination_write_key', 'source "a"')).toThrow(SecretsKeyError);
    expect(() => other.open(sealed, 'destination_write_key', 'source "a"')).toThrow(/SECRETS_KEY does not open the destination_write_key of source "a"/);
  });

  it('refuses a ciphertext moved to a secret of another kind, or altered', () => {
    const sealed = box.seal('wk-0123456789', 'destination_write_key');
    expect(() => box.open(sealed, 'mailjet_api_secret', 'source "a"')).toThrow(SecretsKeyError);
    const [version, iv, tag, data] = sealed.split('.');
    const flipped = Buffer.from(data, 'base64url');
    flipped[0] ^= 1;
    expect(() => box.open([version, iv, tag, flipped.toString('base64url')].join('.'), 'destination_write_key', 'source "a"')).toThrow(SecretsKeyError);
    expect(() => box.open('plain text', 'destination_write_key', 'source "a"')).toThrow(/not a secret sealed by this bridge/);
    const shortTag = Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url');
    expect(() => box.open([version, iv, shortTag, data].join('.'), 'destination_write_key', 'source "a"')).toThrow(/not a secret sealed/);
  });

  it('without a key: seal says to set SECRETS_KEY, open says a stored secret needs it', () => {
    const keyless = new SecretBox(undefined);
    expect(() => keyless.seal('x', 'webhook_password')).toThrow(SecretsKeyMissingError);
    expect(() => keyless.seal('x', 'webhook_password')).toThrow(/SECRETS_KEY is not set/);
    expect(() => keyless.open(box.seal('x', 'webhook_password'), 'webhook_password', 'source "b"')).toThrow(/SECRETS_KEY is required: source "b"/);
  });
});
