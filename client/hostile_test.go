package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/internal/content"
	"github.com/sotto-chat/sotto/client/internal/content/contentpb"
	"github.com/sotto-chat/sotto/internal/benchclient"
	"github.com/sotto-chat/sotto/internal/certs"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/testserver"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// TestHostileSenders: a sender that plays tricks with the protocol gets
// nothing shown. Mallory (a protocol-level client that can seal with any
// certificate and send any bytes) writes to Bob (the client package):
// a genuine message arrives once; the same envelope replayed, Bob's own
// envelope to Carol reflected back to him, sends without or with a wrong
// delivery token (Bob accepts sealed messages from contacts only), and
// messages under a forged or an expired sender certificate all show
// nothing.
func TestHostileSenders(t *testing.T) {
	srv := testserver.New(t)
	ctx := testContext(t)
	// Bob accepts sealed messages only with his delivery token.
	bob := newAccount(t, srv.URL(), func(o *client.Options) { o.ContactsOnly = true })
	carol := newAccount(t, srv.URL())
	if err := carol.SetUsername(ctx, "carol_h"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AddContact(ctx, "carol_h"); err != nil {
		t.Fatal(err)
	}

	dialer, err := benchclient.NewDialer("ws" + strings.TrimPrefix(srv.URL(), "http") + "/v1/websocket")
	if err != nil {
		t.Fatal(err)
	}
	source := benchclient.Source(7)
	mallory, err := benchclient.Register(ctx, dialer, source)
	if err != nil {
		t.Fatal(err)
	}
	authConn, err := mallory.Connect(ctx, dialer)
	if err != nil {
		t.Fatal(err)
	}
	defer authConn.Close()
	if err := mallory.FetchCertificate(ctx, authConn); err != nil {
		t.Fatal(err)
	}
	anon, err := dialer.Dial(ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	// Bob's delivery token: Mallory plays a contact of Bob's (she could
	// be one, or have been one), the strongest position to attack from.
	// (The test reads it from the server's store.)
	bobAcct, err := srv.Store().Account(ctx, store.AccountID(bob.Account()))
	if err != nil {
		t.Fatal(err)
	}
	peer, err := mallory.Initiate(ctx, anon, benchclient.AccountID(bob.Account()), bobAcct.UnidentifiedAccessKey)
	if err != nil {
		t.Fatal(err)
	}
	text := func(s string) []byte {
		var id [16]byte
		rand.Read(id[:])
		b, err := content.Encode(&contentpb.Content{Body: &contentpb.Content_Data{Data: &contentpb.DataMessage{
			Id: id[:], SentAt: time.Now().UnixMilli(), Text: s}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send := func(s *wirepb.Send) error {
		_, err := anon.Do(ctx, s)
		return err
	}
	// shown waits for Bob's next message, or reports none within wait.
	shown := func(wait time.Duration) (string, bool) {
		timeout := time.After(wait)
		for {
			select {
			case e := <-bob.Events():
				if m, ok := e.(client.MessageEvent); ok {
					return m.Message.Text, true
				}
			case <-timeout:
				return "", false
			}
		}
	}

	// A genuine message: shown once.
	genuine, err := peer.Seal(text("genuine"))
	if err != nil {
		t.Fatal(err)
	}
	if err := send(genuine); err != nil {
		t.Fatal(err)
	}
	if got, ok := shown(20 * time.Second); !ok || got != "genuine" {
		t.Fatalf("the genuine message: %q, %v", got, ok)
	}

	// Replayed: the server stores it again (it cannot tell), Bob shows
	// nothing.
	if err := send(genuine); err != nil {
		t.Fatal(err)
	}
	if got, ok := shown(time.Second); ok {
		t.Fatalf("a replayed envelope was shown: %q", got)
	}

	// Reflected: Bob's envelope to Carol, captured from Carol's mailbox
	// while she is offline, sent back to Bob.
	carol.stop()
	if _, err := bob.SendText(ctx, carol.Account(), "for Carol"); err != nil {
		t.Fatal(err)
	}
	envs, err := srv.Store().Read(ctx, store.AccountID(carol.Account()), store.DeviceID(carol.Device()), 0, 10)
	if err != nil || len(envs) == 0 {
		t.Fatalf("Carol's mailbox: %v, %v", envs, err)
	}
	bobID := bob.Account()
	resp, err := anon.Do(ctx, &wirepb.GetBundles{AccountId: bobID[:]})
	if err != nil {
		t.Fatal(err)
	}
	reflect := &wirepb.Send{Recipient: bobID[:], AccessKey: bobAcct.UnidentifiedAccessKey,
		Envelopes: []*wirepb.OutgoingEnvelope{{DeviceId: uint32(bob.Device()),
			RegistrationId: resp.GetBundles().GetBundles()[0].GetRegistrationId(), Content: envs[len(envs)-1].Content}}}
	if err := send(reflect); err != nil {
		t.Fatal(err)
	}
	if got, ok := shown(time.Second); ok {
		t.Fatalf("a reflected envelope was shown: %q", got)
	}

	// No delivery token, and a wrong one: refused by the server.
	for name, key := range map[string][]byte{"missing": nil, "wrong": make([]byte, len(bobAcct.UnidentifiedAccessKey))} {
		s, err := peer.Seal(text("token " + name))
		if err != nil {
			t.Fatal(err)
		}
		s.AccessKey = key
		if err := send(s); wsclient.Code(err) != wirepb.Code_FORBIDDEN && wsclient.Code(err) != wirepb.Code_BAD_REQUEST {
			t.Fatalf("a send with a %s delivery token: %v", name, err)
		}
	}

	// A certificate from another authority (a forger's), and one from the
	// server's own authority that has expired: Bob drops both unshown.
	forger, err := certs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real, err := certs.Open(srv.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	me := sealed.Sender{UUID: sealed.ACI(mallory.Account).String(), Device: sealed.DeviceID(mallory.ID), IdentityKey: mallory.Identity.Public}
	forged, err := forger.Issue(me, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := real.Issue(me, time.Now().Add(-2*certs.SenderCertificateTTL))
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]*sealed.SenderCertificate{"forged": forged, "expired": expired} {
		mallory.UseCertificate(cert)
		s, err := peer.Seal(text(name + " certificate"))
		if err != nil {
			t.Fatal(err)
		}
		if err := send(s); err != nil {
			t.Fatal(err)
		}
		if got, ok := shown(time.Second); ok {
			t.Fatalf("a message under a %s certificate was shown: %q", name, got)
		}
	}
	// Each trick went through Bob's device and is gone from his mailbox.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left, err := srv.Store().Read(ctx, store.AccountID(bob.Account()), store.DeviceID(bob.Device()), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d envelopes left in Bob's mailbox", len(left))
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("ran out of time")
	}
	testkit.Summary(t, "hostile senders: replayed, reflected, tokenless, wrong-token, forged- and expired-certificate messages shown = 0")
}
