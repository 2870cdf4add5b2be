// Package crashtest holds TestCrashKill9, which checks sottod's delivery
// promise across crashes: a Send that was acknowledged is delivered, even
// when the server is killed with SIGKILL at any moment.
//
// The test builds sottod, then twenty times starts it on one data
// directory, puts it under load (senders sending real sealed-sender
// envelopes to receivers that are offline), kills it with SIGKILL at a
// random moment and restarts it. Receivers connect now and then, and at
// the end: they drain their mailboxes, decrypt every envelope, and ack.
// Every Send the server acknowledged must have been delivered; an envelope
// delivered twice (pushed, not acked before its receiver went away) is
// recognized and counted, as a client would drop it.
//
// SIGKILL ends the process, not the machine: what the kernel had accepted
// survives, so this tests that an acknowledgement follows the commit (and
// that SQLite recovers its WAL), not fsync. Power loss is outside a test's
// reach.
//
// The package has no code besides its test.
package crashtest
