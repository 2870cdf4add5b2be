package interop

import (
	"bytes"
	"context"
	"testing"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/oracle"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/senderkey"
	"github.com/sotto-chat/sotto/internal/session"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/x3dh"
)

// The protocol benchmarks time Sotto and libsignal (through the oracle) on
// the same operations; BENCHMARKS.md records both:
//
//	go test -run '^$' -bench Protocol ./internal/interop
//
// The libsignal side is timed inside Node (process.hrtime) and reported as
// its ns/op; it includes the cost of libsignal's store callbacks into
// JavaScript, which a native caller would not pay.

const benchPayload = 1024

func libsignalBench(b *testing.B, op oracle.BenchOp) {
	o := oracle.Start(b)
	res, err := o.Bench(context.Background(), op, max(b.N, 1))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.NsPerOp, "ns/op")
}

func sottoBundle(b *testing.B, s *sotto, kem keys.KEMType) *x3dh.Bundle {
	ob := s.bundle(true)
	xb := fromOracle(b, ob)
	if kem != keys.Kyber1024 {
		kpk, err := keys.GenerateKEMPreKey(s.rand, s.local.Identity.Private, kem, 77, now)
		if err != nil {
			b.Fatal(err)
		}
		s.pre.KEM[kpk.ID] = kpk
		xb.KEMPreKeyID, xb.KEMPreKey, xb.KEMPreKeySignature = kpk.ID, kpk.Key.Public, kpk.Signature[:]
	}
	return xb
}

func BenchmarkProtocol(b *testing.B) {
	b.Run("PQXDHAlice/sotto", func(b *testing.B) {
		alice := newSotto(b, "alice", 1, nil)
		bob := newSotto(b, "bob", 1, nil)
		bundle := sottoBundle(b, bob, keys.Kyber1024)
		for b.Loop() {
			var r session.Record
			if err := r.Initiate(alice.rand, alice.local.Identity, 1, bundle, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PQXDHAlice/libsignal", func(b *testing.B) { libsignalBench(b, oracle.BenchPQXDHAlice) })

	b.Run("PQXDHBob/sotto", func(b *testing.B) {
		alice := newSotto(b, "alice", 1, nil)
		bob := newSotto(b, "bob", 1, nil)
		bundle := sottoBundle(b, bob, keys.Kyber1024)
		payload := bytes.Repeat([]byte{'a'}, benchPayload)
		var r session.Record
		if err := r.Initiate(alice.rand, alice.local.Identity, 1, bundle, now); err != nil {
			b.Fatal(err)
		}
		_, first, err := r.Encrypt(payload, now)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			pm, err := ratchet.ParsePreKeyMessage(first)
			if err != nil {
				b.Fatal(err)
			}
			var rb session.Record
			if _, err := rb.DecryptPreKey(bob.rand, &bob.local, pm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PQXDHBob/libsignal", func(b *testing.B) { libsignalBench(b, oracle.BenchPQXDHBob) })

	b.Run("EncryptDecrypt1KiB/sotto", func(b *testing.B) {
		alice := newSotto(b, "alice", 1, nil)
		bob := newSotto(b, "bob", 1, nil)
		alice.initiate(bob.addr, bob.bundle(true))
		bob.mustDecrypt(alice.addr, alice.encrypt(bob.addr, "hi"), "hi")
		alice.mustDecrypt(bob.addr, bob.encrypt(alice.addr, "hi"), "hi")
		ra, rb := alice.record(bob.addr), bob.record(alice.addr)
		payload := bytes.Repeat([]byte{'a'}, benchPayload)
		b.SetBytes(benchPayload)
		for b.Loop() {
			_, body, err := ra.Encrypt(payload, now)
			if err != nil {
				b.Fatal(err)
			}
			m, err := ratchet.ParseMessage(body)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := rb.Decrypt(bob.rand, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EncryptDecrypt1KiB/libsignal", func(b *testing.B) { libsignalBench(b, oracle.BenchEncryptDecrypt1K) })

	b.Run("SealedV2To1024/sotto", func(b *testing.B) {
		rand := testkit.Rand("bench v2")
		p := newPKI(b, "bench v2")
		sender := newSotto(b, "bench sender", 1, nil)
		cert := p.senderCert(b, sender.addr.Name, 1, sender.local.Identity.Public)
		var group senderkey.Record
		if _, err := group.Create(rand, senderkey.DistributionID{2}); err != nil {
			b.Fatal(err)
		}
		contents, err := group.Encrypt(rand, bytes.Repeat([]byte{'a'}, benchPayload))
		if err != nil {
			b.Fatal(err)
		}
		usmc, err := sealed.NewUSMC(sealed.TypeSenderKey, cert, contents, sealed.HintResendable, bytes.Repeat([]byte{7}, 32))
		if err != nil {
			b.Fatal(err)
		}
		recipients := make([]sealed.Recipient, 1024)
		for i := range recipients {
			id, _ := keys.GenerateKeyPair(rand)
			var u [16]byte
			rand.Read(u[:])
			recipients[i] = sealed.Recipient{
				ServiceID: sealed.ACI(u), IdentityKey: id.Public,
				Devices: []sealed.Device{{ID: 1, RegistrationID: sealed.RegistrationID(i + 1)}},
			}
		}
		for b.Loop() {
			if _, err := sealed.SealV2(rand, usmc, recipients, nil, sender.local.Identity); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SealedV2To1024/libsignal", func(b *testing.B) { libsignalBench(b, oracle.BenchSealedV2x1024) })

	b.Run("SenderKeyEncrypt1KiB/sotto", func(b *testing.B) {
		rand := testkit.Rand("bench")
		var r senderkey.Record
		if _, err := r.Create(rand, senderkey.DistributionID{1}); err != nil {
			b.Fatal(err)
		}
		payload := bytes.Repeat([]byte{'a'}, benchPayload)
		b.SetBytes(benchPayload)
		for b.Loop() {
			if _, err := r.Encrypt(rand, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SenderKeyEncrypt1KiB/libsignal", func(b *testing.B) { libsignalBench(b, oracle.BenchSenderKeyEncrypt) })
}
