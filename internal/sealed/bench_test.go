package sealed

import (
	"testing"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// benchRecipients makes n recipients of one device each; only the first
// few keys are distinct, since key generation would dominate setup and
// SealV2 does the same work for any key.
func benchRecipients(b *testing.B, w *world, n, devices int) []Recipient {
	b.Helper()
	ks := make([]keys.KeyPair, 16)
	for i := range ks {
		ks[i] = genKey(b, w.rand)
	}
	rs := make([]Recipient, n)
	for i := range rs {
		ds := make([]Device, devices)
		for j := range ds {
			ds[j] = Device{ID: DeviceID(j + 1), RegistrationID: RegistrationID(i & 0x3fff)}
		}
		rs[i] = Recipient{ServiceID: ACI(numberedUUID(i)), Devices: ds, IdentityKey: ks[i%len(ks)].Public}
	}
	return rs
}

// BenchmarkSealV2_1024 seals 1 KiB for 1,024 recipient devices: 1,024
// accounts with one device each (the worst case: two agreements per
// device), and 256 accounts with four.
func BenchmarkSealV2_1024(b *testing.B) {
	for _, shape := range []struct {
		name                string
		accounts, perDevice int
	}{{"1024x1", 1024, 1}, {"256x4", 256, 4}} {
		b.Run(shape.name, func(b *testing.B) {
			w := newWorld(b, "bench v2")
			rs := benchRecipients(b, w, shape.accounts, shape.perDevice)
			u := w.usmc(b, TypeSenderKey, make([]byte, 1024))
			rand := testkit.Rand("bench")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SealV2(rand, u, rs, nil, w.sender); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(shape.accounts*shape.perDevice), "µs/device")
		})
	}
}

func BenchmarkParseSentMessage_1024(b *testing.B) {
	w := newWorld(b, "bench parse")
	rs := benchRecipients(b, w, 1024, 1)
	sent, err := SealV2(w.rand, w.usmc(b, TypeSenderKey, make([]byte, 1024)), rs, nil, w.sender)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(sent)))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		m, err := ParseSentMessage(sent)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range m.Recipients {
			if buf, err = m.AppendForRecipient(buf[:0], r.ServiceID); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkSealV1(b *testing.B) {
	w := newWorld(b, "bench v1")
	bob := genKey(b, w.rand)
	u := w.usmc(b, TypeWhisper, make([]byte, 1024))
	b.SetBytes(int64(len(u.raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealV1(w.rand, u, bob.Public, w.sender); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenV1(b *testing.B) {
	w := newWorld(b, "bench open v1")
	bob := genKey(b, w.rand)
	u := w.usmc(b, TypeWhisper, make([]byte, 1024))
	ct, err := SealV1(w.rand, u, bob.Public, w.sender)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(ct)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(ct, bob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenV2(b *testing.B) {
	w := newWorld(b, "bench open v2")
	bob := makeParties(b, w, 1)[0]
	sent, err := SealV2(w.rand, w.usmc(b, TypeWhisper, make([]byte, 1024)), []Recipient{bob.recipient()}, nil, w.sender)
	if err != nil {
		b.Fatal(err)
	}
	m, err := ParseSentMessage(sent)
	if err != nil {
		b.Fatal(err)
	}
	rm, err := m.ForRecipient(bob.id)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(rm)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Open(rm, bob.key); err != nil {
			b.Fatal(err)
		}
	}
}
