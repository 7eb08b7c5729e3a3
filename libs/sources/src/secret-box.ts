import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ConfigurationError } from '@app/config';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** SECRETS_KEY is missing or is not the key a stored secret was made with: the process cannot start. */
export class SecretsKeyError extends ConfigurationError {}

/** A secret cannot be stored because SECRETS_KEY is not set. */
export class SecretsKeyMissingError extends Error {
  constructor() {
    super('SECRETS_KEY is not set, so secrets cannot be stored: set it to 64 hex characters (openssl rand -hex 32) and restart');
  }
}

/**
 * AES-256-GCM with SECRETS_KEY. A sealed secret reads `v1.<iv>.<tag>.<ciphertext>` (base64url);
 * `purpose` (what kind of secret it is: a write key, a webhook password) is authenticated with it,
 * so that a ciphertext copied to a column of another kind does not open.
 */
export class SecretBox {
  constructor(private readonly key: Buffer | undefined) {
    if (key !== undefined && key.length !== 32) throw new SecretsKeyError('SECRETS_KEY must be 32 bytes (64 hex characters)');
  }

  get hasKey(): boolean {
    return this.key !== undefined;
  }

  seal(plain: string, purpose: string): string {
    if (!this.key) throw new SecretsKeyMissingError();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(purpose, 'utf8'));
    const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), sealed.toString('base64url')].join('.');
  }

  /** The plain text; a SecretsKeyError that says `whose` secret would not open, and why, never what it holds. */
  open(sealed: string, purpose: string, whose: string): string {
    if (!this.key) {
      throw new SecretsKeyError(`SECRETS_KEY is required: ${whose} holds secrets encrypted with it (set the key they were made with)`);
    }
    const [version, iv, tag, data] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || data === undefined) {
      throw new SecretsKeyError(`the stored ${purpose} of ${whose} is not a secret sealed by this bridge`);
    }
    const authTag = Buffer.from(tag, 'base64url');
    // GCM accepts a shorter tag, which is easier to forge: only the full one is taken.
    if (authTag.length !== TAG_BYTES) throw new SecretsKeyError(`the stored ${purpose} of ${whose} is not a secret sealed by this bridge`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(purpose, 'utf8'));
      decipher.setAuthTag(authTag);
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretsKeyError(`SECRETS_KEY does not open the ${purpose} of ${whose}: it is not the key the secret was encrypted with`);
    }
  }
}
