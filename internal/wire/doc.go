// Package wire is the protocol between Sotto clients and sottod: versioned
// protobuf frames over a WebSocket, and the only parser of the bytes that
// arrive on it. The schema, documented field by field, is
// proto/sotto/wire/v1/wire.proto; its generated code is package wirepb.
// Attachments use plain HTTP and are not part of it.
//
// [Decode] turns a WebSocket binary message into a *wirepb.Frame checked
// against every bound of the protocol, and [DecodeRequest] does the same
// for a server, which accepts only requests; [Encode] validates and
// serializes a frame. [NewRequest], [Respond], [Error], [RetryLater], [Mismatched] and
// [NewPush] build frames; [AccessOf] says which connections may make a
// request; [AuthMessage] is what a device signs to authenticate.
//
// # Protocol flow
//
// A client keeps up to two WebSocket connections to a server:
//
//   - Its authenticated connection. It sends GetChallenge (→ Challenge,
//     a 32-byte nonce), then Authenticate with an XEdDSA signature by the
//     device's auth key over [AuthMessage]. The server then pushes the
//     device's mailbox as Envelopes pushes, then QueueEmpty, then new
//     envelopes as they arrive; the client stores each envelope and Acks
//     it, and the server deletes it. Account management (prekeys, sender
//     certificates, usernames, devices) happens here.
//   - Its anonymous connection, which never authenticates. Sealed sends
//     (Send, SendMulti), prekey fetches (GetBundles) and username lookups
//     go here, so that the server cannot tie them to the sender's account.
//     A server refuses them on an authenticated connection.
//
// A new account: GetRegistrationChallenge (→ a proof-of-work puzzle),
// Register (→ Registered: account id, device 1, and the sealed-sender trust
// root to pin), then authenticate as above. A new device of an existing
// account: OpenProvisioning (→ an address the new device shows as a QR code
// with a public key); the existing device, authenticated, gets a LinkToken
// and sends the account's keys and the token, encrypted to that key, with
// SendProvisioning; the server pushes them to the new device as a
// ProvisioningMessage; the new device sends LinkDevice (→ Registered) and
// authenticates.
//
// Requests and responses are matched by id: the client picks a non-zero id
// per request, the server answers each request exactly once with that id,
// in any order. A response with id 0 reports a frame whose id could not be
// read (too large, malformed, another version), after which the server
// closes the connection. Pushes have no id.
//
// # Frame layout
//
// One WebSocket binary message is one protobuf Frame, at most
// [MaxFrameSize] bytes:
//
//	Frame    = { 1: version (varint, = 1),
//	             oneof kind { 2: Request, 3: Response, 4: Push } }
//	Request  = { 1: id (varint, ≠ 0), oneof body { 2…23: one request kind } }
//	Response = { 1: id (varint), 2: Status, oneof body { 3…12: one result kind } }
//	Status   = { 1: code, 2: message (≤ 256 B), 3: retry_after_ms,
//	             4: repeated RecipientMismatch, 5: repeated unknown account ids }
//	Push     = { oneof body { 1: Envelopes, 2: QueueEmpty, 3: PreKeysLow,
//	             4: ProvisioningMessage, 5: EphemeralEnvelope } }
//
// Version history:
//
//	1 (2026-11-25): first version.
//
// # Security
//
// Every frame is bounded before it is read ([MaxFrameSize]); every byte
// field has an exact size or a maximum, every repeated field a maximum count,
// every number its range (device ids 1–[MaxDeviceID], registration ids
// 1–[MaxRegistrationID]), and strings are UTF-8 of bounded length. Before
// protobuf decoding allocates anything, a scan of the bytes refuses
// malformed input, groups, messages nested deeper than the schema,
// repeated fields over their bounds, a singular field or oneof member
// given twice (protobuf would keep the last: one message, two meanings),
// and 32-bit or boolean varints out of range. What decoding allocates is
// therefore bounded by the schema and proportional to the frame (FuzzDecode
// checks at most 128 bytes per input byte plus 16 KiB; the worst case is a
// list of empty messages). [DecodeRequest] refuses responses and pushes
// before decoding them, so that what a client can make a server allocate
// beyond copies of its byte fields stays under 64 KiB per frame. Unknown fields are discarded, never kept. Decode never panics
// and returns one error type, [*ParseError], carrying the status to answer
// with and, when it could be read, the request's id.
//
// The protocol keeps the server from learning who talks to whom: envelopes
// are sealed (the sender is inside the encryption), the requests that name
// a recipient carry nothing naming the sender and are made on anonymous
// connections, delivery is gated by the recipient's unidentified access key
// (or the XOR of several, for SendMulti), and pushed envelopes carry no
// sender and no time. Auth keys are per device and distinct from the
// identity key, which linked devices share: otherwise any device of an
// account could read and delete another's mailbox.
//
// # Compatibility
//
// Within version 1 the schema only grows: new fields and new request,
// response and push kinds get new numbers, and no field changes number,
// type or meaning. A reader drops fields it does not know, so an older peer
// ignores a newer peer's additions; a new field that an older peer must not
// ignore needs a new version instead. A request of a kind the server does
// not know is answered UNIMPLEMENTED ([ErrUnknownKind]); a client ignores a
// push of a kind it does not know.
//
// A frame of any other version is refused with [ErrUnsupportedVersion],
// and a server answers it with UNSUPPORTED_VERSION in a version-1 frame.
// Frame fields 1 (version), 2 (request), 3 (response), and the id (field
// 1) of requests and responses, keep their numbers in every version, so
// that the id of a request of an unknown version can still be read and
// answered. Fixtures of every version's frames stay in testdata forever.
package wire
