// SNMPv3 DES privacy (RFC 3414 §8) where Node's OpenSSL 3 has no single-DES cipher (it lives in the
// legacy provider): DES-CBC is computed as 3DES-EDE-CBC with three equal keys, which is the same.
import { createCipheriv, createDecipheriv, getCiphers, randomBytes } from 'node:crypto'

const BLOCK = 8

/** The parts of net-snmp's Encryption object this replaces (DES's entry in its algorithm table). */
export interface DesAlgorithmSlot {
  encryptPdu: (scopedPdu: Buffer, privProtocol: number, privPassword: string, authProtocol: number, engine: { engineID: Buffer }) => {
    encryptedPdu: Buffer
    msgPrivacyParameters: Buffer
  }
  decryptPdu: (
    encryptedPdu: Buffer,
    privProtocol: number,
    privParameters: Buffer,
    privPassword: string,
    authProtocol: number,
    engine: { engineID: Buffer },
  ) => Buffer
}

/** The localized privacy key (RFC 3414 §2.6): net-snmp's password-to-key for the user's auth protocol. */
export type PasswordToKey = (authProtocol: number, password: string, engineID: Buffer) => Buffer

/** DES key and IV per RFC 3414 §8.1.1.1: key = first 8 bytes of the localized key, IV = last 8 XOR salt. */
const keyAndIv = (localized: Buffer, salt: Buffer): { key: Buffer; iv: Buffer } => {
  const des = localized.subarray(0, BLOCK)
  const preIv = localized.subarray(BLOCK, 2 * BLOCK)
  const iv = Buffer.alloc(BLOCK)
  for (let i = 0; i < BLOCK; i++) iv[i] = preIv[i]! ^ salt[i]!
  return { key: Buffer.concat([des, des, des]), iv }
}

export const nativeSingleDes = (): boolean => getCiphers().includes('des-cbc')

/** Replaces DES encryption and decryption in net-snmp's table when single DES is unavailable. */
export const installDesFallback = (slot: DesAlgorithmSlot, passwordToKey: PasswordToKey): void => {
  if (nativeSingleDes()) return
  // The salt: 4 bytes of boots (we keep no engine state, so 1) and 4 random bytes, as §8.1.1.1 allows.
  slot.encryptPdu = (scopedPdu, _privProtocol, privPassword, authProtocol, engine) => {
    const salt = Buffer.concat([Buffer.from([0, 0, 0, 1]), randomBytes(4)])
    const { key, iv } = keyAndIv(passwordToKey(authProtocol, privPassword, engine.engineID), salt)
    const padded = Buffer.alloc(Math.ceil(scopedPdu.length / BLOCK) * BLOCK)
    scopedPdu.copy(padded)
    const cipher = createCipheriv('des-ede3-cbc', key, iv)
    cipher.setAutoPadding(false)
    return { encryptedPdu: Buffer.concat([cipher.update(padded), cipher.final()]), msgPrivacyParameters: salt }
  }
  slot.decryptPdu = (encryptedPdu, _privProtocol, privParameters, privPassword, authProtocol, engine) => {
    if (encryptedPdu.length % BLOCK !== 0 || privParameters.length !== BLOCK) throw new Error('DES-encrypted PDU of invalid length')
    const { key, iv } = keyAndIv(passwordToKey(authProtocol, privPassword, engine.engineID), privParameters)
    const decipher = createDecipheriv('des-ede3-cbc', key, iv)
    decipher.setAutoPadding(false)
    return Buffer.concat([decipher.update(encryptedPdu), decipher.final()])
  }
}
