import { execFileSync } from 'node:child_process'
import { createVerify, generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getSignedUrl } from '@aws-sdk/cloudfront-signer'
import { afterAll, describe, expect, it } from 'vitest'
import { CdnOptionsError, InvalidPathError, signCloudFrontUrl } from '../src/index.js'

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const privatePem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
const dir = mkdtempSync(join(tmpdir(), 'cdn-url-cloudfront-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

// AWS's documented example: resource and expiry from "Create a signed URL using a canned policy".
const url = 'https://d111111abcdef8.cloudfront.net/image.jpg?color=red&size=medium'
const expiresAt = new Date(1357034400 * 1000)
const keyPairId = 'K2JCJMDEHXQW5F'

/** The signature exactly as AWS documents making it with the command line. */
function opensslSignature(policy: string): string {
  const policyFile = join(dir, 'policy')
  const keyFile = join(dir, 'private_key.pem')
  writeFileSync(policyFile, policy)
  writeFileSync(keyFile, privatePem)
  // cat policy | tr -d "\n" | tr -d " \t\n\r" | openssl sha1 -sign private_key.pem | openssl base64 -A | tr -- '+=/' '-_~'
  return execFileSync(
    'sh',
    [
      '-c',
      `cat ${policyFile} | tr -d "\\n" | tr -d " \\t\\n\\r" | openssl sha1 -sign ${keyFile} | openssl base64 -A | tr -- '+=/' '-_~'`,
    ],
    { encoding: 'utf8' },
  )
}

describe('signCloudFrontUrl (canned policy, RSA-SHA1)', () => {
  const signed = signCloudFrontUrl({ url, keyPairId, privateKey: privatePem, expiresAt })
  const params = new URL(signed).searchParams

  it('appends Expires, Signature and Key-Pair-Id in the documented form', () => {
    expect(signed.startsWith(`${url}&Expires=1357034400&Signature=`)).toBe(true)
    expect(signed.endsWith(`&Key-Pair-Id=${keyPairId}`)).toBe(true)
    expect(params.get('Signature')).toMatch(/^[A-Za-z0-9~_-]+$/)
  })

  it('signs the documented canned policy byte for byte, as the documented openssl pipeline does', () => {
    const policy = `{"Statement":[{"Resource":"${url}","Condition":{"DateLessThan":{"AWS:EpochTime":1357034400}}}]}`
    expect(params.get('Signature')).toBe(opensslSignature(policy))
    const raw = Buffer.from(
      (params.get('Signature') as string).replace(/-/g, '+').replace(/_/g, '=').replace(/~/g, '/'),
      'base64',
    )
    expect(createVerify('RSA-SHA1').update(policy).verify(publicKey, raw)).toBe(true)
  })

  it('gives the same signature and parameters as @aws-sdk/cloudfront-signer (which orders them differently)', () => {
    const fromSdk = new URL(
      getSignedUrl({ url, keyPairId, privateKey: privatePem, dateLessThan: expiresAt.toISOString() }),
    ).searchParams
    expect([...params].sort()).toEqual([...fromSdk].sort())
  })

  it('refuses a URL that is not encoded yet, and a key that is not one', () => {
    expect(() =>
      signCloudFrontUrl({
        url: 'https://x.cloudfront.net/a b.jpg',
        keyPairId,
        privateKey: privatePem,
        expiresAt,
      }),
    ).toThrow(InvalidPathError)
    expect(() => signCloudFrontUrl({ url, keyPairId, privateKey: 'not a key', expiresAt })).toThrow(
      CdnOptionsError,
    )
  })
})
