// Package pow is sottod's registration puzzle: abuse control that needs no
// identity. The server hands out a random seed with a difficulty; the client
// searches for a solution whose hash has that many leading zero bits. A
// solution costs about 2^difficulty hashes to find and one to check.
//
//	valid(seed, solution) ⇔ SHA-256("sotto-pow-v1" ‖ seed ‖ solution) < 2^(256−difficulty)
//
// # Security
//
// Seeds are single-use and expire: the [Issuer] remembers the seeds it has
// handed out (in memory, at most MaxPending) and forgets each one when it is
// redeemed or expires, so one solution registers one account. Nothing about
// the client is recorded.
package pow

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/bits"
	"sync"
	"time"
)

const (
	// SeedSize is the size of a challenge seed: unguessable, so solutions
	// cannot be computed ahead of time.
	SeedSize = 32
	// MaxSolutionSize bounds a solution; a counter needs 8 bytes.
	MaxSolutionSize = 32
	// TTL is how long a seed stays redeemable: long enough to solve on a
	// slow phone at the default difficulty, short enough that unredeemed
	// seeds do not pile up.
	TTL = 10 * time.Minute
	// MaxPending bounds the seeds held in memory. At the limit the oldest
	// are dropped (their solvers must ask again), so a flood of challenge
	// requests costs the server a fixed amount of memory.
	MaxPending = 100_000
	// context separates these hashes from every other SHA-256 use.
	context = "sotto-pow-v1"
)

// Errors of Redeem.
var (
	ErrUnknownSeed = errors.New("pow: unknown, used or expired challenge")
	ErrWrongWork   = errors.New("pow: solution does not meet the difficulty")
)

// Check reports whether solution solves seed at difficulty.
func Check(seed, solution []byte, difficulty int) bool {
	if len(solution) > MaxSolutionSize {
		return false
	}
	h := sha256.New()
	h.Write([]byte(context))
	h.Write(seed)
	h.Write(solution)
	var sum [32]byte
	h.Sum(sum[:0])
	return leadingZeros(sum) >= difficulty
}

func leadingZeros(sum [32]byte) int {
	n := 0
	for i := 0; i < 32; i += 8 {
		w := binary.BigEndian.Uint64(sum[i:])
		if w != 0 {
			return n + bits.LeadingZeros64(w)
		}
		n += 64
	}
	return n
}

// Solve finds a solution by counting; it returns false if stop closes
// first. Clients call it; tests use small difficulties.
func Solve(seed []byte, difficulty int, stop <-chan struct{}) ([]byte, bool) {
	var sol [8]byte
	for i := uint64(0); ; i++ {
		if i&0xffff == 0 {
			select {
			case <-stop:
				return nil, false
			default:
			}
		}
		binary.BigEndian.PutUint64(sol[:], i)
		if Check(seed, sol[:], difficulty) {
			return append([]byte(nil), sol[:]...), true
		}
	}
}

// Issuer hands out and redeems seeds. It is safe for concurrent use.
type Issuer struct {
	difficulty int
	now        func() time.Time

	mu      sync.Mutex
	pending map[[SeedSize]byte]time.Time // seed → expiry
	order   [][SeedSize]byte             // issue order, for dropping the oldest
}

// NewIssuer makes an issuer of challenges at difficulty. now is the clock
// (time.Now outside tests).
func NewIssuer(difficulty int, now func() time.Time) *Issuer {
	return &Issuer{difficulty: difficulty, now: now, pending: map[[SeedSize]byte]time.Time{}}
}

// Difficulty returns the number of leading zero bits solutions need.
func (is *Issuer) Difficulty() int { return is.difficulty }

// Issue returns a fresh seed and the difficulty to solve it at.
func (is *Issuer) Issue() ([]byte, int) {
	var seed [SeedSize]byte
	rand.Read(seed[:])
	is.mu.Lock()
	defer is.mu.Unlock()
	is.expireLocked()
	for len(is.pending) >= MaxPending && len(is.order) > 0 {
		delete(is.pending, is.order[0])
		is.order = is.order[1:]
	}
	is.pending[seed] = is.now().Add(TTL)
	is.order = append(is.order, seed)
	return seed[:], is.difficulty
}

// Redeem checks a solution and consumes its seed. A seed is redeemable once,
// before it expires.
func (is *Issuer) Redeem(seed, solution []byte) error {
	if len(seed) != SeedSize {
		return ErrUnknownSeed
	}
	key := [SeedSize]byte(seed)
	is.mu.Lock()
	exp, ok := is.pending[key]
	if ok && is.now().Before(exp) && Check(seed, solution, is.difficulty) {
		delete(is.pending, key)
		is.mu.Unlock()
		return nil
	}
	is.mu.Unlock()
	if !ok || !is.now().Before(exp) {
		return ErrUnknownSeed
	}
	return ErrWrongWork
}

// expireLocked drops expired seeds from the front of the issue order.
func (is *Issuer) expireLocked() {
	now := is.now()
	n := 0
	for n < len(is.order) {
		exp, ok := is.pending[is.order[n]]
		if ok && now.Before(exp) {
			break
		}
		delete(is.pending, is.order[n])
		n++
	}
	if n > 0 {
		is.order = append(is.order[:0], is.order[n:]...)
	}
}

// Pending returns how many seeds are outstanding (for metrics).
func (is *Issuer) Pending() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return len(is.pending)
}
