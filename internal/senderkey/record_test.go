package senderkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// chainVectors is testdata/chain-vectors.json, made by chain_vectors.py
// with an independent implementation.
type chainVectors struct {
	ChainKey testkit.Hex `json:"chain_key"`
	Steps    []struct {
		Iteration  uint32      `json:"iteration"`
		ChainKey   testkit.Hex `json:"chain_key"`
		Seed       testkit.Hex `json:"seed"`
		IV         testkit.Hex `json:"iv"`
		CipherKey  testkit.Hex `json:"cipher_key"`
		Plaintext  string      `json:"plaintext"`
		Ciphertext testkit.Hex `json:"ciphertext"`
	} `json:"steps"`
}

func loadChainVectors(t testing.TB) chainVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "chain-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v chainVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Steps) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func TestChainVectors(t *testing.T) {
	v := loadChainVectors(t)
	c := chainKey{}
	copy(c.key[:], v.ChainKey)
	for _, s := range v.Steps {
		t.Run(fmt.Sprint(s.Iteration), func(t *testing.T) {
			for c.iteration < s.Iteration {
				var err error
				if c, err = c.next(); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(c.key[:], s.ChainKey) {
				t.Fatalf("chain key %x, want %x", c.key, s.ChainKey)
			}
			mk := c.seed()
			if mk.iteration != s.Iteration || !bytes.Equal(mk.seed[:], s.Seed) {
				t.Fatalf("seed %d %x, want %x", mk.iteration, mk.seed, s.Seed)
			}
			iv, key := mk.keys()
			if !bytes.Equal(iv[:], s.IV) || !bytes.Equal(key[:], s.CipherKey) {
				t.Fatalf("iv %x key %x", iv, key)
			}
			ct, err := encryptCBC(&key, &iv, []byte(s.Plaintext))
			if err != nil || !bytes.Equal(ct, s.Ciphertext) {
				t.Fatalf("ciphertext %x, want %x", ct, s.Ciphertext)
			}
			pt, err := decryptCBC(&key, &iv, ct)
			if err != nil || string(pt) != s.Plaintext {
				t.Fatalf("decrypt = %q, %v", pt, err)
			}
		})
	}
}

func TestChainExhausted(t *testing.T) {
	c := chainKey{iteration: ^uint32(0)}
	if _, err := c.next(); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("next at 2³²−1: %v", err)
	}
}

func TestCBCPadding(t *testing.T) {
	var key [cipherKeySize]byte
	var iv [ivSize]byte
	for n := range 50 {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		ct, err := encryptCBC(&key, &iv, pt)
		if err != nil || len(ct) != n/16*16+16 {
			t.Fatalf("%d bytes encrypt to %d", n, len(ct))
		}
		if got, err := decryptCBC(&key, &iv, ct); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: %x, %v", n, got, err)
		}
	}
	for _, ct := range [][]byte{nil, make([]byte, 15), make([]byte, 17)} {
		if _, err := decryptCBC(&key, &iv, ct); err == nil {
			t.Fatalf("decrypted %d bytes", len(ct))
		}
	}
	// Every bad padding byte in the last block is caught.
	for _, last := range [][]byte{
		append(bytes.Repeat([]byte{1}, 15), 0),  // pad 0
		append(bytes.Repeat([]byte{1}, 15), 17), // pad > 16
		append(bytes.Repeat([]byte{1}, 14), 3, 3),
		append([]byte{15}, bytes.Repeat([]byte{16}, 15)...),
	} {
		// Encrypt the raw block without padding, then strip the padding
		// block encryptCBC adds.
		ct, err := encryptCBC(&key, &iv, last)
		if err != nil {
			t.Fatal(err)
		}
		ct = ct[:16]
		if _, err := decryptCBC(&key, &iv, ct); err == nil {
			t.Fatalf("accepted padding %x", last)
		}
	}
}

// libsignalSenderRecord is a sending record as libsignal stores it, written
// by hand from storage.proto: chain id 9, iteration it with chainKey, the
// test key pair as signing key, message version 3.
func libsignalSenderRecord(t testing.TB, it uint32, chainKey []byte) []byte {
	t.Helper()
	kp := testKeyPair(t)
	var ck []byte
	if it != 0 {
		ck = append(ck, 0x08, byte(it)) // iteration (one-byte varint in tests)
	}
	ck = append(append(ck, 0x12, 0x20), chainKey...)
	st := []byte{0x08, 0x09}                                   // chain_id 9
	st = append(append(st, 0x12, byte(len(ck))), ck...)        // sender_chain_key
	st = append(st, 0x1a, 2+33+2+32, 0x0a, 0x21)               // sender_signing_key {public
	st = append(st, kp.Public.Bytes()...)                      //
	st = append(append(st, 0x12, 0x20), kp.Private.Bytes()...) // private}
	st = append(st, 0x28, 0x03)                                // message_version 3
	return append([]byte{0x0a, byte(len(st))}, st...)
}

// TestEncryptKnownAnswer encrypts with a record assembled by hand in
// libsignal's storage layout and checks the ciphertexts against the
// independent vectors and the stored state after each step.
func TestEncryptKnownAnswer(t *testing.T) {
	v := loadChainVectors(t)
	id := testID(t)
	kp := testKeyPair(t)
	r, err := NewRecordFromLibsignal(id, libsignalSenderRecord(t, 0, v.ChainKey))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.DistributionID(); got != id || !slices.Equal(r.ChainIDs(), []ChainID{9}) {
		t.Fatalf("record %v", r)
	}
	for _, s := range v.Steps[:3] { // iterations 0, 1, 2
		if got, want := r.Libsignal(), libsignalSenderRecord(t, s.Iteration, s.ChainKey); !bytes.Equal(got, want) {
			t.Fatalf("before iteration %d: record %x\nwant %x", s.Iteration, got, want)
		}
		b, err := r.Encrypt(testkit.Rand("sig"), []byte(s.Plaintext))
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if m.Iteration() != s.Iteration || m.ChainID() != 9 || m.DistributionID() != id || !bytes.Equal(m.Ciphertext(), s.Ciphertext) || !m.Verify(kp.Public) {
			t.Fatalf("iteration %d: message %x", s.Iteration, b)
		}
	}
}

// TestDecryptKnownAnswer decrypts the independent vectors' ciphertexts,
// out of order, from a receiving record.
func TestDecryptKnownAnswer(t *testing.T) {
	v := loadChainVectors(t)
	id := testID(t)
	kp := testKeyPair(t)
	var ck ChainKey
	copy(ck[:], v.ChainKey)
	var r Record
	if err := r.Process(DistributionMessage{DistributionID: id, ChainID: 9, ChainKey: ck, SigningKey: kp.Public}); err != nil {
		t.Fatal(err)
	}
	msgs := map[uint32][]byte{}
	for _, s := range v.Steps {
		m, err := NewMessage(testkit.Rand("sig"), kp.Private, id, 9, s.Iteration, s.Ciphertext)
		if err != nil {
			t.Fatal(err)
		}
		msgs[s.Iteration] = m.Bytes()
	}
	want := func(i uint32) string { return fmt.Sprintf("nefarious plotting %d", i) }
	for _, i := range []uint32{2, 0, 100, 1, 99} {
		pt, err := r.Decrypt(msgs[i])
		if err != nil || string(pt) != want(i) {
			t.Fatalf("iteration %d: %q, %v", i, pt, err)
		}
	}
	for _, i := range []uint32{0, 1, 2, 99, 100} {
		if _, err := r.Decrypt(msgs[i]); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("replay of %d: %v", i, err)
		}
	}
	// 2001 skips 101…2000: 1900 keys, plus the 96 kept from before (3…98).
	if pt, err := r.Decrypt(msgs[2001]); err != nil || string(pt) != want(2001) {
		t.Fatalf("iteration 2001: %q, %v", pt, err)
	}
	if n := len(r.states[0].skipped); n != 96+1900 {
		t.Fatalf("%d skipped keys", n)
	}
	if pt, err := r.Decrypt(msgs[2000]); err != nil || string(pt) != want(2000) {
		t.Fatalf("iteration 2000: %q, %v", pt, err)
	}
}

// pair returns Alice's sending record and Bob's receiving record for it.
func pair(t testing.TB, seed string) (alice, bob *Record) {
	t.Helper()
	alice, bob = new(Record), new(Record)
	dm, err := alice.Create(testkit.Rand(seed), testID(t))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseDistributionMessage(dm.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Process(parsed); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

func encrypt(t testing.TB, r *Record, rnd string, pt string) []byte {
	t.Helper()
	b, err := r.Encrypt(testkit.Rand(rnd), []byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustMarshal(t testing.TB, r *Record) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	alice, bob := pair(t, "round trip")
	large := make([]byte, 1024)
	testkit.Rand("large").Read(large)
	for _, pt := range [][]byte{[]byte("space camp?"), {}, bytes.Repeat([]byte{'x'}, 16), large, make([]byte, 64<<10)} {
		b, err := alice.Encrypt(testkit.Rand("sig"), pt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := bob.Decrypt(b)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d bytes: got %d, %v", len(pt), len(got), err)
		}
	}
}

// TestNoRecvSession is libsignal's group_no_recv_session and
// group_no_send_session.
func TestNoSession(t *testing.T) {
	alice, _ := pair(t, "no session")
	b := encrypt(t, alice, "sig", "space camp?")
	var bob Record
	if _, err := bob.Decrypt(b); !errors.Is(err, ErrNoState) {
		t.Fatalf("decrypt without state: %v", err)
	}
	if _, err := bob.Encrypt(testkit.Rand("x"), []byte("space camp?")); !errors.Is(err, ErrNoState) {
		t.Fatalf("encrypt without state: %v", err)
	}
	if _, err := bob.MarshalBinary(); !errors.Is(err, ErrNoState) {
		t.Fatalf("marshal empty record: %v", err)
	}
	if _, ok := bob.DistributionID(); ok {
		t.Fatal("empty record has a distribution")
	}
}

// TestBasicRatchet is libsignal's group_basic_ratchet.
func TestBasicRatchet(t *testing.T) {
	alice, bob := pair(t, "basic ratchet")
	c1 := encrypt(t, alice, "1", "swim camp")
	c2 := encrypt(t, alice, "2", "robot camp")
	c3 := encrypt(t, alice, "3", "ninja camp")
	for _, s := range []struct {
		c       []byte
		want    string
		wantErr error
	}{
		{c1, "swim camp", nil},
		{c1, "", ErrDuplicate},
		{c3, "ninja camp", nil},
		{c2, "robot camp", nil},
		{c2, "", ErrDuplicate},
		{c3, "", ErrDuplicate},
	} {
		before := mustMarshal(t, bob)
		pt, err := bob.Decrypt(s.c)
		if !errors.Is(err, s.wantErr) || string(pt) != s.want {
			t.Fatalf("got %q, %v; want %q, %v", pt, err, s.want, s.wantErr)
		}
		if err != nil && !bytes.Equal(before, mustMarshal(t, bob)) {
			t.Fatal("failed decrypt changed the record")
		}
	}
}

// TestLateJoin is libsignal's group_late_join: Bob gets the distribution
// message made before Alice's first 100 messages.
func TestLateJoin(t *testing.T) {
	alice := new(Record)
	dm, err := alice.Create(testkit.Rand("late join"), testID(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		encrypt(t, alice, "x", fmt.Sprintf("nefarious plotting %d/100", i))
	}
	var bob Record
	if err := bob.Process(dm); err != nil {
		t.Fatal(err)
	}
	if pt, err := bob.Decrypt(encrypt(t, alice, "x", "welcome bob")); err != nil || string(pt) != "welcome bob" {
		t.Fatalf("%q, %v", pt, err)
	}
	// A member who joins now gets the current iteration and cannot read
	// older messages.
	dm2, err := alice.Create(testkit.Rand("unused"), testID(t))
	if err != nil || dm2.Iteration != 101 || dm2.ChainID != dm.ChainID || dm2.ChainKey == dm.ChainKey {
		t.Fatalf("Create on existing record: %+v, %v", dm2, err)
	}
}

// TestOutOfOrder is libsignal's group_out_of_order.
func TestOutOfOrder(t *testing.T) {
	alice, bob := pair(t, "out of order")
	var cts [][]byte
	for i := range 100 {
		cts = append(cts, encrypt(t, alice, "x", fmt.Sprintf("nefarious plotting %02d/100", i)))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(cts), func(i, j int) { cts[i], cts[j] = cts[j], cts[i] })
	var pts []string
	for _, c := range cts {
		pt, err := bob.Decrypt(c)
		if err != nil {
			t.Fatal(err)
		}
		pts = append(pts, string(pt))
	}
	slices.Sort(pts)
	for i, pt := range pts {
		if want := fmt.Sprintf("nefarious plotting %02d/100", i); pt != want {
			t.Fatalf("%q, want %q", pt, want)
		}
	}
	if n := len(bob.states[0].skipped); n != 0 {
		t.Fatalf("%d keys left after every message arrived", n)
	}
}

// advance moves a sending record's chain n steps without sending.
func advance(t testing.TB, r *Record, n int) {
	t.Helper()
	for range n {
		var err error
		if r.states[0].chain, err = r.states[0].chain.next(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTooFarAhead is libsignal's group_too_far_in_the_future, at the exact
// boundary.
func TestTooFarAhead(t *testing.T) {
	alice, bob := pair(t, "too far")
	advance(t, alice, MaxForwardJump+1)
	over := encrypt(t, alice, "x", "you got the plan?")
	before := mustMarshal(t, bob)
	if _, err := bob.Decrypt(over); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("jump of %d: %v", MaxForwardJump+1, err)
	}
	if !bytes.Equal(before, mustMarshal(t, bob)) {
		t.Fatal("rejected message changed the record")
	}

	alice, bob = pair(t, "too far")
	advance(t, alice, MaxForwardJump)
	if pt, err := bob.Decrypt(encrypt(t, alice, "x", "just in time")); err != nil || string(pt) != "just in time" {
		t.Fatalf("jump of %d: %q, %v", MaxForwardJump, pt, err)
	}
	if n := len(bob.states[0].skipped); n != MaxMessageKeys {
		t.Fatalf("%d skipped keys kept", n)
	}
	if got := bob.states[0].skipped[0].iteration; got != MaxForwardJump-MaxMessageKeys {
		t.Fatalf("oldest kept key is %d", got)
	}
}

// TestHugeIterationIsCheap checks that an authenticated message claiming
// iteration 2³²−1 is refused before any chain step: it allocates no more
// than parsing and refusing does.
func TestHugeIterationIsCheap(t *testing.T) {
	_, bob := pair(t, "huge")
	// Sign with the chain's real signing key, as a malicious member could
	// not, to get past the signature check.
	alice, _ := pair(t, "huge")
	m, err := NewMessage(testkit.Rand("x"), alice.states[0].private, testID(t), alice.states[0].chainID, ^uint32(0), make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	b := m.Bytes()
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := bob.Decrypt(b); !errors.Is(err, ErrTooFarAhead) {
			t.Fatal(err)
		}
	})
	if allocs > 20 {
		t.Fatalf("%v allocations to refuse", allocs)
	}
}

// TestMessageKeyLimit is libsignal's group_message_key_limit.
func TestMessageKeyLimit(t *testing.T) {
	alice, bob := pair(t, "key limit")
	var cts [][]byte
	for range 2010 {
		cts = append(cts, encrypt(t, alice, "x", "too many messages"))
	}
	for _, i := range []int{1000, 2009} {
		if pt, err := bob.Decrypt(cts[i]); err != nil || string(pt) != "too many messages" {
			t.Fatalf("message %d: %q, %v", i, pt, err)
		}
	}
	// Skipped: 0…999 and 1001…2008 = 2008 keys; the oldest 8 were dropped.
	for i := range 8 {
		if _, err := bob.Decrypt(cts[i]); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if _, err := bob.Decrypt(cts[8]); err != nil {
		t.Fatalf("message 8: %v", err)
	}
}

// TestLongJump checks that a jump longer than MaxMessageKeys keeps exactly
// the newest MaxMessageKeys keys, as libsignal's add-then-trim does.
func TestLongJump(t *testing.T) {
	alice, bob := pair(t, "long jump")
	if _, err := bob.Decrypt(encrypt(t, alice, "x", "first")); err != nil {
		t.Fatal(err)
	}
	var cts [][]byte
	for range 2501 {
		cts = append(cts, encrypt(t, alice, "x", "m"))
	}
	if _, err := bob.Decrypt(cts[2500]); err != nil { // iteration 2501
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(cts[499]); !errors.Is(err, ErrDuplicate) { // iteration 500
		t.Fatalf("iteration 500: %v", err)
	}
	if _, err := bob.Decrypt(cts[500]); err != nil { // iteration 501
		t.Fatalf("iteration 501: %v", err)
	}
}

// TestTamper flips every bit of a message and truncates it at every length:
// each variant is refused and leaves the record exactly as it was.
func TestTamper(t *testing.T) {
	alice, bob := pair(t, "tamper")
	good := encrypt(t, alice, "x", "attack at dawn, bring snacks")
	before := mustMarshal(t, bob)
	check := func(name string, b []byte) {
		t.Helper()
		if pt, err := bob.Decrypt(b); err == nil {
			t.Fatalf("%s: decrypted %q", name, pt)
		}
		if !bytes.Equal(before, mustMarshal(t, bob)) {
			t.Fatalf("%s: record changed", name)
		}
	}
	for i := range len(good) {
		for bit := range 8 {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			check(fmt.Sprintf("byte %d bit %d", i, bit), b)
		}
		check(fmt.Sprintf("prefix %d", i), good[:i])
	}
	check("extended", append(bytes.Clone(good), 0))
	if pt, err := bob.Decrypt(good); err != nil || string(pt) != "attack at dawn, bring snacks" {
		t.Fatalf("untampered: %q, %v", pt, err)
	}
}

// TestForgery checks that another member, who knows the chain key but not
// the signing key, cannot send in Alice's name, even with a message that
// would decrypt.
func TestForgery(t *testing.T) {
	alice, bob := pair(t, "forgery")
	st := &alice.states[0]
	mk := st.chain.seed()
	iv, key := mk.keys()
	mallory, _ := keys.GenerateKeyPair(testkit.Rand("mallory"))
	ct, err := encryptCBC(&key, &iv, []byte("send money"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMessage(testkit.Rand("x"), mallory.Private, testID(t), st.chainID, 0, ct)
	if err != nil {
		t.Fatal(err)
	}
	before := mustMarshal(t, bob)
	if _, err := bob.Decrypt(m.Bytes()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged message: %v", err)
	}
	if !bytes.Equal(before, mustMarshal(t, bob)) {
		t.Fatal("record changed")
	}
	// Authentic but undecryptable (bad padding): refused, record unchanged.
	m, err = NewMessage(testkit.Rand("x"), st.private, testID(t), st.chainID, 0, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(m.Bytes()); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("bad padding: %v", err)
	}
	if !bytes.Equal(before, mustMarshal(t, bob)) {
		t.Fatal("record changed")
	}
}

func TestWrongChainOrDistribution(t *testing.T) {
	alice, bob := pair(t, "wrong")
	other, _ := pair(t, "other chain")
	for name, b := range map[string][]byte{
		"other chain": encrypt(t, other, "x", "hi"),
	} {
		if _, err := bob.Decrypt(b); !errors.Is(err, ErrNoState) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	st := &alice.states[0]
	m, err := NewMessage(testkit.Rand("x"), st.private, DistributionID{1}, st.chainID, 0, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(m.Bytes()); !errors.Is(err, ErrNoState) {
		t.Fatalf("other distribution: %v", err)
	}
	dm, _ := other.Create(nil, testID(t))
	dm.DistributionID = DistributionID{1}
	if err := bob.Process(dm); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("Process for another distribution: %v", err)
	}
	if _, err := alice.Create(testkit.Rand("x"), DistributionID{1}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("Create for another distribution: %v", err)
	}
	if err := bob.Process(DistributionMessage{DistributionID: testID(t)}); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("Process without signing key: %v", err)
	}
}

func TestEncryptErrors(t *testing.T) {
	alice, bob := pair(t, "encrypt errors")
	if _, err := bob.Encrypt(testkit.Rand("x"), []byte("hi")); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("encrypt on a receiving chain: %v", err)
	}
	alice.states[0].chain.iteration = ^uint32(0)
	before := mustMarshal(t, alice)
	if _, err := alice.Encrypt(testkit.Rand("x"), []byte("hi")); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("encrypt on an exhausted chain: %v", err)
	}
	if !bytes.Equal(before, mustMarshal(t, alice)) {
		t.Fatal("record changed")
	}
	// A short rand fails cleanly.
	if _, err := new(Record).Create(bytes.NewReader(make([]byte, 10)), testID(t)); err == nil {
		t.Fatal("Create with short rand succeeded")
	}
	_, bob = pair(t, "encrypt errors")
	if _, err := bob.Encrypt(bytes.NewReader(nil), []byte("hi")); err == nil {
		t.Fatal("Encrypt with empty rand succeeded")
	}
}

func TestCreate(t *testing.T) {
	for i := range 20 {
		var r Record
		dm, err := r.Create(testkit.Rand(fmt.Sprint("create ", i)), testID(t))
		if err != nil {
			t.Fatal(err)
		}
		if dm.ChainID >= 1<<31 || dm.Iteration != 0 || dm.DistributionID != testID(t) {
			t.Fatalf("distribution message %+v", dm)
		}
		if !r.states[0].private.PublicKey().Equal(dm.SigningKey) {
			t.Fatal("signing key pair mismatch")
		}
		again, err := r.Create(testkit.Rand("other"), testID(t))
		if err != nil || !bytes.Equal(again.Marshal(), dm.Marshal()) {
			t.Fatalf("second Create: %v", err)
		}
	}
}

// The add-state tests of libsignal's sender_keys.rs.
func TestProcessStates(t *testing.T) {
	id := testID(t)
	key := func(seed string) keys.PublicKey {
		kp, err := keys.GenerateKeyPair(testkit.Rand(seed))
		if err != nil {
			t.Fatal(err)
		}
		return kp.Public
	}
	dm := func(k keys.PublicKey, chain ChainID, ck byte) DistributionMessage {
		return DistributionMessage{DistributionID: id, ChainID: chain, Iteration: 1, ChainKey: ChainKey{ck}, SigningKey: k}
	}
	process := func(r *Record, ms ...DistributionMessage) {
		t.Helper()
		for _, m := range ms {
			if err := r.Process(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	type entry struct {
		chain ChainID
		key   keys.PublicKey
		ck    byte
	}
	expect := func(r *Record, want ...entry) {
		t.Helper()
		if len(r.states) != len(want) {
			t.Fatalf("%d states, want %d", len(r.states), len(want))
		}
		for i, w := range want {
			s := &r.states[i]
			if s.chainID != w.chain || !s.signing.Equal(w.key) || s.chain.key[0] != w.ck {
				t.Fatalf("state %d: chain %d key %v ck %x; want %d %v %x", i, s.chainID, s.signing, s.chain.key[0], w.chain, w.key, w.ck)
			}
		}
	}
	k1, k2, k3, k4, k5, k6 := key("1"), key("2"), key("3"), key("4"), key("5"), key("6")

	t.Run("single", func(t *testing.T) {
		var r Record
		process(&r, dm(k1, 1, 1))
		expect(&r, entry{1, k1, 1})
	})
	t.Run("second", func(t *testing.T) {
		var r Record
		process(&r, dm(k1, 1, 1), dm(k2, 2, 2))
		expect(&r, entry{2, k2, 2}, entry{1, k1, 1})
	})
	t.Run("oldest ejected", func(t *testing.T) {
		var r Record
		process(&r, dm(k1, 1, 1), dm(k2, 2, 2), dm(k3, 3, 3), dm(k4, 4, 4), dm(k5, 5, 5))
		expect(&r, entry{5, k5, 5}, entry{4, k4, 4}, entry{3, k3, 3}, entry{2, k2, 2}, entry{1, k1, 1})
		process(&r, dm(k6, 6, 6))
		expect(&r, entry{6, k6, 6}, entry{5, k5, 5}, entry{4, k4, 4}, entry{3, k3, 3}, entry{2, k2, 2})
	})
	t.Run("same key and chain keeps first data", func(t *testing.T) {
		var r Record
		process(&r, dm(k1, 1, 1), dm(k1, 1, 2))
		expect(&r, entry{1, k1, 1})
	})
	t.Run("same chain other key replaces", func(t *testing.T) {
		var r Record
		process(&r, dm(k1, 1, 1), dm(k2, 1, 2))
		expect(&r, entry{1, k2, 2})
	})
	t.Run("same key and chain becomes newest", func(t *testing.T) {
		var r Record
		process(&r, dm(k1, 1, 1), dm(k2, 2, 2))
		expect(&r, entry{2, k2, 2}, entry{1, k1, 1})
		process(&r, dm(k1, 1, 3))
		expect(&r, entry{1, k1, 1}, entry{2, k2, 2})
	})
}

// TestRotation: a sender that re-keys (new record, same distribution) is
// still readable on its old chain for messages in flight.
func TestRotation(t *testing.T) {
	alice, bob := pair(t, "rotation old")
	old := encrypt(t, alice, "x", "old chain")
	alice2 := new(Record)
	dm, err := alice2.Create(testkit.Rand("rotation new"), testID(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Process(dm); err != nil {
		t.Fatal(err)
	}
	if pt, err := bob.Decrypt(encrypt(t, alice2, "x", "new chain")); err != nil || string(pt) != "new chain" {
		t.Fatalf("%q, %v", pt, err)
	}
	if pt, err := bob.Decrypt(old); err != nil || string(pt) != "old chain" {
		t.Fatalf("%q, %v", pt, err)
	}
	if ids := bob.ChainIDs(); len(ids) != 2 || ids[0] != dm.ChainID {
		t.Fatalf("chain ids %v", ids)
	}
}

func TestRecordStorage(t *testing.T) {
	alice, bob := pair(t, "storage")
	var cts [][]byte
	for i := range 10 {
		cts = append(cts, encrypt(t, alice, "x", fmt.Sprint("message ", i)))
	}
	for _, i := range []int{5, 2} {
		if _, err := bob.Decrypt(cts[i]); err != nil {
			t.Fatal(err)
		}
	}
	for name, r := range map[string]*Record{"sender": alice, "receiver": bob} {
		t.Run(name, func(t *testing.T) {
			b := mustMarshal(t, r)
			var got Record
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(mustMarshal(t, &got), b) {
				t.Fatal("re-marshal differs")
			}
			lib := r.Libsignal()
			if !bytes.Equal(lib, b[1:len(b)-2-DistributionIDSize]) {
				t.Fatal("libsignal form is not the stored body")
			}
			fromLib, err := NewRecordFromLibsignal(testID(t), lib)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(mustMarshal(t, fromLib), b) {
				t.Fatal("libsignal round trip differs")
			}
			if got.String() != r.String() {
				t.Fatalf("%s != %s", got.String(), r.String())
			}
		})
	}
	// The reloaded records carry on where the originals were.
	var alice2, bob2 Record
	if err := alice2.UnmarshalBinary(mustMarshal(t, alice)); err != nil {
		t.Fatal(err)
	}
	if err := bob2.UnmarshalBinary(mustMarshal(t, bob)); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 3, 4, 6, 7, 8, 9} {
		if pt, err := bob2.Decrypt(cts[i]); err != nil || string(pt) != fmt.Sprint("message ", i) {
			t.Fatalf("message %d: %q, %v", i, pt, err)
		}
	}
	if pt, err := bob2.Decrypt(encrypt(t, &alice2, "x", "after reload")); err != nil || string(pt) != "after reload" {
		t.Fatalf("%q, %v", pt, err)
	}
	c := bob2.Clone()
	if !bytes.Equal(mustMarshal(t, c), mustMarshal(t, &bob2)) {
		t.Fatal("clone differs")
	}
	if _, err := c.Decrypt(encrypt(t, &alice2, "x", "clone")); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(mustMarshal(t, c), mustMarshal(t, &bob2)) {
		t.Fatal("clone shares state")
	}
}

func TestRecordString(t *testing.T) {
	alice, _ := pair(t, "string")
	for _, s := range []string{alice.String(), fmt.Sprintf("%v", alice), fmt.Sprintf("%#v", alice), fmt.Sprintf("%+v", alice)} {
		ck := alice.states[0].chain.key
		if bytes.Contains([]byte(s), []byte(fmt.Sprintf("%x", ck[:4]))) || !bytes.Contains([]byte(s), []byte(testDistributionID)) {
			t.Fatalf("String() = %s", s)
		}
	}
	if s := new(Record).String(); s != "senderkey.Record{empty}" {
		t.Fatal(s)
	}
}

// Fixtures: a receiving record with two chains and skipped keys, and a
// message it can still decrypt, as written by record format version 1.
// Regenerate (only if the format changes, as a new version) with
// go test -run TestRecordFixture -update.
const (
	fixtureRecord  = "testdata/record-v1.bin"
	fixtureMessage = "testdata/record-v1-message.bin"
	fixtureText    = "fixture message 1"
)

func TestRecordFixture(t *testing.T) {
	if *update {
		alice, bob := pair(t, "fixture old")
		var cts [][]byte
		for i := range 4 {
			cts = append(cts, encrypt(t, alice, "x", fmt.Sprint("fixture message ", i)))
		}
		for _, i := range []int{3, 0} {
			if _, err := bob.Decrypt(cts[i]); err != nil {
				t.Fatal(err)
			}
		}
		alice2 := new(Record)
		dm, err := alice2.Create(testkit.Rand("fixture new"), testID(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := bob.Process(dm); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixtureRecord, mustMarshal(t, bob), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fixtureMessage, cts[1], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(fixtureRecord)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := os.ReadFile(fixtureMessage)
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustMarshal(t, &r), b) {
		t.Fatal("fixture does not re-marshal to itself")
	}
	if id, ok := r.DistributionID(); !ok || id != testID(t) {
		t.Fatalf("distribution %v", id)
	}
	if len(r.ChainIDs()) != 2 {
		t.Fatalf("chains %v", r.ChainIDs())
	}
	if pt, err := r.Decrypt(msg); err != nil || string(pt) != fixtureText {
		t.Fatalf("fixture message: %q, %v", pt, err)
	}
	if _, err := r.Decrypt(msg); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("fixture message again: %v", err)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	alice, bob := pair(t, "rejects")
	for range 3 {
		encrypt(t, alice, "x", "m")
	}
	if _, err := bob.Decrypt(encrypt(t, alice, "x", "m")); err != nil {
		t.Fatal(err)
	}
	good := mustMarshal(t, bob)
	goodSender := mustMarshal(t, alice)
	lib := libsignalSenderRecord(t, 0, make([]byte, 32))
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version only", []byte{recordVersion1}},
		{"version 2", append([]byte{2}, good[1:]...)},
		{"no distribution id", good[:len(good)-2-DistributionIDSize]},
		{"id without states", append([]byte{recordVersion1}, good[len(good)-2-DistributionIDSize:]...)},
		{"unknown field", append(bytes.Clone(good), 0x20, 0x01)},
		{"mismatched private key", append(append([]byte{recordVersion1}, libsignalSenderRecordWithPrivate(t, bytes.Repeat([]byte{0x40}, 32))...), good[len(good)-2-DistributionIDSize:]...)},
	}
	for i := range len(good) {
		tests = append(tests, struct {
			name string
			b    []byte
		}{fmt.Sprint("prefix ", i), good[:i]})
	}
	for i := range len(goodSender) {
		tests = append(tests, struct {
			name string
			b    []byte
		}{fmt.Sprint("sender prefix ", i), goodSender[:i]})
	}
	// Too many states: six copies of a valid state.
	state := bob.Libsignal()
	six := []byte{recordVersion1}
	for range MaxStates + 1 {
		six = append(six, state...)
	}
	tests = append(tests, struct {
		name string
		b    []byte
	}{"too many states", append(six, good[len(good)-2-DistributionIDSize:]...)})
	for _, tc := range tests {
		var r Record
		r.id = DistributionID{9}
		if err := r.UnmarshalBinary(tc.b); !errors.Is(err, ErrRecord) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if r.id != (DistributionID{9}) || r.states != nil {
			t.Errorf("%s: record changed on error", tc.name)
		}
	}
	if _, err := NewRecordFromLibsignal(testID(t), lib); err != nil {
		t.Fatalf("valid libsignal record: %v", err)
	}
	if _, err := NewRecordFromLibsignal(testID(t), good[1:]); !errors.Is(err, ErrRecord) {
		t.Fatalf("libsignal record with Sotto's field: %v", err)
	}
	if r, err := NewRecordFromLibsignal(testID(t), nil); err != nil || len(r.ChainIDs()) != 0 {
		t.Fatalf("empty libsignal record: %v", err)
	}
}

// libsignalSenderRecordWithPrivate is libsignalSenderRecord with another
// private key in place of the one matching the public key.
func libsignalSenderRecordWithPrivate(t testing.TB, private []byte) []byte {
	t.Helper()
	b := libsignalSenderRecord(t, 0, make([]byte, 32))
	i := bytes.Index(b, testKeyPair(t).Private.Bytes())
	copy(b[i:], private)
	return b
}

func TestTooManyMessageKeys(t *testing.T) {
	alice, bob := pair(t, "too many keys")
	advance(t, alice, MaxMessageKeys)
	if _, err := bob.Decrypt(encrypt(t, alice, "x", "m")); err != nil {
		t.Fatal(err)
	}
	good := mustMarshal(t, bob)
	var r Record
	if err := r.UnmarshalBinary(good); err != nil {
		t.Fatalf("record with %d keys: %v", MaxMessageKeys, err)
	}
	// One more key than allowed.
	bob.states[0].skipped = append(bob.states[0].skipped, messageKey{iteration: 1 << 20})
	if err := r.UnmarshalBinary(mustMarshal(t, bob)); !errors.Is(err, ErrRecord) {
		t.Fatalf("record with %d keys: %v", MaxMessageKeys+1, err)
	}
}
