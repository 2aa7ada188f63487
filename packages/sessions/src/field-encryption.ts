import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { SessionDataUnreadableError, SessionsOptionsError } from './errors.js'

/** Options of encryption at rest. */
export interface EncryptionOptions {
  /**
   * Keys, newest first, each at least 32 characters (e.g. `crypto.randomBytes(32).toString('base64url')`).
   * Values are written with the first; any listed key reads. Rotate by prepending a key, retire
   * one by removing it once sessions written with it have expired (or been rewritten).
   */
  keys: readonly string[]
}

interface Key {
  readonly id: string
  readonly bytes: Buffer
}

const VERSION = 'e1'

/**
 * AES-256-GCM of each data field's JSON before it reaches the store, so a Redis dump, replica or
 * MONITOR shows no session data. The ciphertext is bound (as GCM associated data) to the
 * session's storage ID and the field name: a value copied to another session or field by
 * someone who can write to Redis fails to decrypt instead of being accepted. Metadata (times,
 * user ID, user agent) stays clear, since the per-user list and the expiry checks need it.
 * Stored form: `e1.<key id>.<iv>.<ciphertext+tag>` (base64url).
 */
export class FieldEncryption {
  readonly #keys: readonly Key[]

  constructor(options: EncryptionOptions) {
    if (!Array.isArray(options.keys) || options.keys.length === 0) {
      throw new SessionsOptionsError(
        'encryption.keys',
        'encryption.keys must list at least one key (newest first).',
      )
    }
    this.#keys = options.keys.map((key, index) => {
      if (typeof key !== 'string' || key.length < 32) {
        throw new SessionsOptionsError(
          'encryption.keys',
          `encryption.keys[${index}] is shorter than 32 characters.`,
          { index },
        )
      }
      // SHA-256 turns any ≥ 32-character string into exactly 256 key bits; the ID names the key
      // in each value without revealing it.
      const bytes = createHash('sha256').update(`@scale/sessions encryption\0${key}`).digest()
      return { id: createHash('sha256').update(bytes).digest('base64url').slice(0, 8), bytes }
    })
  }

  encrypt(storageId: string, field: string, json: string): string {
    const key = this.#keys[0] as Key
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', key.bytes, iv)
    cipher.setAAD(Buffer.from(`${storageId}\0${field}`))
    const sealed = Buffer.concat([cipher.update(json, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return `${VERSION}.${key.id}.${iv.toString('base64url')}.${sealed.toString('base64url')}`
  }

  /** @throws {SessionDataUnreadableError} unknown key, tampered or moved value. */
  decrypt(storageId: string, field: string, stored: string): string {
    const [version, keyId, ivText, sealedText] = stored.split('.')
    const key = this.#keys.find((candidate) => candidate.id === keyId)
    if (version !== VERSION || !key || ivText === undefined || sealedText === undefined) {
      throw new SessionDataUnreadableError(
        field,
        key ? 'not an encrypted value' : 'written with a key no longer configured',
      )
    }
    const sealed = Buffer.from(sealedText, 'base64url')
    if (sealed.length < 16) throw new SessionDataUnreadableError(field, 'truncated')
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(ivText, 'base64url'))
      decipher.setAAD(Buffer.from(`${storageId}\0${field}`))
      decipher.setAuthTag(sealed.subarray(sealed.length - 16))
      return Buffer.concat([
        decipher.update(sealed.subarray(0, sealed.length - 16)),
        decipher.final(),
      ]).toString('utf8')
    } catch (error) {
      throw new SessionDataUnreadableError(
        field,
        'authentication failed (tampered, or moved from another session)',
        error,
      )
    }
  }
}
