// Sotto's differential oracle: drives @signalapp/libsignal-client (pinned in
// package.json / package-lock.json) over JSON lines on stdin/stdout so that Go
// tests (internal/oracle) can check Sotto's protocol code against libsignal.
//
// Test-only. Keys are generated with no care for secrecy and every state lives
// in memory until the process exits.
//
// Protocol
//
//   request:  {"id":N,"method":"...","params":{...}}            one per line
//   response: {"id":N,"result":{...}}                          one per line
//          or {"id":N,"error":{"message":"...","name":"...",
//                               "code":N?,"operation":"..."?}}
//
// Requests are handled strictly one at a time, in arrival order, so callers
// may pipeline them freely. A malformed line gets an error response with
// "id":null (or the id, if one could be read); the harness never exits on a
// bad request. error.name is the libsignal error name (ErrorCode key such as
// "UntrustedIdentity", "DuplicatedMessage", "InvalidSession",
// "SealedSenderSelfSend", "VerificationFailed", or "LibSignalError" for the
// generic code) with "code" and "operation" copied from LibSignalErrorBase;
// the harness's own errors use "BadRequest", "UnknownMethod", "UnknownParty",
// "NoRecord", "InvalidCertificate" and "Mismatch".
//
// Encoding: every binary value is a standard (padded) base64 string. Public
// EC keys are 33 bytes (0x05 || u), private EC keys 32 bytes, Kyber keys carry
// their type byte 0x08 (public 1+1568, secret 1+3168). Times are milliseconds
// since the Unix epoch. A party or peer address is {"name": <ServiceId string,
// a UUID for ACIs>, "deviceId": N}. Message types are CiphertextMessageType
// numbers: 2 whisper, 3 prekey, 7 sender key, 8 plaintext.
//
// Methods (params → result; "?" marks optional fields)
//
// ping                      {} → {version, node}
// newParty                  {name, deviceId, registrationId?, identityPrivate?, trustAll?}
//                             → {name, deviceId, identityKey, registrationId}
//                             Replaces any party of the same name and device.
//                             registrationId defaults to a random 14-bit value;
//                             trustAll disables trust-on-first-use checks.
// bundle                    {party, oneTimePreKey, kyber? (default true), kyberLastResort?,
//                            preKeyId?, signedPreKeyId?, kyberPreKeyId?}
//                             → {registrationId, deviceId, preKeyId?, preKey?, signedPreKeyId,
//                                signedPreKey, signedPreKeySignature, identityKey,
//                                kyberPreKeyId?, kyberPreKey?, kyberPreKeySignature?}
//                             Fresh keys, stored in the party's stores. A
//                             Kyber prekey is removed when libsignal marks it
//                             used unless kyberLastResort is set.
// importRecords             {party, preKeys?:[b64], signedPreKeys?:[b64], kyberPreKeys?:[b64]}
//                             → {} (serialized PreKeyRecord / SignedPreKeyRecord /
//                             KyberPreKeyRecord, e.g. built by Go from its own keys)
// processBundle             {party, peer, bundle:{fields as returned by bundle}, now?} → {}
// encrypt                   {party, peer, plaintext, now?} → {type, body}
// decrypt                   {party, peer, type, body} → {plaintext}
//                             type 2 signalDecrypt, 3 signalDecryptPreKey,
//                             7 groupDecrypt, 8 PlaintextContent body.
// sessionInfo               {party, peer} → {exists, hasCurrentState?, localRegistrationId?,
//                                remoteRegistrationId?, sessionVersion?, previousSessions?,
//                                hasPendingPreKey?, hasPendingKyberPreKey?,
//                                localIdentity?, remoteIdentity?, aliceBaseKey?, record?}
//                             Fields after hasCurrentState are read from the
//                             serialized SessionRecord (storage.proto).
// identity                  {party, peer} → {identityKey?} the peer identity the party stored
// keyPair, trustRoot        {} → {public, private}
// serverCertificate         {keyId, trustRootPrivate, serverKeyPublic?, serverKeyPrivate?}
//                             → {serialized, serverKeyPublic, serverKeyPrivate?}
//                             With neither key given a server key pair is generated.
// senderCertificate         {senderUuid, senderE164?, senderDeviceId, senderKey, expiration,
//                            serverCertificate, serverKeyPrivate} → {serialized}
// validateSenderCertificate {serialized, trustRoot, time}
//                             → {valid, senderUuid, senderE164, senderDeviceId, senderKey,
//                                expiration, serverKeyId, serverKey, serverCertificate,
//                                certificate, signature}
// sealedEncrypt             {party, peer, senderCertificate, (plaintext | usmcType+contents | usmc),
//                            contentHint?, groupId?} → {body}   (Sealed Sender v1)
//                             plaintext without contentHint/groupId goes through
//                             sealedSenderEncryptMessage; otherwise signalEncrypt +
//                             UnidentifiedSenderMessageContent.new + sealedSenderEncrypt.
// sealedDecrypt             {party, body, trustRoot, timestamp, localUuid?, localDeviceId?,
//                            localE164?} → {senderUuid, senderE164, senderDeviceId, plaintext}
//                             sealedSenderDecryptMessage (v1 or v2 ReceivedMessage;
//                             whisper/prekey contents only). local* default to the party.
// sealedDecryptToUsmc       {party, body} → {type, contents, senderCertificate, senderUuid,
//                                senderE164, senderDeviceId, contentHint, groupId}
// sealedGroupDecrypt        {party, body, trustRoot, timestamp}
//                             → {senderUuid, senderE164, senderDeviceId, type, contentHint,
//                                groupId, plaintext}
//                             What a Signal client does with a sender-key
//                             message: sealedSenderDecryptToUsmc, validate the
//                             certificate, then groupDecrypt (or signal decrypt
//                             for types 2/3) from the certificate's address.
// sealedMultiEncrypt        {party, recipients:[peer], senderCertificate, contentHint?, groupId?,
//                            excludedRecipients?:[serviceId], and one of:
//                              plaintext + distributionId  (groupEncrypt → SENDERKEY usmc)
//                              plaintext                   (signalEncrypt; one recipient only)
//                              usmcType + contents         (usmc built around given bytes)
//                              usmc                        (serialized usmc)}
//                             → {sent}  (Sealed Sender v2 SentMessage)
// multiRecipientParse       {sent} → {recipients:[{serviceId, deviceIds, registrationIds}],
//                                excluded:[serviceId]}
// multiRecipientForSingle   {sent, serviceId, deviceId?} → {received, crossChecked}
//                             SealedSenderMultiRecipientMessage.messageForRecipient;
//                             when the message has one recipient it is also
//                             compared with sealedSenderMultiRecipientMessage-
//                             ForSingleRecipient (crossChecked=true).
// senderKeyDistribution     {party, distributionId} → {message}
// processSenderKeyDistribution {party, sender, message} → {distributionId, chainId, iteration}
// groupEncrypt              {party, distributionId, plaintext} → {body}
// groupDecrypt              {party, sender, body} → {plaintext}
// fingerprint               {iterations, version, localIdentifier, localKey, remoteIdentifier,
//                            remoteKey} → {displayString, scannable}
// compareScannable          {a, b} → {equal}
// xeddsaSign                {private, message} → {signature}
// xeddsaVerify              {public, message, signature} → {valid}
// agree                     {private, public} → {shared}
// kemGenerate               {} → {public, secret}
//                             (0.72.1's Node API has no raw encapsulate/decapsulate)
// aes256GcmSivEncrypt       {key, nonce, aad?, plaintext} → {ciphertext}
// aes256GcmSivDecrypt       {key, nonce, aad?, ciphertext} → {plaintext}
// bench                     {op, iterations, warmup?} → {op, iterations, warmup, nsPerOp}
//                             op: pqxdh_alice, pqxdh_bob, encrypt_decrypt_1k,
//                             sealed_v2_1024, sender_key_encrypt. Setup runs
//                             outside the timed loop; warmup defaults to
//                             ceil(iterations/10), at most 100.

import { createRequire } from 'node:module';
import { randomInt, randomUUID } from 'node:crypto';
import readline from 'node:readline';

import SC from '@signalapp/libsignal-client';
import SSMModule from '@signalapp/libsignal-client/dist/SealedSenderMultiRecipientMessage.js';

const require = createRequire(import.meta.url);
const LIBSIGNAL_VERSION = require('@signalapp/libsignal-client/package.json').version;
const SealedSenderMultiRecipientMessage = SSMModule.default ?? SSMModule;

// Largest registration id Sealed Sender v2 can carry (14 bits).
const MAX_REGISTRATION_ID = 0x3fff;
// Payload size used by the 1 KiB benchmarks.
const BENCH_PAYLOAD = 1024;
// Recipient devices of the sealed_v2_1024 benchmark.
const BENCH_V2_DEVICES = 1024;
// Upper bound on bench iterations, so a typo cannot wedge the harness.
const MAX_BENCH_ITERATIONS = 1_000_000;

// ---------------------------------------------------------------------------
// Errors and parameter parsing

class HarnessError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

const bad = (message) => new HarnessError('BadRequest', message);

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function has(p, key) {
  return p[key] !== undefined && p[key] !== null;
}

function bytesOf(v, what, len) {
  if (typeof v !== 'string' || !BASE64.test(v)) {
    throw bad(`${what}: want a standard base64 string`);
  }
  const b = Buffer.from(v, 'base64');
  if (len !== undefined && b.length !== len) {
    throw bad(`${what}: want ${len} bytes, got ${b.length}`);
  }
  return b;
}

function bytes(p, key, { optional = false, len } = {}) {
  if (!has(p, key)) {
    if (optional) return null;
    throw bad(`missing ${key}`);
  }
  return bytesOf(p[key], key, len);
}

function int(p, key, { optional = false, min = 0, max = 0xffffffff, dflt } = {}) {
  if (!has(p, key)) {
    if (optional) return dflt ?? null;
    throw bad(`missing ${key}`);
  }
  const v = p[key];
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw bad(`${key}: want an integer in [${min}, ${max}]`);
  }
  return v;
}

function str(p, key, { optional = false } = {}) {
  if (!has(p, key)) {
    if (optional) return null;
    throw bad(`missing ${key}`);
  }
  if (typeof p[key] !== 'string') throw bad(`${key}: want a string`);
  return p[key];
}

function bool(p, key, dflt = false) {
  if (!has(p, key)) return dflt;
  if (typeof p[key] !== 'boolean') throw bad(`${key}: want a boolean`);
  return p[key];
}

function obj(p, key) {
  const v = p[key];
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw bad(`${key}: want an object`);
  }
  return v;
}

function arr(p, key, { optional = false } = {}) {
  if (!has(p, key)) {
    if (optional) return [];
    throw bad(`missing ${key}`);
  }
  if (!Array.isArray(p[key])) throw bad(`${key}: want an array`);
  return p[key];
}

function address(v, what) {
  if (v === null || typeof v !== 'object') throw bad(`${what}: want {name, deviceId}`);
  const name = str(v, 'name');
  const deviceId = int(v, 'deviceId', { min: 1 });
  return SC.ProtocolAddress.new(name, deviceId);
}

function publicKey(p, key, opts) {
  const b = bytes(p, key, opts);
  return b === null ? null : SC.PublicKey.deserialize(b);
}

function privateKey(p, key, opts) {
  const b = bytes(p, key, opts);
  return b === null ? null : SC.PrivateKey.deserialize(b);
}

function time(p, key, opts = {}) {
  return int(p, key, { ...opts, max: Number.MAX_SAFE_INTEGER });
}

function optionalDate(p, key) {
  const ms = time(p, key, { optional: true });
  return ms === null ? undefined : new Date(ms);
}

// ---------------------------------------------------------------------------
// In-memory stores, one set per party

const addrKey = (a) => `${a.name()}.${a.deviceId()}`;

class MemSessionStore extends SC.SessionStore {
  constructor() {
    super();
    this.records = new Map();
  }
  async saveSession(address, record) {
    this.records.set(addrKey(address), record);
  }
  async getSession(address) {
    return this.records.get(addrKey(address)) ?? null;
  }
  async getExistingSessions(addresses) {
    return addresses.map((a) => {
      const r = this.records.get(addrKey(a));
      if (r === undefined) throw new HarnessError('NoRecord', `no session for ${addrKey(a)}`);
      return r;
    });
  }
}

class MemIdentityStore extends SC.IdentityKeyStore {
  constructor(privateKey, registrationId, trustAll) {
    super();
    this.privateKey = privateKey;
    this.registrationId = registrationId;
    this.trustAll = trustAll;
    this.known = new Map();
  }
  async getIdentityKey() {
    return this.privateKey;
  }
  async getLocalRegistrationId() {
    return this.registrationId;
  }
  async saveIdentity(address, key) {
    const k = addrKey(address);
    const old = this.known.get(k);
    this.known.set(k, key);
    if (old !== undefined && !old.serialize().equals(key.serialize())) {
      return SC.IdentityChange.ReplacedExisting;
    }
    return SC.IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(address, key, _direction) {
    if (this.trustAll) return true;
    const old = this.known.get(addrKey(address));
    return old === undefined || old.serialize().equals(key.serialize());
  }
  async getIdentity(address) {
    return this.known.get(addrKey(address)) ?? null;
  }
}

class MemPreKeyStore extends SC.PreKeyStore {
  constructor() {
    super();
    this.records = new Map();
  }
  async savePreKey(id, record) {
    this.records.set(id, record);
  }
  async getPreKey(id) {
    const r = this.records.get(id);
    if (r === undefined) throw new HarnessError('NoRecord', `no prekey ${id}`);
    return r;
  }
  async removePreKey(id) {
    this.records.delete(id);
  }
}

class MemSignedPreKeyStore extends SC.SignedPreKeyStore {
  constructor() {
    super();
    this.records = new Map();
  }
  async saveSignedPreKey(id, record) {
    this.records.set(id, record);
  }
  async getSignedPreKey(id) {
    const r = this.records.get(id);
    if (r === undefined) throw new HarnessError('NoRecord', `no signed prekey ${id}`);
    return r;
  }
}

class MemKyberPreKeyStore extends SC.KyberPreKeyStore {
  constructor() {
    super();
    this.records = new Map();
    this.lastResort = new Set();
    this.used = new Map();
  }
  async saveKyberPreKey(id, record) {
    this.records.set(id, record);
  }
  async getKyberPreKey(id) {
    const r = this.records.get(id);
    if (r === undefined) throw new HarnessError('NoRecord', `no kyber prekey ${id}`);
    return r;
  }
  async markKyberPreKeyUsed(id) {
    this.used.set(id, (this.used.get(id) ?? 0) + 1);
    if (!this.lastResort.has(id)) this.records.delete(id);
  }
}

class MemSenderKeyStore extends SC.SenderKeyStore {
  constructor() {
    super();
    this.records = new Map();
  }
  async saveSenderKey(sender, distributionId, record) {
    this.records.set(`${addrKey(sender)}/${distributionId}`, record);
  }
  async getSenderKey(sender, distributionId) {
    return this.records.get(`${addrKey(sender)}/${distributionId}`) ?? null;
  }
}

class Party {
  constructor(name, deviceId, registrationId, identityPrivate, trustAll = false) {
    this.address = SC.ProtocolAddress.new(name, deviceId);
    this.identityPrivate = identityPrivate;
    this.identityPublic = identityPrivate.getPublicKey();
    this.registrationId = registrationId;
    this.sessions = new MemSessionStore();
    this.identity = new MemIdentityStore(identityPrivate, registrationId, trustAll);
    this.preKeys = new MemPreKeyStore();
    this.signedPreKeys = new MemSignedPreKeyStore();
    this.kyberPreKeys = new MemKyberPreKeyStore();
    this.senderKeys = new MemSenderKeyStore();
    this.nextPreKeyId = 1;
    this.nextSignedPreKeyId = 1;
    this.nextKyberPreKeyId = 1;
  }

  static random(deviceId = 1) {
    return new Party(randomUUID(), deviceId, randomRegistrationId(), SC.PrivateKey.generate());
  }

  // Makes a fresh bundle, stores its private halves, and returns both the
  // wire fields and libsignal's PreKeyBundle.
  async makeBundle({ oneTimePreKey, kyber = true, kyberLastResort = false, ids = {} }) {
    const fields = {
      registrationId: this.registrationId,
      deviceId: this.address.deviceId(),
      identityKey: this.identityPublic.serialize(),
    };
    let preKeyId = null;
    let preKeyPublic = null;
    if (oneTimePreKey) {
      preKeyId = ids.preKeyId ?? this.nextPreKeyId++;
      const priv = SC.PrivateKey.generate();
      preKeyPublic = priv.getPublicKey();
      await this.preKeys.savePreKey(preKeyId, SC.PreKeyRecord.new(preKeyId, preKeyPublic, priv));
      fields.preKeyId = preKeyId;
      fields.preKey = preKeyPublic.serialize();
    }
    const signedId = ids.signedPreKeyId ?? this.nextSignedPreKeyId++;
    const signedPriv = SC.PrivateKey.generate();
    const signedPub = signedPriv.getPublicKey();
    const signedSig = this.identityPrivate.sign(signedPub.serialize());
    await this.signedPreKeys.saveSignedPreKey(
      signedId,
      SC.SignedPreKeyRecord.new(signedId, Date.now(), signedPub, signedPriv, signedSig)
    );
    fields.signedPreKeyId = signedId;
    fields.signedPreKey = signedPub.serialize();
    fields.signedPreKeySignature = signedSig;

    let kyberId = null;
    let kyberPublic = null;
    let kyberSig = null;
    if (kyber) {
      kyberId = ids.kyberPreKeyId ?? this.nextKyberPreKeyId++;
      const pair = SC.KEMKeyPair.generate();
      kyberPublic = pair.getPublicKey();
      kyberSig = this.identityPrivate.sign(kyberPublic.serialize());
      await this.kyberPreKeys.saveKyberPreKey(
        kyberId,
        SC.KyberPreKeyRecord.new(kyberId, Date.now(), pair, kyberSig)
      );
      if (kyberLastResort) this.kyberPreKeys.lastResort.add(kyberId);
      fields.kyberPreKeyId = kyberId;
      fields.kyberPreKey = kyberPublic.serialize();
      fields.kyberPreKeySignature = kyberSig;
    }
    const bundle = SC.PreKeyBundle.new(
      this.registrationId,
      this.address.deviceId(),
      preKeyId,
      preKeyPublic,
      signedId,
      signedPub,
      signedSig,
      this.identityPublic,
      kyberId,
      kyberPublic,
      kyberSig
    );
    return { fields, bundle };
  }
}

function randomRegistrationId() {
  return randomInt(1, MAX_REGISTRATION_ID + 1);
}

// ---------------------------------------------------------------------------
// Minimal protobuf support: reading a SessionRecord, writing a USMC.

function readVarint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw bad('truncated varint');
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw bad('varint too long');
  }
}

// Returns an array of {field, wire, value}; value is a bigint for varints and
// a Buffer for length-delimited fields.
function readFields(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    let tag;
    [tag, pos] = readVarint(buf, pos);
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    let value;
    switch (wire) {
      case 0:
        [value, pos] = readVarint(buf, pos);
        break;
      case 1:
        value = buf.subarray(pos, pos + 8);
        pos += 8;
        break;
      case 2: {
        let n;
        [n, pos] = readVarint(buf, pos);
        value = buf.subarray(pos, pos + Number(n));
        pos += Number(n);
        break;
      }
      case 5:
        value = buf.subarray(pos, pos + 4);
        pos += 4;
        break;
      default:
        throw bad(`unsupported wire type ${wire}`);
    }
    if (pos > buf.length) throw bad('truncated field');
    out.push({ field, wire, value });
  }
  return out;
}

function writeVarint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return Buffer.from(out);
}

const fieldVarint = (field, n) => Buffer.concat([writeVarint(field << 3), writeVarint(n)]);
const fieldBytes = (field, b) =>
  Buffer.concat([writeVarint((field << 3) | 2), writeVarint(b.length), b]);

// sealed_sender.proto UnidentifiedSenderMessage.Message.Type values differ from
// CiphertextMessageType only for PreKey (3 ↔ 1).
function usmcProtoType(ciphertextType) {
  switch (ciphertextType) {
    case SC.CiphertextMessageType.PreKey:
      return 1;
    case SC.CiphertextMessageType.Whisper:
    case SC.CiphertextMessageType.SenderKey:
    case SC.CiphertextMessageType.Plaintext:
      return ciphertextType;
    default:
      throw bad(`usmcType: unknown CiphertextMessageType ${ciphertextType}`);
  }
}

// Builds an UnidentifiedSenderMessageContent around raw contents, with fields
// in the order libsignal itself writes them (so bytes match
// UnidentifiedSenderMessageContent.new).
function usmcFromRaw(type, senderCertificate, contents, contentHint, groupId) {
  const parts = [
    fieldVarint(1, usmcProtoType(type)),
    fieldBytes(2, senderCertificate),
    fieldBytes(3, contents),
  ];
  if (contentHint !== 0) parts.push(fieldVarint(4, contentHint));
  if (groupId !== null && groupId.length > 0) parts.push(fieldBytes(5, groupId));
  return SC.UnidentifiedSenderMessageContent.deserialize(Buffer.concat(parts));
}

function sessionDetails(record) {
  const out = {
    exists: true,
    hasCurrentState: record.hasCurrentState(),
    localRegistrationId: record.localRegistrationId(),
    remoteRegistrationId: record.remoteRegistrationId(),
    previousSessions: 0,
    record: record.serialize(),
  };
  for (const f of readFields(out.record)) {
    if (f.field === 2 && f.wire === 2) out.previousSessions++;
    if (f.field !== 1 || f.wire !== 2) continue;
    for (const s of readFields(f.value)) {
      if (s.field === 1 && s.wire === 0) out.sessionVersion = Number(s.value);
      if (s.field === 2 && s.wire === 2) out.localIdentity = s.value;
      if (s.field === 3 && s.wire === 2) out.remoteIdentity = s.value;
      if (s.field === 9 && s.wire === 2) out.hasPendingPreKey = true;
      if (s.field === 14 && s.wire === 2) out.hasPendingKyberPreKey = true;
      if (s.field === 13 && s.wire === 2) out.aliceBaseKey = s.value;
    }
  }
  out.hasPendingPreKey ??= false;
  out.hasPendingKyberPreKey ??= false;
  return out;
}

// ---------------------------------------------------------------------------
// Handlers

const parties = new Map();

function party(p, key = 'party') {
  const name = str(p, key);
  const deviceId = int(p, `${key}DeviceId`, { optional: true, min: 1 });
  // A party is named by its ProtocolAddress name; when several devices share
  // a name, "partyDeviceId" picks one (otherwise the name must be unique).
  const matches = [...parties.values()].filter(
    (x) => x.address.name() === name && (deviceId === null || x.address.deviceId() === deviceId)
  );
  if (matches.length === 0) throw new HarnessError('UnknownParty', `no party ${name}`);
  if (matches.length > 1) throw bad(`party ${name} has several devices: set ${key}DeviceId`);
  return matches[0];
}

function certFields(cert) {
  return {
    senderUuid: cert.senderUuid(),
    senderE164: cert.senderE164(),
    senderDeviceId: cert.senderDeviceId(),
  };
}

async function buildContent(me, p, recipientForPlaintext) {
  const cert = SC.SenderCertificate.deserialize(bytes(p, 'senderCertificate'));
  const contentHint = int(p, 'contentHint', { optional: true, dflt: 0 });
  const groupId = bytes(p, 'groupId', { optional: true });
  if (has(p, 'usmc')) return SC.UnidentifiedSenderMessageContent.deserialize(bytes(p, 'usmc'));
  if (has(p, 'usmcType')) {
    return usmcFromRaw(int(p, 'usmcType'), cert.serialize(), bytes(p, 'contents'), contentHint, groupId);
  }
  const plaintext = bytes(p, 'plaintext');
  let ctext;
  if (has(p, 'distributionId')) {
    ctext = await SC.groupEncrypt(me.address, str(p, 'distributionId'), me.senderKeys, plaintext);
  } else {
    if (recipientForPlaintext === null) {
      throw bad('plaintext without distributionId needs exactly one recipient');
    }
    ctext = await SC.signalEncrypt(plaintext, recipientForPlaintext, me.sessions, me.identity);
  }
  return SC.UnidentifiedSenderMessageContent.new(ctext, cert, contentHint, groupId);
}

async function decryptTyped(me, peer, type, body) {
  switch (type) {
    case SC.CiphertextMessageType.Whisper:
      return SC.signalDecrypt(SC.SignalMessage.deserialize(body), peer, me.sessions, me.identity);
    case SC.CiphertextMessageType.PreKey:
      return SC.signalDecryptPreKey(
        SC.PreKeySignalMessage.deserialize(body),
        peer,
        me.sessions,
        me.identity,
        me.preKeys,
        me.signedPreKeys,
        me.kyberPreKeys
      );
    case SC.CiphertextMessageType.SenderKey:
      return SC.groupDecrypt(peer, me.senderKeys, body);
    case SC.CiphertextMessageType.Plaintext:
      return SC.PlaintextContent.deserialize(body).body();
    default:
      throw bad(`type: unknown CiphertextMessageType ${type}`);
  }
}

function bundleFromFields(b) {
  const preKeyId = int(b, 'preKeyId', { optional: true });
  const preKey = publicKey(b, 'preKey', { optional: true });
  if ((preKeyId === null) !== (preKey === null)) throw bad('bundle: preKeyId and preKey go together');
  const kyberKey = bytes(b, 'kyberPreKey', { optional: true });
  return SC.PreKeyBundle.new(
    int(b, 'registrationId'),
    int(b, 'deviceId', { min: 1 }),
    preKeyId,
    preKey,
    int(b, 'signedPreKeyId'),
    publicKey(b, 'signedPreKey'),
    bytes(b, 'signedPreKeySignature'),
    publicKey(b, 'identityKey'),
    kyberKey === null ? null : int(b, 'kyberPreKeyId'),
    kyberKey === null ? null : SC.KEMPublicKey.deserialize(kyberKey),
    kyberKey === null ? null : bytes(b, 'kyberPreKeySignature')
  );
}

const handlers = {
  async ping() {
    return { version: LIBSIGNAL_VERSION, node: process.version };
  },

  async newParty(p) {
    const name = str(p, 'name');
    const deviceId = int(p, 'deviceId', { min: 1 });
    const registrationId = int(p, 'registrationId', {
      optional: true,
      max: MAX_REGISTRATION_ID,
      dflt: randomRegistrationId(),
    });
    const priv = privateKey(p, 'identityPrivate', { optional: true, len: 32 }) ?? SC.PrivateKey.generate();
    const x = new Party(name, deviceId, registrationId, priv, bool(p, 'trustAll'));
    parties.set(addrKey(x.address), x);
    return { name, deviceId, identityKey: x.identityPublic.serialize(), registrationId };
  },

  async bundle(p) {
    const me = party(p);
    const { fields } = await me.makeBundle({
      oneTimePreKey: bool(p, 'oneTimePreKey'),
      kyber: bool(p, 'kyber', true),
      kyberLastResort: bool(p, 'kyberLastResort'),
      ids: {
        preKeyId: int(p, 'preKeyId', { optional: true }) ?? undefined,
        signedPreKeyId: int(p, 'signedPreKeyId', { optional: true }) ?? undefined,
        kyberPreKeyId: int(p, 'kyberPreKeyId', { optional: true }) ?? undefined,
      },
    });
    return fields;
  },

  async importRecords(p) {
    const me = party(p);
    for (const [i, r] of arr(p, 'preKeys', { optional: true }).entries()) {
      const rec = SC.PreKeyRecord.deserialize(bytesOf(r, `preKeys[${i}]`));
      await me.preKeys.savePreKey(rec.id(), rec);
    }
    for (const [i, r] of arr(p, 'signedPreKeys', { optional: true }).entries()) {
      const rec = SC.SignedPreKeyRecord.deserialize(bytesOf(r, `signedPreKeys[${i}]`));
      await me.signedPreKeys.saveSignedPreKey(rec.id(), rec);
    }
    for (const [i, r] of arr(p, 'kyberPreKeys', { optional: true }).entries()) {
      const rec = SC.KyberPreKeyRecord.deserialize(bytesOf(r, `kyberPreKeys[${i}]`));
      await me.kyberPreKeys.saveKyberPreKey(rec.id(), rec);
    }
    return {};
  },

  async processBundle(p) {
    const me = party(p);
    const peer = address(p.peer, 'peer');
    const bundle = bundleFromFields(obj(p, 'bundle'));
    await SC.processPreKeyBundle(bundle, peer, me.sessions, me.identity, optionalDate(p, 'now'));
    return {};
  },

  async encrypt(p) {
    const me = party(p);
    const peer = address(p.peer, 'peer');
    const m = await SC.signalEncrypt(bytes(p, 'plaintext'), peer, me.sessions, me.identity, optionalDate(p, 'now'));
    return { type: m.type(), body: m.serialize() };
  },

  async decrypt(p) {
    const me = party(p);
    const peer = address(p.peer, 'peer');
    return { plaintext: await decryptTyped(me, peer, int(p, 'type'), bytes(p, 'body')) };
  },

  async sessionInfo(p) {
    const me = party(p);
    const record = await me.sessions.getSession(address(p.peer, 'peer'));
    return record === null ? { exists: false } : sessionDetails(record);
  },

  async identity(p) {
    const me = party(p);
    const key = await me.identity.getIdentity(address(p.peer, 'peer'));
    return key === null ? {} : { identityKey: key.serialize() };
  },

  async keyPair() {
    const k = SC.PrivateKey.generate();
    return { public: k.getPublicKey().serialize(), private: k.serialize() };
  },

  async trustRoot() {
    return handlers.keyPair();
  },

  async serverCertificate(p) {
    const trustRoot = privateKey(p, 'trustRootPrivate', { len: 32 });
    let serverPrivate = privateKey(p, 'serverKeyPrivate', { optional: true, len: 32 });
    let serverPublic = publicKey(p, 'serverKeyPublic', { optional: true });
    if (serverPrivate === null && serverPublic === null) serverPrivate = SC.PrivateKey.generate();
    if (serverPublic === null) serverPublic = serverPrivate.getPublicKey();
    const cert = SC.ServerCertificate.new(int(p, 'keyId'), serverPublic, trustRoot);
    const out = { serialized: cert.serialize(), serverKeyPublic: serverPublic.serialize() };
    if (serverPrivate !== null) out.serverKeyPrivate = serverPrivate.serialize();
    return out;
  },

  async senderCertificate(p) {
    const cert = SC.SenderCertificate.new(
      str(p, 'senderUuid'),
      str(p, 'senderE164', { optional: true }),
      int(p, 'senderDeviceId', { min: 1 }),
      publicKey(p, 'senderKey'),
      time(p, 'expiration'),
      SC.ServerCertificate.deserialize(bytes(p, 'serverCertificate')),
      privateKey(p, 'serverKeyPrivate', { len: 32 })
    );
    return { serialized: cert.serialize() };
  },

  async validateSenderCertificate(p) {
    const cert = SC.SenderCertificate.deserialize(bytes(p, 'serialized'));
    const server = cert.serverCertificate();
    return {
      valid: cert.validate(publicKey(p, 'trustRoot'), time(p, 'time')),
      ...certFields(cert),
      senderKey: cert.key().serialize(),
      expiration: cert.expiration(),
      serverKeyId: server.keyId(),
      serverKey: server.key().serialize(),
      serverCertificate: server.serialize(),
      certificate: cert.certificate(),
      signature: cert.signature(),
    };
  },

  async sealedEncrypt(p) {
    const me = party(p);
    const peer = address(p.peer, 'peer');
    const simple =
      has(p, 'plaintext') && !has(p, 'contentHint') && !has(p, 'groupId') && !has(p, 'distributionId');
    if (simple) {
      const cert = SC.SenderCertificate.deserialize(bytes(p, 'senderCertificate'));
      const body = await SC.sealedSenderEncryptMessage(bytes(p, 'plaintext'), peer, cert, me.sessions, me.identity);
      return { body };
    }
    const content = await buildContent(me, p, peer);
    return { body: await SC.sealedSenderEncrypt(content, peer, me.identity) };
  },

  async sealedDecrypt(p) {
    const me = party(p);
    const r = await SC.sealedSenderDecryptMessage(
      bytes(p, 'body'),
      publicKey(p, 'trustRoot'),
      time(p, 'timestamp'),
      str(p, 'localE164', { optional: true }),
      str(p, 'localUuid', { optional: true }) ?? me.address.name(),
      int(p, 'localDeviceId', { optional: true, min: 1 }) ?? me.address.deviceId(),
      me.sessions,
      me.identity,
      me.preKeys,
      me.signedPreKeys,
      me.kyberPreKeys
    );
    return {
      senderUuid: r.senderUuid(),
      senderE164: r.senderE164(),
      senderDeviceId: r.deviceId(),
      plaintext: r.message(),
    };
  },

  async sealedDecryptToUsmc(p) {
    const me = party(p);
    const usmc = await SC.sealedSenderDecryptToUsmc(bytes(p, 'body'), me.identity);
    const cert = usmc.senderCertificate();
    return {
      type: usmc.msgType(),
      contents: usmc.contents(),
      senderCertificate: cert.serialize(),
      ...certFields(cert),
      contentHint: usmc.contentHint(),
      groupId: usmc.groupId(),
    };
  },

  async sealedGroupDecrypt(p) {
    const me = party(p);
    const trustRoot = publicKey(p, 'trustRoot');
    const timestamp = time(p, 'timestamp');
    const usmc = await SC.sealedSenderDecryptToUsmc(bytes(p, 'body'), me.identity);
    const cert = usmc.senderCertificate();
    if (!cert.validate(trustRoot, timestamp)) {
      throw new HarnessError('InvalidCertificate', 'sender certificate does not validate');
    }
    if (cert.senderUuid() === me.address.name() && cert.senderDeviceId() === me.address.deviceId()) {
      throw new HarnessError('SealedSenderSelfSend', 'message from this device');
    }
    const sender = SC.ProtocolAddress.new(cert.senderUuid(), cert.senderDeviceId());
    const plaintext = await decryptTyped(me, sender, usmc.msgType(), usmc.contents());
    return {
      ...certFields(cert),
      type: usmc.msgType(),
      contentHint: usmc.contentHint(),
      groupId: usmc.groupId(),
      plaintext,
    };
  },

  async sealedMultiEncrypt(p) {
    const me = party(p);
    const recipients = arr(p, 'recipients').map((r, i) => address(r, `recipients[${i}]`));
    if (recipients.length === 0) throw bad('recipients: want at least one');
    const excluded = arr(p, 'excludedRecipients', { optional: true }).map((s, i) => {
      if (typeof s !== 'string') throw bad(`excludedRecipients[${i}]: want a service id string`);
      return SC.ServiceId.parseFromServiceIdString(s);
    });
    const content = await buildContent(me, p, recipients.length === 1 ? recipients[0] : null);
    const sent = await SC.sealedSenderMultiRecipientEncrypt({
      content,
      recipients,
      excludedRecipients: excluded,
      identityStore: me.identity,
      sessionStore: me.sessions,
    });
    return { sent };
  },

  async multiRecipientParse(p) {
    const m = new SealedSenderMultiRecipientMessage(bytes(p, 'sent'));
    const recipients = Object.entries(m.recipientsByServiceIdString()).map(([serviceId, r]) => ({
      serviceId,
      deviceIds: [...r.deviceIds],
      registrationIds: [...r.registrationIds],
    }));
    return { recipients, excluded: [...m.excludedRecipientServiceIdStrings()] };
  },

  async multiRecipientForSingle(p) {
    const sent = bytes(p, 'sent');
    const serviceId = str(p, 'serviceId');
    const deviceId = int(p, 'deviceId', { optional: true, min: 1 });
    const m = new SealedSenderMultiRecipientMessage(sent);
    const all = m.recipientsByServiceIdString();
    const r = Object.hasOwn(all, serviceId) ? all[serviceId] : undefined;
    if (r === undefined) throw new HarnessError('NoRecord', `${serviceId} is not a recipient`);
    if (deviceId !== null && !r.deviceIds.includes(deviceId)) {
      throw new HarnessError('NoRecord', `${serviceId}.${deviceId} is not a recipient device`);
    }
    const received = m.messageForRecipient(r);
    let crossChecked = false;
    if (Object.keys(all).length === 1) {
      const single = SC.sealedSenderMultiRecipientMessageForSingleRecipient(sent);
      if (!single.equals(received)) {
        throw new HarnessError('Mismatch', 'messageForRecipient and ForSingleRecipient disagree');
      }
      crossChecked = true;
    }
    return { received, crossChecked };
  },

  async senderKeyDistribution(p) {
    const me = party(p);
    const m = await SC.SenderKeyDistributionMessage.create(me.address, str(p, 'distributionId'), me.senderKeys);
    return { message: m.serialize() };
  },

  async processSenderKeyDistribution(p) {
    const me = party(p);
    const sender = address(p.sender, 'sender');
    const m = SC.SenderKeyDistributionMessage.deserialize(bytes(p, 'message'));
    await SC.processSenderKeyDistributionMessage(sender, m, me.senderKeys);
    return { distributionId: m.distributionId(), chainId: m.chainId(), iteration: m.iteration() };
  },

  async groupEncrypt(p) {
    const me = party(p);
    const m = await SC.groupEncrypt(me.address, str(p, 'distributionId'), me.senderKeys, bytes(p, 'plaintext'));
    return { body: m.serialize() };
  },

  async groupDecrypt(p) {
    const me = party(p);
    const sender = address(p.sender, 'sender');
    return { plaintext: await SC.groupDecrypt(sender, me.senderKeys, bytes(p, 'body')) };
  },

  async fingerprint(p) {
    const f = SC.Fingerprint.new(
      int(p, 'iterations', { min: 1 }),
      int(p, 'version'),
      bytes(p, 'localIdentifier'),
      publicKey(p, 'localKey'),
      bytes(p, 'remoteIdentifier'),
      publicKey(p, 'remoteKey')
    );
    return {
      displayString: f.displayableFingerprint().toString(),
      scannable: f.scannableFingerprint().toBuffer(),
    };
  },

  async compareScannable(p) {
    const a = SC.ScannableFingerprint._fromBuffer(bytes(p, 'a'));
    return { equal: a.compare(SC.ScannableFingerprint._fromBuffer(bytes(p, 'b'))) };
  },

  async xeddsaSign(p) {
    return { signature: privateKey(p, 'private', { len: 32 }).sign(bytes(p, 'message')) };
  },

  async xeddsaVerify(p) {
    return { valid: publicKey(p, 'public').verify(bytes(p, 'message'), bytes(p, 'signature')) };
  },

  async agree(p) {
    return { shared: privateKey(p, 'private', { len: 32 }).agree(publicKey(p, 'public')) };
  },

  async kemGenerate() {
    const k = SC.KEMKeyPair.generate();
    return { public: k.getPublicKey().serialize(), secret: k.getSecretKey().serialize() };
  },

  async aes256GcmSivEncrypt(p) {
    const c = SC.Aes256GcmSiv.new(bytes(p, 'key', { len: 32 }));
    const aad = bytes(p, 'aad', { optional: true }) ?? Buffer.alloc(0);
    return { ciphertext: c.encrypt(bytes(p, 'plaintext'), bytes(p, 'nonce', { len: 12 }), aad) };
  },

  async aes256GcmSivDecrypt(p) {
    const c = SC.Aes256GcmSiv.new(bytes(p, 'key', { len: 32 }));
    const aad = bytes(p, 'aad', { optional: true }) ?? Buffer.alloc(0);
    return { plaintext: c.decrypt(bytes(p, 'ciphertext'), bytes(p, 'nonce', { len: 12 }), aad) };
  },

  async bench(p) {
    const op = str(p, 'op');
    const setup = benchSetups[op];
    if (setup === undefined || !Object.hasOwn(benchSetups, op)) throw bad(`unknown bench op ${op}`);
    const iterations = int(p, 'iterations', { min: 1, max: MAX_BENCH_ITERATIONS });
    const warmup = int(p, 'warmup', {
      optional: true,
      max: MAX_BENCH_ITERATIONS,
      dflt: Math.min(100, Math.ceil(iterations / 10)),
    });
    const run = await setup(warmup + iterations);
    for (let i = 0; i < warmup; i++) await run(i);
    const start = process.hrtime.bigint();
    for (let i = warmup; i < warmup + iterations; i++) await run(i);
    const total = process.hrtime.bigint() - start;
    return { op, iterations, warmup, nsPerOp: Number(total) / iterations };
  },
};

// ---------------------------------------------------------------------------
// Benchmarks: each setup(n) prepares n operations and returns run(i).

async function establish(alice, bob) {
  const { bundle } = await bob.makeBundle({ oneTimePreKey: true });
  await SC.processPreKeyBundle(bundle, bob.address, alice.sessions, alice.identity);
  const first = await SC.signalEncrypt(Buffer.from('hi'), bob.address, alice.sessions, alice.identity);
  await decryptTyped(bob, alice.address, first.type(), first.serialize());
  const reply = await SC.signalEncrypt(Buffer.from('hi'), alice.address, bob.sessions, bob.identity);
  await decryptTyped(alice, bob.address, reply.type(), reply.serialize());
}

const benchSetups = {
  async pqxdh_alice(n) {
    const alice = Party.random();
    const bob = Party.random();
    const { bundle } = await bob.makeBundle({ oneTimePreKey: true });
    // A distinct peer address per run, so each run starts from no session
    // rather than archiving an ever-growing record.
    const peers = Array.from({ length: n }, () => SC.ProtocolAddress.new(randomUUID(), 1));
    return (i) => SC.processPreKeyBundle(bundle, peers[i], alice.sessions, alice.identity);
  },

  async pqxdh_bob(n) {
    const alice = Party.random();
    const bob = Party.random();
    const payload = Buffer.alloc(BENCH_PAYLOAD, 0x61);
    const msgs = [];
    for (let i = 0; i < n; i++) {
      const { bundle } = await bob.makeBundle({ oneTimePreKey: true });
      await SC.processPreKeyBundle(bundle, bob.address, alice.sessions, alice.identity);
      const m = await SC.signalEncrypt(payload, bob.address, alice.sessions, alice.identity);
      // A distinct sender address per message, so each decrypt starts from an empty session.
      msgs.push({ from: SC.ProtocolAddress.new(randomUUID(), 1), body: m.serialize() });
    }
    return (i) =>
      SC.signalDecryptPreKey(
        SC.PreKeySignalMessage.deserialize(msgs[i].body),
        msgs[i].from,
        bob.sessions,
        bob.identity,
        bob.preKeys,
        bob.signedPreKeys,
        bob.kyberPreKeys
      );
  },

  async encrypt_decrypt_1k() {
    const alice = Party.random();
    const bob = Party.random();
    await establish(alice, bob);
    const payload = Buffer.alloc(BENCH_PAYLOAD, 0x61);
    return async () => {
      const m = await SC.signalEncrypt(payload, bob.address, alice.sessions, alice.identity);
      if (m.type() !== SC.CiphertextMessageType.Whisper) throw new Error('session not established');
      await SC.signalDecrypt(SC.SignalMessage.deserialize(m.serialize()), alice.address, bob.sessions, bob.identity);
    };
  },

  async sealed_v2_1024() {
    const sender = Party.random();
    const recipients = [];
    for (let i = 0; i < BENCH_V2_DEVICES; i++) {
      const r = Party.random();
      const { bundle } = await r.makeBundle({ oneTimePreKey: false });
      await SC.processPreKeyBundle(bundle, r.address, sender.sessions, sender.identity);
      recipients.push(r.address);
    }
    const trust = SC.PrivateKey.generate();
    const serverKey = SC.PrivateKey.generate();
    const server = SC.ServerCertificate.new(1, serverKey.getPublicKey(), trust);
    const cert = SC.SenderCertificate.new(
      sender.address.name(),
      null,
      sender.address.deviceId(),
      sender.identityPublic,
      Date.now() + 86_400_000,
      server,
      serverKey
    );
    const distributionId = randomUUID();
    await SC.SenderKeyDistributionMessage.create(sender.address, distributionId, sender.senderKeys);
    const ctext = await SC.groupEncrypt(sender.address, distributionId, sender.senderKeys, Buffer.alloc(BENCH_PAYLOAD, 0x61));
    const content = SC.UnidentifiedSenderMessageContent.new(ctext, cert, SC.ContentHint.Resendable, Buffer.alloc(32, 7));
    return () =>
      SC.sealedSenderMultiRecipientEncrypt({
        content,
        recipients,
        identityStore: sender.identity,
        sessionStore: sender.sessions,
      });
  },

  async sender_key_encrypt() {
    const sender = Party.random();
    const distributionId = randomUUID();
    await SC.SenderKeyDistributionMessage.create(sender.address, distributionId, sender.senderKeys);
    const payload = Buffer.alloc(BENCH_PAYLOAD, 0x61);
    return () => SC.groupEncrypt(sender.address, distributionId, sender.senderKeys, payload);
  },
};

// ---------------------------------------------------------------------------
// Main loop

// Encodes Buffers (and other byte arrays) as base64 wherever they appear.
function replacer(key, value) {
  const orig = this[key];
  if (orig instanceof Uint8Array) {
    return Buffer.from(orig.buffer, orig.byteOffset, orig.byteLength).toString('base64');
  }
  return value;
}

function errorBody(err) {
  if (err instanceof Error) {
    const out = { message: err.message, name: err.name };
    if (err instanceof SC.LibSignalErrorBase) {
      out.code = err.code;
      out.operation = err.operation;
    }
    return out;
  }
  return { message: String(err), name: 'Error' };
}

function send(msg) {
  let line;
  try {
    line = JSON.stringify(msg, replacer);
  } catch (err) {
    line = JSON.stringify({ id: msg.id ?? null, error: { message: `encode response: ${err}`, name: 'Error' } });
  }
  process.stdout.write(line + '\n');
}

async function handleLine(line) {
  if (line.trim() === '') return;
  let id = null;
  try {
    let req;
    try {
      req = JSON.parse(line);
    } catch (err) {
      throw bad(`invalid JSON: ${err.message}`);
    }
    if (req === null || typeof req !== 'object' || Array.isArray(req)) throw bad('request is not an object');
    if (Number.isSafeInteger(req.id)) id = req.id;
    else throw bad('id: want an integer');
    const method = req.method;
    if (typeof method !== 'string' || !Object.hasOwn(handlers, method)) {
      throw new HarnessError('UnknownMethod', `unknown method ${JSON.stringify(method)}`);
    }
    const params = req.params ?? {};
    if (typeof params !== 'object' || Array.isArray(params)) throw bad('params: want an object');
    const result = await handlers[method](params);
    send({ id, result: result ?? {} });
  } catch (err) {
    send({ id, error: errorBody(err) });
  }
}

process.on('uncaughtException', (err) => {
  process.stderr.write(`harness: uncaught exception: ${err?.stack ?? err}\n`);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`harness: unhandled rejection: ${err?.stack ?? err}\n`);
});

SC.initLogger(SC.LogLevel.Warn, (level, target, file, line, message) => {
  process.stderr.write(`libsignal[${SC.LogLevel[level]}] ${target}: ${message}\n`);
});

let queue = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  queue = queue.then(() => handleLine(line));
});
rl.on('close', () => {
  queue.then(() => process.exit(0));
});
