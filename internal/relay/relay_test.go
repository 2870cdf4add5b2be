package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pow"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEndToEnd: two accounts register, connect, and exchange sealed
// messages through the relay; every message arrives once and the mailbox
// is empty after the acks.
func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.register("alice"), e.register("bob")
	for i := range 20 {
		from, to := alice, bob
		if i%3 == 2 {
			from, to = bob, alice
		}
		text := fmt.Sprintf("message %d", i)
		if err := from.sendTo(to, text); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		got, err := to.receive(5 * time.Second)
		if err != nil || got != text {
			t.Fatalf("receive %d: %q, %v", i, got, err)
		}
	}
	for _, d := range []*device{alice, bob} {
		left, err := e.store.Read(context.Background(), d.account, d.id, 0, 10)
		if err != nil || len(left) != 0 {
			t.Fatalf("mailbox not empty after acks: %d, %v", len(left), err)
		}
	}
}

// TestOfflineDeviceDrainsInOrder: messages sent while a device is offline
// wait in its mailbox and arrive in order when it connects.
func TestOfflineDeviceDrainsInOrder(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.register("alice"), e.register("bob")
	bob.authConn.Close()
	<-bob.authConn.Done()
	for i := range 5 {
		if err := alice.sendTo(bob, fmt.Sprintf("offline %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	bob.connect()
	var got []string
	for len(got) < 5 {
		text, err := bob.receive(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Split(text, "|")...)
	}
	for i, g := range got {
		if g != fmt.Sprintf("offline %d", i) {
			t.Fatalf("order: %q", got)
		}
	}
}

func TestUnackedEnvelopesRedelivered(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.register("alice"), e.register("bob")
	if err := alice.sendTo(bob, "once"); err != nil {
		t.Fatal(err)
	}
	var first *wirepb.Envelope
	for first == nil {
		p := <-bob.authConn.Pushes()
		if envs := p.GetEnvelopes(); envs != nil {
			first = envs.Envelopes[0]
		}
	}
	bob.authConn.Close() // no ack
	<-bob.authConn.Done()
	bob.connect()
	for {
		p := <-bob.authConn.Pushes()
		if envs := p.GetEnvelopes(); envs != nil {
			if envs.Envelopes[0].Id != first.Id {
				t.Fatalf("redelivered id %d, want the stable id %d", envs.Envelopes[0].Id, first.Id)
			}
			return
		}
	}
}

func TestSendErrors(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.register("alice"), e.register("bob")
	ctx := context.Background()
	env := &wirepb.OutgoingEnvelope{DeviceId: uint32(bob.id), RegistrationId: bob.regID, Content: []byte{0x11, 1, 2, 3}}
	tests := []struct {
		name string
		send *wirepb.Send
		want wirepb.Code
	}{
		{"wrong access key", &wirepb.Send{Recipient: bob.account[:], AccessKey: make([]byte, 16), Envelopes: []*wirepb.OutgoingEnvelope{env}}, wirepb.Code_FORBIDDEN},
		{"unknown account", &wirepb.Send{Recipient: make([]byte, 16), AccessKey: bob.profile[:], Envelopes: []*wirepb.OutgoingEnvelope{env}}, wirepb.Code_NOT_FOUND},
		{"stale registration id", &wirepb.Send{Recipient: bob.account[:], AccessKey: bob.profile[:], Envelopes: []*wirepb.OutgoingEnvelope{
			{DeviceId: uint32(bob.id), RegistrationId: bob.regID + 1, Content: []byte{1}}}}, wirepb.Code_MISMATCHED_DEVICES},
		{"extra device", &wirepb.Send{Recipient: bob.account[:], AccessKey: bob.profile[:], Envelopes: []*wirepb.OutgoingEnvelope{
			env, {DeviceId: 9, RegistrationId: 1, Content: []byte{1}}}}, wirepb.Code_MISMATCHED_DEVICES},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alice.anon.Do(ctx, tc.send)
			if got := wsclient.Code(err); got != tc.want {
				t.Fatalf("code %v, want %v (%v)", got, tc.want, err)
			}
		})
	}
	_, err := alice.anon.Do(ctx, &wirepb.Send{Recipient: bob.account[:], AccessKey: bob.profile[:], Envelopes: []*wirepb.OutgoingEnvelope{
		{DeviceId: uint32(bob.id), RegistrationId: bob.regID + 1, Content: []byte{1}}, {DeviceId: 9, RegistrationId: 1, Content: []byte{1}}}})
	var se *wsclient.StatusError
	if !asStatus(err, &se) || len(se.Status.Mismatches) != 1 {
		t.Fatalf("mismatch details: %v", err)
	}
	m := se.Status.Mismatches[0]
	if len(m.Stale) != 1 || m.Stale[0] != uint32(bob.id) || len(m.Extra) != 1 || m.Extra[0] != 9 {
		t.Fatalf("mismatch %+v", m)
	}
	left, _ := e.store.Read(ctx, bob.account, bob.id, 0, 10)
	if len(left) != 0 {
		t.Fatal("a refused send stored envelopes")
	}
}

func asStatus(err error, se **wsclient.StatusError) bool {
	s, ok := err.(*wsclient.StatusError)
	*se = s
	return ok
}

func TestConnectionKinds(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice")
	ctx := context.Background()
	if _, err := alice.authConn.Do(ctx, &wirepb.GetBundles{AccountId: alice.account[:]}); wsclient.Code(err) != wirepb.Code_FORBIDDEN {
		t.Fatalf("anonymous request on an authenticated connection: %v", err)
	}
	if _, err := alice.anon.Do(ctx, &wirepb.ListDevices{}); wsclient.Code(err) != wirepb.Code_UNAUTHENTICATED {
		t.Fatalf("authenticated request on an anonymous connection: %v", err)
	}
	c := e.dial()
	ch := do(t, c, &wirepb.GetChallenge{}).GetChallenge()
	sig, _ := alice.identity.Private.Sign(alice.rand, wire.AuthMessage(ch.Nonce, alice.account[:], uint32(alice.id)))
	if _, err := c.Do(ctx, &wirepb.Authenticate{AccountId: alice.account[:], DeviceId: 1, Signature: sig[:]}); wsclient.Code(err) != wirepb.Code_UNAUTHENTICATED {
		t.Fatalf("signature by the wrong key: %v", err)
	}
	sig, _ = alice.auth.Private.Sign(alice.rand, wire.AuthMessage(ch.Nonce, alice.account[:], uint32(alice.id)))
	if _, err := c.Do(ctx, &wirepb.Authenticate{AccountId: alice.account[:], DeviceId: 1, Signature: sig[:]}); wsclient.Code(err) != wirepb.Code_UNAUTHENTICATED {
		t.Fatalf("a challenge answered twice: %v", err)
	}
}

func TestRegistrationProofOfWork(t *testing.T) {
	e := newEnv(t)
	d := e.register("alice")
	ctx := context.Background()
	ch := do(t, d.anon, &wirepb.GetRegistrationChallenge{}).GetRegistrationChallenge()
	bad := []byte{0}
	for pow.Check(ch.Seed, bad, int(ch.Difficulty)) {
		bad[0]++
	}
	spk, kem := d.signedPreKeys()
	reg := &wirepb.Register{Seed: ch.Seed, Solution: bad, IdentityKey: d.identity.Public.Bytes(), AuthKey: d.auth.Public.Bytes(),
		RegistrationId: 7, SignedPrekey: spk, KemLastResort: kem}
	if _, err := d.anon.Do(ctx, reg); wsclient.Code(err) != wirepb.Code_FORBIDDEN {
		t.Fatalf("wrong solution: %v", err)
	}
	reg.Solution, _ = pow.Solve(ch.Seed, int(ch.Difficulty), nil)
	do(t, d.anon, reg)
	if _, err := d.anon.Do(ctx, reg); wsclient.Code(err) != wirepb.Code_EXPIRED {
		t.Fatalf("reused challenge: %v", err)
	}
}

func TestPreKeysNeverHandedOutTwice(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimits.Lookup, c.RateLimits.LookupBurst = 1000, 1000 })
	bob := e.register("bob")
	bob.uploadOneTime(40) // 50 in all
	conns := make([]*wsclient.Conn, 50)
	for i := range conns {
		conns[i] = e.dial()
	}
	var mu sync.Mutex
	seen := map[uint32]bool{}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := conns[i%len(conns)].Do(context.Background(), &wirepb.GetBundles{AccountId: bob.account[:]})
			if err != nil {
				t.Error(err)
				return
			}
			for _, b := range resp.GetBundles().Bundles {
				if b.OneTimePrekey == nil {
					continue
				}
				mu.Lock()
				if seen[b.OneTimePrekey.Id] {
					t.Errorf("one-time prekey %d handed out twice", b.OneTimePrekey.Id)
				}
				seen[b.OneTimePrekey.Id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 50 {
		t.Fatalf("%d one-time prekeys handed out, want all 50", len(seen))
	}
}

func TestCrossOriginRefused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AllowedOrigins = []string{"https://web.example"} })
	ctx := context.Background()
	_, err := wsclient.Dial(ctx, e.url, &wsclient.Options{Header: http.Header{"Origin": {"https://evil.example"}}})
	if err == nil {
		t.Fatal("foreign origin accepted")
	}
	c, err := wsclient.Dial(ctx, e.url, &wsclient.Options{Header: http.Header{"Origin": {"https://web.example"}}})
	if err != nil {
		t.Fatalf("allowed origin refused: %v", err)
	}
	c.Close()
}

func TestGarbageFrames(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice")
	ctx := context.Background()
	for i := range 200 {
		c := e.dial()
		junk := []byte(fmt.Sprintf("garbage %d \xff\x00", i))
		if err := c.WriteRaw(ctx, junk); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("connection with garbage not closed")
		}
	}
	// A frame with an id but a bad field gets an error and the connection
	// lives on.
	c := e.dial()
	if _, err := c.Do(ctx, &wirepb.LookupUsername{Hash: []byte("short")}); err == nil {
		t.Fatal("bad field accepted")
	}
	do(t, c, &wirepb.GetChallenge{})
	// Others are unaffected.
	do(t, alice.authConn, &wirepb.ListDevices{})
}

func TestUsernames(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.register("alice"), e.register("bob")
	ctx := context.Background()
	hash := make([]byte, 32)
	hash[0] = 7
	do(t, alice.authConn, &wirepb.SetUsername{Hash: hash})
	if _, err := bob.authConn.Do(ctx, &wirepb.SetUsername{Hash: hash}); wsclient.Code(err) != wirepb.Code_CONFLICT {
		t.Fatalf("taken username: %v", err)
	}
	got := do(t, bob.anon, &wirepb.LookupUsername{Hash: hash}).GetUsernameAccount()
	if store.AccountID(got.AccountId) != alice.account {
		t.Fatal("lookup found the wrong account")
	}
	do(t, alice.authConn, &wirepb.DeleteUsername{})
	if _, err := bob.anon.Do(ctx, &wirepb.LookupUsername{Hash: hash}); wsclient.Code(err) != wirepb.Code_NOT_FOUND {
		t.Fatalf("deleted username: %v", err)
	}
}

func TestLookupRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimits.Lookup, c.RateLimits.LookupBurst = 0.001, 5 })
	d := e.register("alice")
	ctx := context.Background()
	hash := make([]byte, 32)
	limited := 0
	for range 10 {
		_, err := d.anon.Do(ctx, &wirepb.LookupUsername{Hash: hash})
		if wsclient.Code(err) == wirepb.Code_RATE_LIMITED {
			limited++
			var se *wsclient.StatusError
			if asStatus(err, &se); se.Status.RetryAfterMs == 0 {
				t.Fatal("no retry-after")
			}
		}
	}
	if limited != 5 {
		t.Fatalf("%d of 10 lookups limited, want 5", limited)
	}
}

func TestShutdownClosesWith1001(t *testing.T) {
	e := newEnv(t)
	d := e.register("alice")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.relay.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-d.authConn.Done()
	if code := wsclient.CloseStatus(d.authConn.Err()); code != 1001 {
		t.Fatalf("close code %d, want 1001", code)
	}
}

// TestUpgradeDuringShutdownRefused: a connection upgraded after Shutdown
// began is closed with 1001 at once and was never counted, so its cleanup
// must not uncount it (it once drove the relay's WaitGroup negative).
func TestUpgradeDuringShutdownRefused(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.relay.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c, err := wsclient.Dial(ctx, e.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		<-c.Done()
		if code := wsclient.CloseStatus(c.Err()); code != 1001 {
			t.Fatalf("close code %d, want 1001", code)
		}
	}
	// The refused connections' cleanup runs once their socket is closed;
	// give it the time to run, then the counts must be untouched.
	time.Sleep(200 * time.Millisecond)
	if n := e.relay.m.connections.Value(); n != 0 {
		t.Fatalf("connections gauge %d, want 0", n)
	}
	if err := e.relay.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSilentPeerClosed: a peer that stops answering pings is closed within
// the ping interval plus the timeout (plus the ping loop's tick).
func TestSilentPeerClosed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PingInterval, c.PingTimeout = 200*time.Millisecond, 200*time.Millisecond })
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, e.url, nil) // never reads, so never answers a ping
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	live := e.dial() // answers pings: stays open
	start := time.Now()
	for {
		e.relay.mu.Lock()
		n := len(e.relay.conns)
		e.relay.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("silent peer still connected after %v", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	do(t, live, &wirepb.GetChallenge{})
}

func TestPreKeysLowPushed(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimits.Lookup, c.RateLimits.LookupBurst = 1000, 1000 })
	alice, bob := e.register("alice"), e.register("bob")
	bob.uploadOneTime(PreKeysLowWater) // 10 + 20: above the low-water mark
	for range 11 {
		do(t, alice.anon, &wirepb.GetBundles{AccountId: bob.account[:]})
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p := <-bob.authConn.Pushes():
			// The first push came at connection time, before the upload.
			if low := p.GetPrekeysLow(); low != nil && low.Ec == PreKeysLowWater-1 {
				return
			}
		case <-deadline:
			t.Fatal("no PreKeysLow push")
		}
	}
}

func TestDeviceLinking(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice")
	ctx := context.Background()

	// The new device opens a provisioning address (shown as a QR code).
	newConn := e.dial()
	addr := do(t, newConn, &wirepb.OpenProvisioning{}).GetProvisioningAddress().Address

	// The existing device gets a link token and sends it (with the account's
	// keys, encrypted in real life) to the address.
	token := do(t, alice.authConn, &wirepb.GetLinkToken{}).GetLinkToken().Token
	do(t, alice.authConn, &wirepb.SendProvisioning{Address: addr, Body: token})
	if _, err := alice.authConn.Do(ctx, &wirepb.SendProvisioning{Address: addr, Body: token}); wsclient.Code(err) != wirepb.Code_EXPIRED {
		t.Fatalf("second message to a provisioning address: %v", err)
	}
	var body []byte
	select {
	case p := <-newConn.Pushes():
		body = p.GetProvisioningMessage().GetBody()
	case <-time.After(5 * time.Second):
		t.Fatal("no provisioning message")
	}

	// The new device shares the identity key and has its own auth key.
	second := &device{t: t, e: e, rand: alice.rand, identity: alice.identity, account: alice.account, regID: 4242,
		pre: alice.pre}
	second.auth, _ = keys.GenerateKeyPair(alice.rand)
	spk, kem := second.signedPreKeys()
	reg := do(t, newConn, &wirepb.LinkDevice{LinkToken: body, AuthKey: second.auth.Public.Bytes(), RegistrationId: second.regID,
		SignedPrekey: spk, KemLastResort: kem}).GetRegistered()
	if store.AccountID(reg.AccountId) != alice.account || reg.DeviceId != 2 {
		t.Fatalf("linked as %x/%d", reg.AccountId, reg.DeviceId)
	}
	second.id = store.DeviceID(reg.DeviceId)
	second.connect()
	list := do(t, alice.authConn, &wirepb.ListDevices{}).GetDeviceList()
	if len(list.Devices) != 2 || list.Devices[1].RegistrationId != 4242 {
		t.Fatalf("devices: %v", list.Devices)
	}
	if _, err := e.dial().Do(ctx, &wirepb.LinkDevice{LinkToken: body, AuthKey: second.auth.Public.Bytes(), RegistrationId: 5,
		SignedPrekey: spk, KemLastResort: kem}); wsclient.Code(err) != wirepb.Code_EXPIRED {
		t.Fatalf("reused link token: %v", err)
	}

	// Sync transcripts: device 1 writes to the account's other devices,
	// leaving itself out.
	own := func(c *wsclient.Conn, devs ...uint32) error {
		var envs []*wirepb.OutgoingEnvelope
		for _, d := range devs {
			reg := alice.regID
			if d == 2 {
				reg = second.regID
			}
			envs = append(envs, &wirepb.OutgoingEnvelope{DeviceId: d, RegistrationId: reg, Content: []byte("sync")})
		}
		_, err := c.Do(ctx, &wirepb.SendToOwnDevices{Envelopes: envs})
		return err
	}
	err := own(alice.authConn, 1, 2)
	var se *wsclient.StatusError
	if !errors.As(err, &se) || se.Code != wirepb.Code_MISMATCHED_DEVICES || len(se.Status.Mismatches[0].Extra) != 1 || se.Status.Mismatches[0].Extra[0] != 1 {
		t.Fatalf("sync including the sender's own device: %v", err)
	}
	if err := own(alice.anon, 2); wsclient.Code(err) != wirepb.Code_UNAUTHENTICATED {
		t.Fatalf("sync on an anonymous connection: %v", err)
	}
	if err := own(alice.authConn, 2); err != nil {
		t.Fatal(err)
	}
	for got := false; !got; {
		select {
		case p := <-second.authConn.Pushes():
			for _, env := range p.GetEnvelopes().GetEnvelopes() {
				got = got || string(env.Content) == "sync"
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the other device got no sync envelope")
		}
	}
	// A removed device is cut off.
	do(t, alice.authConn, &wirepb.RemoveDevice{DeviceId: 2})
	select {
	case <-second.authConn.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("removed device still connected")
	}
}

// TestEphemeralSend: an ephemeral send reaches the connected device as an
// EphemeralEnvelope and stores nothing.
func TestEphemeralSend(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.register("alice"), e.register("bob")
	do(t, alice.anon, &wirepb.Send{Recipient: bob.account[:], AccessKey: bob.profile[:], Ephemeral: true,
		Envelopes: []*wirepb.OutgoingEnvelope{{DeviceId: uint32(bob.id), RegistrationId: bob.regID, Content: []byte("typing")}}})
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p := <-bob.authConn.Pushes():
			if ee := p.GetEphemeralEnvelope(); ee != nil {
				if string(ee.Content) != "typing" {
					t.Fatalf("content %q", ee.Content)
				}
				left, _ := e.store.Read(context.Background(), bob.account, bob.id, 0, 10)
				if len(left) != 0 {
					t.Fatal("an ephemeral send was stored")
				}
				return
			}
		case <-deadline:
			t.Fatal("no ephemeral envelope")
		}
	}
}

// TestLargeEnvelopesBacklog: a backlog of envelopes too large to push 256
// at a time (30 × 100 KiB) arrives complete, split over several pushes.
func TestLargeEnvelopesBacklog(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.register("alice"), e.register("bob")
	bob.authConn.Close()
	<-bob.authConn.Done()
	big := make([]byte, 100<<10)
	for i := range 30 {
		big[0] = byte(i)
		do(t, alice.anon, &wirepb.Send{Recipient: bob.account[:], AccessKey: bob.profile[:],
			Envelopes: []*wirepb.OutgoingEnvelope{{DeviceId: uint32(bob.id), RegistrationId: bob.regID, Content: big}}})
	}
	bob.connect()
	got, pushes := 0, 0
	deadline := time.After(10 * time.Second)
	for got < 30 {
		select {
		case p := <-bob.authConn.Pushes():
			if envs := p.GetEnvelopes(); envs != nil {
				for _, env := range envs.Envelopes {
					if int(env.Content[0]) != got {
						t.Fatalf("envelope %d out of order", env.Content[0])
					}
					got++
				}
				pushes++
			}
		case <-deadline:
			t.Fatalf("%d of 30 large envelopes delivered", got)
		}
	}
	if pushes < 3 {
		t.Fatalf("3 MB arrived in %d pushes of at most 1 MiB", pushes)
	}
}

func TestPushBatches(t *testing.T) {
	many := func(n, size int) []*store.Envelope {
		envs := make([]*store.Envelope, n)
		for i := range envs {
			envs[i] = &store.Envelope{ID: store.EnvelopeID(i + 1), Content: make([]byte, size)}
		}
		return envs
	}
	tests := []struct {
		name string
		envs []*store.Envelope
	}{
		{"large envelopes split by bytes", many(10, wire.MaxContentSize)},
		{"small envelopes split by count", many(3*wire.MaxEnvelopesPerPush+7, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var next store.EnvelopeID = 1
			for b := range pushBatches(tt.envs) {
				size := 0
				for _, e := range b {
					if e.ID != next {
						t.Fatalf("envelope %d, want %d: batches out of order", e.ID, next)
					}
					next++
					size += len(e.Content) + envelopeOverhead
				}
				if size > pushBudget || len(b) == 0 || len(b) > wire.MaxEnvelopesPerPush {
					t.Fatalf("batch of %d envelopes, %d bytes", len(b), size)
				}
				// Every batch encodes as a valid push.
				out := &wirepb.Envelopes{}
				for _, e := range b {
					out.Envelopes = append(out.Envelopes, &wirepb.Envelope{Id: uint64(e.ID), Content: e.Content})
				}
				if _, err := wire.Encode(wire.NewPush(out)); err != nil {
					t.Fatalf("batch of %d: %v", len(b), err)
				}
			}
			if int(next-1) != len(tt.envs) {
				t.Fatalf("%d envelopes in batches, want %d", next-1, len(tt.envs))
			}
		})
	}
}

func TestRegistrationRateLimited(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RateLimits.Register, c.RateLimits.RegisterBurst = 0.001, 3 })
	c := e.dial()
	limited := 0
	for range 6 {
		_, err := c.Do(context.Background(), &wirepb.GetRegistrationChallenge{})
		if wsclient.Code(err) == wirepb.Code_RATE_LIMITED {
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("%d of 6 challenges limited, want 3", limited)
	}
}

func TestAuthenticateUnknownDevice(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice")
	c := e.dial()
	ch := do(t, c, &wirepb.GetChallenge{}).GetChallenge()
	sig, _ := alice.auth.Private.Sign(alice.rand, wire.AuthMessage(ch.Nonce, alice.account[:], 7))
	if _, err := c.Do(context.Background(), &wirepb.Authenticate{AccountId: alice.account[:], DeviceId: 7, Signature: sig[:]}); wsclient.Code(err) != wirepb.Code_UNAUTHENTICATED {
		t.Fatalf("unknown device: %v", err)
	}
}

// TestConcurrentLinks: devices linking to one account at once all get
// their own device ids.
func TestConcurrentLinks(t *testing.T) {
	e := newEnv(t)
	alice := e.register("alice")
	const n = 4
	tokens := make([][]byte, n)
	for i := range tokens {
		tokens[i] = do(t, alice.authConn, &wirepb.GetLinkToken{}).GetLinkToken().Token
	}
	spk, kem := alice.signedPreKeys()
	ids := make(chan uint32, n)
	var wg sync.WaitGroup
	for i := range n {
		c := e.dial()
		auth, _ := keys.GenerateKeyPair(testkit.Rand(fmt.Sprint("link", i)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Do(context.Background(), &wirepb.LinkDevice{LinkToken: tokens[i], AuthKey: auth.Public.Bytes(),
				RegistrationId: uint32(100 + i), SignedPrekey: spk, KemLastResort: kem})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- resp.GetRegistered().DeviceId
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[uint32]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("device id %d given twice", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Fatalf("%d of %d links succeeded", len(seen), n)
	}
}

// TestRateLimitsAnswerRetryAfter: each limit (registration, username
// lookup, prekey fetch, send) holds at its burst and answers RATE_LIMITED
// with a retry-after and a sentence saying when.
func TestRateLimitsAnswerRetryAfter(t *testing.T) {
	const burst = 3
	tests := []struct {
		name  string
		limit func(*RateLimits)
		req   func(e *env, d *device) proto.Message
	}{
		{"register", func(l *RateLimits) { l.Register, l.RegisterBurst = 0.001, burst },
			func(*env, *device) proto.Message { return &wirepb.GetRegistrationChallenge{} }},
		{"username lookup", func(l *RateLimits) { l.Lookup, l.LookupBurst = 0.001, burst },
			func(*env, *device) proto.Message { return &wirepb.LookupUsername{Hash: make([]byte, 32)} }},
		{"prekey fetch", func(l *RateLimits) { l.Lookup, l.LookupBurst = 0.001, burst },
			func(_ *env, d *device) proto.Message { return &wirepb.GetBundles{AccountId: d.account[:]} }},
		{"send", func(l *RateLimits) { l.Send, l.SendBurst = 0.001, burst },
			func(_ *env, d *device) proto.Message {
				return &wirepb.Send{Recipient: d.account[:], AccessKey: d.profile[:], Envelopes: []*wirepb.OutgoingEnvelope{
					{DeviceId: uint32(d.id), RegistrationId: d.regID, Content: []byte{0x11, 1, 2, 3}}}}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { tc.limit(&c.RateLimits) })
			var target *device
			if tc.name != "register" { // registering takes from the register limit
				target = e.register("target")
			}
			c := e.dial()
			limited := 0
			for range 2 * burst {
				_, err := c.Do(context.Background(), tc.req(e, target))
				if wsclient.Code(err) != wirepb.Code_RATE_LIMITED {
					continue
				}
				limited++
				var se *wsclient.StatusError
				if asStatus(err, &se); se.Status.GetRetryAfterMs() == 0 || !strings.Contains(se.Message, "try again in") {
					t.Fatalf("a RATE_LIMITED answer without a clear retry-after: %v (%v)", err, se.Status)
				}
			}
			if limited != burst {
				t.Fatalf("%d of %d requests limited, want %d", limited, 2*burst, burst)
			}
		})
	}
}
