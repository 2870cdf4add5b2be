package interop

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sotto-chat/sotto/internal/oracle"
)

const messagesEachWay = 1000

func newLibsignal(t *testing.T, o *oracle.Oracle, seed string) *oracle.Party {
	t.Helper()
	p, err := o.NewParty(context.Background(), oracle.PartyConfig{Name: uuidFor(seed, 1), DeviceID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// converse exchanges messagesEachWay messages in each direction with
// interleaved replies (random runs from either side).
func converse(t *testing.T, s *sotto, l *oracle.Party, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	sent := [2]int{}
	for sent[0] < messagesEachWay || sent[1] < messagesEachWay {
		dir := rng.IntN(2)
		if sent[dir] >= messagesEachWay {
			dir = 1 - dir
		}
		for range 1 + rng.IntN(4) {
			if sent[dir] >= messagesEachWay {
				break
			}
			text := fmt.Sprintf("dir %d message %d %s", dir, sent[dir], string(make([]byte, rng.IntN(300))))
			if dir == 0 {
				libsignalDecrypt(t, l, s.addr, s.encrypt(l.Address(), text), text)
			} else {
				s.mustDecrypt(l.Address(), libsignalEncrypt(t, l, s.addr, text), text)
			}
			sent[dir]++
		}
	}
}

func TestLibsignalSessionSottoInitiates(t *testing.T) {
	o := oracle.Start(t)
	for _, oneTime := range []bool{true, false} {
		t.Run(fmt.Sprintf("oneTimePreKey=%v", oneTime), func(t *testing.T) {
			ctx := context.Background()
			l := newLibsignal(t, o, t.Name())
			s := newSotto(t, t.Name(), 1, nil)
			b, err := l.Bundle(ctx, oneTime)
			if err != nil {
				t.Fatal(err)
			}
			s.initiate(l.Address(), b)
			first := s.encrypt(l.Address(), "hello from Sotto")
			if first.Type != oracle.MessagePreKey || first.Body[0] != 0x44 {
				t.Fatalf("first message: type %d, version byte 0x%02x", first.Type, first.Body[0])
			}
			libsignalDecrypt(t, l, s.addr, first, "hello from Sotto")
			info, err := l.SessionInfo(ctx, s.addr)
			if err != nil {
				t.Fatal(err)
			}
			if info.SessionVersion != 4 || info.RemoteRegistrationID != s.local.RegistrationID {
				t.Fatalf("libsignal's view of the session: %+v", info)
			}
			converse(t, s, l, 1)
		})
	}
}

func TestLibsignalSessionLibsignalInitiates(t *testing.T) {
	o := oracle.Start(t)
	for _, oneTime := range []bool{true, false} {
		t.Run(fmt.Sprintf("oneTimePreKey=%v", oneTime), func(t *testing.T) {
			ctx := context.Background()
			l := newLibsignal(t, o, t.Name())
			s := newSotto(t, t.Name(), 1, nil)
			if err := l.ProcessBundle(ctx, s.addr, s.bundle(oneTime)); err != nil {
				t.Fatal(err)
			}
			first := libsignalEncrypt(t, l, s.addr, "hello from libsignal")
			if first.Type != oracle.MessagePreKey || first.Body[0] != 0x44 {
				t.Fatalf("first message: type %d, version byte 0x%02x", first.Type, first.Body[0])
			}
			s.mustDecrypt(l.Address(), first, "hello from libsignal")
			if oneTime && len(s.pre.EC) != 0 {
				t.Fatal("one-time prekey not consumed")
			}
			if got := s.record(l.Address()).Current().RemoteRegistrationID(); got != l.RegistrationID {
				t.Fatalf("remote registration id %d, want %d", got, l.RegistrationID)
			}
			converse(t, s, l, 2)
		})
	}
}

// TestLibsignalOutOfOrder delivers shuffled windows of 100 messages and a
// skip of 2,000, in both directions.
func TestLibsignalOutOfOrder(t *testing.T) {
	o := oracle.Start(t)
	ctx := context.Background()
	l := newLibsignal(t, o, t.Name())
	s := newSotto(t, t.Name(), 1, nil)
	b, err := l.Bundle(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	s.initiate(l.Address(), b)
	libsignalDecrypt(t, l, s.addr, s.encrypt(l.Address(), "start"), "start")
	s.mustDecrypt(l.Address(), libsignalEncrypt(t, l, s.addr, "ok"), "ok")

	type msg struct {
		c    oracle.Ciphertext
		text string
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 4 {
		var toLib, toSotto []msg
		for i := range 100 {
			text := fmt.Sprintf("round %d to libsignal %d", round, i)
			toLib = append(toLib, msg{s.encrypt(l.Address(), text), text})
			text = fmt.Sprintf("round %d to Sotto %d", round, i)
			toSotto = append(toSotto, msg{libsignalEncrypt(t, l, s.addr, text), text})
		}
		rng.Shuffle(100, func(i, j int) { toLib[i], toLib[j] = toLib[j], toLib[i] })
		rng.Shuffle(100, func(i, j int) { toSotto[i], toSotto[j] = toSotto[j], toSotto[i] })
		for i := range 100 {
			libsignalDecrypt(t, l, s.addr, toLib[i].c, toLib[i].text)
			s.mustDecrypt(l.Address(), toSotto[i].c, toSotto[i].text)
		}
	}

	const skip = 2000
	var toLib, toSotto []msg
	for i := range skip + 1 {
		text := fmt.Sprintf("skip to libsignal %d", i)
		toLib = append(toLib, msg{s.encrypt(l.Address(), text), text})
		text = fmt.Sprintf("skip to Sotto %d", i)
		toSotto = append(toSotto, msg{libsignalEncrypt(t, l, s.addr, text), text})
	}
	// The last first (a jump of 2,000), then the rest newest to oldest.
	for i := skip; i >= 0; i-- {
		libsignalDecrypt(t, l, s.addr, toLib[i].c, toLib[i].text)
		s.mustDecrypt(l.Address(), toSotto[i].c, toSotto[i].text)
	}
	// Duplicates are refused on both sides.
	if _, err := l.Decrypt(ctx, s.addr, toLib[5].c); err == nil {
		t.Fatal("libsignal accepted a duplicate")
	}
	if _, err := s.decrypt(l.Address(), toSotto[5].c); err == nil {
		t.Fatal("Sotto accepted a duplicate")
	}
}

// TestLibsignalBundleSignaturesEnforced: each library refuses the other's
// bundle when a prekey signature is wrong.
func TestLibsignalBundleSignaturesEnforced(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	l := newLibsignal(t, o, t.Name())
	s := newSotto(t, t.Name(), 1, nil)

	for _, which := range []string{"signed", "kyber"} {
		b, err := l.Bundle(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if which == "signed" {
			b.SignedPreKeySignature[3] ^= 1
		} else {
			b.KyberPreKeySignature[3] ^= 1
		}
		if err := s.record(l.Address()).Initiate(s.rand, s.local.Identity, 1, fromOracle(t, b), now); err == nil {
			t.Fatalf("Sotto accepted a libsignal bundle with a bad %s prekey signature", which)
		}
	}

	for _, which := range []string{"signed", "kyber"} {
		sb := s.bundle(true)
		if which == "signed" {
			sb.SignedPreKeySignature[0] ^= 1
		} else {
			sb.KyberPreKeySignature[0] ^= 1
		}
		if err := l.ProcessBundle(ctx, s.addr, sb); err == nil {
			t.Fatalf("libsignal accepted a Sotto bundle with a bad %s prekey signature", which)
		}
	}
}
