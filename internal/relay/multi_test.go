package relay

import (
	"context"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/access"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/senderkey"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// TestSendMulti: one sealed-sender v2 upload of a group message reaches
// every device of every recipient, split by the server; a wrong combined
// access key and a stale device list are refused.
func TestSendMulti(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice")
	recipients := []*device{e.register("bob"), e.register("carol"), e.register("dave")}
	ctx := context.Background()

	var group senderkey.Record
	skdm, err := group.Create(alice.rand, senderkey.DistributionID{9})
	if err != nil {
		t.Fatal(err)
	}
	contents, err := group.Encrypt(alice.rand, []byte("to the group"))
	if err != nil {
		t.Fatal(err)
	}
	certBytes := do(t, alice.authConn, &wirepb.GetSenderCertificate{}).GetSenderCertificate().Certificate
	cert, _ := sealed.ParseSenderCertificate(certBytes)
	usmc, err := sealed.NewUSMC(sealed.TypeSenderKey, cert, contents, sealed.HintResendable, []byte("group-id"))
	if err != nil {
		t.Fatal(err)
	}
	var rs []sealed.Recipient
	var keys [][access.KeySize]byte
	for _, r := range recipients {
		rs = append(rs, sealed.Recipient{ServiceID: sealed.ACI(r.account), IdentityKey: r.identity.Public,
			Devices: []sealed.Device{{ID: sealed.DeviceID(r.id), RegistrationID: sealed.RegistrationID(r.regID)}}})
		keys = append(keys, r.profile)
	}
	payload, err := sealed.SealV2(alice.rand, usmc, rs, nil, alice.identity)
	if err != nil {
		t.Fatal(err)
	}
	wrong := access.Combine(keys[:2]...)
	if _, err := alice.anon.Do(ctx, &wirepb.SendMulti{Payload: payload, AccessKey: wrong[:]}); wsclient.Code(err) != wirepb.Code_FORBIDDEN {
		t.Fatalf("wrong combined access key: %v", err)
	}
	combined := access.Combine(keys...)
	do(t, alice.anon, &wirepb.SendMulti{Payload: payload, AccessKey: combined[:]})

	for _, r := range recipients {
		var rec senderkey.Record
		if err := rec.Process(skdm); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
	wait:
		for {
			select {
			case p := <-r.authConn.Pushes():
				envs := p.GetEnvelopes()
				if envs == nil {
					continue
				}
				local := sealed.Local{Identity: r.identity, ACI: sealed.ACI(r.account), Device: sealed.DeviceID(r.id)}
				sender, u, err := sealed.Unseal(envs.Envelopes[0].Content, local, e.certs.Trust(), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if sender.UUID != sealed.ACI(alice.account).String() || u.Type() != sealed.TypeSenderKey {
					t.Fatalf("sender %s, type %d", sender.UUID, u.Type())
				}
				pt, err := rec.Decrypt(u.Contents())
				if err != nil || string(pt) != "to the group" {
					t.Fatalf("decrypted %q, %v", pt, err)
				}
				break wait
			case <-deadline:
				t.Fatal("group message not delivered")
			}
		}
	}

	// A stale registration id is reported per recipient.
	rs[1].Devices[0].RegistrationID++
	payload, _ = sealed.SealV2(alice.rand, usmc, rs, nil, alice.identity)
	_, err = alice.anon.Do(ctx, &wirepb.SendMulti{Payload: payload, AccessKey: combined[:]})
	var se *wsclient.StatusError
	if !asStatus(err, &se) || se.Code != wirepb.Code_MISMATCHED_DEVICES || len(se.Status.Mismatches) != 1 || len(se.Status.Mismatches[0].Stale) != 1 {
		t.Fatalf("stale device: %v", err)
	}
}
