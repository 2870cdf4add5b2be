package testkit

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
)

// Rand returns a deterministic stream of pseudorandom bytes derived from
// seed, for reproducible tests: equal seeds give equal streams, on every
// platform and Go release.
//
// The stream is ChaCha8 (math/rand/v2), whose output is fixed by the
// C2SP chacha8rand specification, keyed with SHA-256(seed). Its Read never
// fails and always fills the whole buffer. The reader is not safe for
// concurrent use. It is for tests only: never use it for real keys.
func Rand(seed string) io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte(seed)))
}
