package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/testserver"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// device is a client with its store, running.
type device struct {
	*client.Client
	store  *client.MemoryStore
	cancel context.CancelFunc
	done   chan error
}

func newAccount(t *testing.T, url string, opts ...func(*client.Options)) *device {
	t.Helper()
	st := client.NewMemoryStore()
	o := client.Options{Server: url, Store: st}
	for _, f := range opts {
		f(&o)
	}
	c, err := client.Create(testContext(t), o)
	if err != nil {
		t.Fatal(err)
	}
	d := &device{Client: c, store: st}
	d.start(t)
	return d
}

func (d *device) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan error, 1)
	go func() { d.done <- d.Run(ctx) }()
	t.Cleanup(d.stop)
}

func (d *device) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
	d.cancel = nil
	d.Close()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next returns the next message event, skipping connection events.
func (d *device) next(t *testing.T) client.Message {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-d.Events():
			switch e := e.(type) {
			case client.MessageEvent:
				return e.Message
			case client.UndecryptableEvent:
				t.Fatalf("undecryptable: %v", e.Err)
			}
		case <-timeout:
			t.Fatal("no message within 20 s")
		}
	}
}

// quiet checks that no message arrives for a moment.
func (d *device) quiet(t *testing.T, wait time.Duration) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e := <-d.Events():
			if m, ok := e.(client.MessageEvent); ok {
				t.Fatalf("unexpected message %q", m.Message.Text)
			}
		case <-timeout:
			return
		}
	}
}

func TestTwoAccountsTalk(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, url), newAccount(t, url)

	sent, err := alice.SendText(ctx, bob.Account(), "hello Bob")
	if err != nil {
		t.Fatal(err)
	}
	got := bob.next(t)
	if got.Text != "hello Bob" || got.With != alice.Account() || got.Outgoing || got.ID != sent.ID || got.FromDevice != alice.Device() {
		t.Fatalf("Bob got %+v", got)
	}
	// Bob replies on the session Alice started; then they go back and
	// forth.
	for i := range 5 {
		if _, err := bob.SendText(ctx, alice.Account(), fmt.Sprintf("reply %d", i)); err != nil {
			t.Fatal(err)
		}
		if m := alice.next(t); m.Text != fmt.Sprintf("reply %d", i) || m.With != bob.Account() {
			t.Fatalf("Alice got %+v", m)
		}
		if _, err := alice.SendText(ctx, bob.Account(), fmt.Sprintf("answer %d", i)); err != nil {
			t.Fatal(err)
		}
		if m := bob.next(t); m.Text != fmt.Sprintf("answer %d", i) {
			t.Fatalf("Bob got %+v", m)
		}
	}
	// Both keep the whole conversation, in order.
	for _, d := range []*device{alice, bob} {
		other := bob.Account()
		if d == bob {
			other = alice.Account()
		}
		msgs, err := d.Messages(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 11 || msgs[0].Text != "hello Bob" || msgs[10].Text != "answer 4" {
			t.Fatalf("%d messages stored", len(msgs))
		}
	}
}

func TestOfflineDeviceCatchesUpInOrder(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, url), newAccount(t, url)
	bob.stop()
	const n = 30
	for i := range n {
		if _, err := alice.SendText(ctx, bob.Account(), fmt.Sprintf("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Bob comes back with the same store.
	c, err := client.Open(ctx, client.Options{Server: url, Store: bob.store})
	if err != nil {
		t.Fatal(err)
	}
	bob = &device{Client: c, store: bob.store}
	bob.start(t)
	for i := range n {
		if m := bob.next(t); m.Text != fmt.Sprintf("message %d", i) {
			t.Fatalf("message %d: got %q", i, m.Text)
		}
	}
	// Acked: a restart brings nothing again.
	bob.stop()
	c, err = client.Open(ctx, client.Options{Server: url, Store: bob.store})
	if err != nil {
		t.Fatal(err)
	}
	bob = &device{Client: c, store: bob.store}
	bob.start(t)
	bob.quiet(t, 500*time.Millisecond)
}

func TestContactsOnly(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice := newAccount(t, url)
	carol := newAccount(t, url, func(o *client.Options) { o.ContactsOnly = true })
	// Alice does not hold Carol's profile key: the server refuses.
	_, err := alice.SendText(ctx, carol.Account(), "hi")
	if wsclient.Code(err) != wirepb.Code_FORBIDDEN {
		t.Fatalf("a non-contact's send to a contacts-only account: %v, want FORBIDDEN", err)
	}
	// Carol writes to Alice, sharing her profile key; now Alice can answer.
	if _, err := carol.SendText(ctx, alice.Account(), "hello Alice"); err != nil {
		t.Fatal(err)
	}
	if m := alice.next(t); m.Text != "hello Alice" {
		t.Fatalf("Alice got %q", m.Text)
	}
	if _, err := alice.SendText(ctx, carol.Account(), "hi Carol"); err != nil {
		t.Fatal(err)
	}
	if m := carol.next(t); m.Text != "hi Carol" {
		t.Fatalf("Carol got %q", m.Text)
	}
}

func TestUsernames(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, url), newAccount(t, url)
	if err := bob.SetUsername(ctx, "@Bob_42"); err != nil {
		t.Fatal(err)
	}
	if n, _ := bob.Username(ctx); n != "bob_42" {
		t.Fatalf("username %q, want the normalized bob_42", n)
	}
	if err := alice.SetUsername(ctx, "bob_42"); !errors.Is(err, client.ErrUsernameTaken) {
		t.Fatalf("a taken username: %v", err)
	}
	for _, bad := range []string{"ab", "bob smith", "böb", strings.Repeat("x", 33)} {
		if err := alice.SetUsername(ctx, bad); err == nil {
			t.Errorf("username %q accepted", bad)
		}
	}
	ct, err := alice.AddContact(ctx, "@BOB_42")
	if err != nil {
		t.Fatal(err)
	}
	if ct.Account != bob.Account() || ct.Name != "bob_42" {
		t.Fatalf("added %+v", ct)
	}
	if _, err := alice.AddContact(ctx, "nobody_here"); !errors.Is(err, client.ErrNoSuchUser) {
		t.Fatalf("adding an unknown name: %v", err)
	}
	byName, err := alice.ContactByName(ctx, "bob_42")
	if err != nil || byName.Account != bob.Account() {
		t.Fatalf("contact by name: %+v, %v", byName, err)
	}
	if _, err := alice.SendText(ctx, byName.Account, "found you"); err != nil {
		t.Fatal(err)
	}
	if m := bob.next(t); m.Text != "found you" {
		t.Fatalf("Bob got %q", m.Text)
	}
	// Bob now knows Alice too (unnamed), and she lists him by name.
	cs, _ := bob.Contacts(ctx)
	if len(cs) != 1 || cs[0].Account != alice.Account() || cs[0].Name != "" {
		t.Fatalf("Bob's contacts: %+v", cs)
	}
	// A deleted username is free again.
	if err := bob.DeleteUsername(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetUsername(ctx, "bob_42"); err != nil {
		t.Fatalf("taking a released username: %v", err)
	}
}

// TestQueuedWhileServerDown: messages written while the server is down
// are kept, and go out in order once it is back.
func TestQueuedWhileServerDown(t *testing.T) {
	srv := testserver.New(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, srv.URL()), newAccount(t, srv.URL())
	if _, err := alice.SendText(ctx, bob.Account(), "before"); err != nil {
		t.Fatal(err)
	}
	if m := bob.next(t); m.Text != "before" {
		t.Fatalf("Bob got %q", m.Text)
	}
	alice.stop() // Alice's connections go; her store stays
	srv.Stop()
	c, err := client.Open(ctx, client.Options{Store: alice.store})
	if err != nil {
		t.Fatal(err)
	}
	alice = &device{Client: c, store: alice.store}
	for i := range 3 {
		m, err := alice.SendText(ctx, bob.Account(), fmt.Sprintf("queued %d", i))
		if !errors.Is(err, client.ErrQueued) || m.Status != client.StatusQueued {
			t.Fatalf("send while the server is down: %v, status %v", err, m.Status)
		}
	}
	msgs, _ := alice.Messages(ctx, bob.Account())
	if len(msgs) != 4 || msgs[3].Status != client.StatusQueued {
		t.Fatalf("%d messages stored, the last %v", len(msgs), msgs[len(msgs)-1].Status)
	}
	srv.Start()
	alice.start(t) // connecting sends the queue
	for i := range 3 {
		if m := bob.next(t); m.Text != fmt.Sprintf("queued %d", i) {
			t.Fatalf("after the restart, Bob got %q, want queued %d", m.Text, i)
		}
	}
	msgs, _ = alice.Messages(ctx, bob.Account())
	for _, m := range msgs {
		if m.Status != client.StatusSent {
			t.Fatalf("%q is %v after the restart", m.Text, m.Status)
		}
	}
}

// event waits for the next event of type T, skipping others.
func event[T client.Event](t *testing.T, d *device) T {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-d.Events():
			if v, ok := e.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T within 20 s", zero)
		}
	}
}

// none checks that no event of type T comes for a while.
func none[T client.Event](t *testing.T, d *device, wait time.Duration) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case e := <-d.Events():
			if v, ok := e.(T); ok {
				t.Fatalf("unexpected %T: %+v", v, v)
			}
		case <-timeout:
			return
		}
	}
}

func TestReceipts(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob, mallory := newAccount(t, url), newAccount(t, url), newAccount(t, url)

	// Bob has not accepted Alice yet: her first message gets no receipt.
	first, err := alice.SendText(ctx, bob.Account(), "hi")
	if err != nil {
		t.Fatal(err)
	}
	bob.next(t)
	none[client.ReceiptEvent](t, alice, 300*time.Millisecond)

	// Bob answers, so Alice is his contact now: her next message is
	// reported delivered, and then read.
	if _, err := bob.SendText(ctx, alice.Account(), "hello"); err != nil {
		t.Fatal(err)
	}
	alice.next(t)
	second, err := alice.SendText(ctx, bob.Account(), "how are you?")
	if err != nil {
		t.Fatal(err)
	}
	got := bob.next(t)
	r := event[client.ReceiptEvent](t, alice)
	if r.Status != client.StatusDelivered || len(r.IDs) != 1 || r.IDs[0] != second.ID || r.With != bob.Account() {
		t.Fatalf("delivery receipt %+v", r)
	}
	if err := bob.MarkRead(ctx, alice.Account(), got.ID, first.ID, client.MessageID{9}); err != nil {
		t.Fatal(err)
	}
	r = event[client.ReceiptEvent](t, alice)
	if r.Status != client.StatusRead || len(r.IDs) != 2 {
		t.Fatalf("read receipt %+v", r)
	}
	msgs, _ := alice.Messages(ctx, bob.Account())
	if msgs[0].Status != client.StatusRead || msgs[2].Status != client.StatusRead || msgs[1].Status != client.StatusReceived {
		t.Fatalf("statuses %v %v %v", msgs[0].Status, msgs[1].Status, msgs[2].Status)
	}

	// A stranger probing Bob with messages and made-up receipts hears
	// nothing back (no receipt tells them Bob's device is online).
	for i := range 5 {
		if _, err := mallory.SendText(ctx, bob.Account(), fmt.Sprintf("probe %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	none[client.ReceiptEvent](t, mallory, 500*time.Millisecond)

	// With delivery receipts off, Bob sends none.
	if err := bob.SetSettings(ctx, client.Settings{ReadReceipts: true, Typing: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, bob.Account(), "still there?"); err != nil {
		t.Fatal(err)
	}
	none[client.ReceiptEvent](t, alice, 500*time.Millisecond)
}

func TestTyping(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, url), newAccount(t, url)
	if _, err := alice.SendText(ctx, bob.Account(), "hi"); err != nil {
		t.Fatal(err)
	}
	bob.next(t)
	if err := alice.SendTyping(ctx, bob.Account(), true); err != nil {
		t.Fatal(err)
	}
	if e := event[client.TypingEvent](t, bob); !e.Typing || e.With != alice.Account() {
		t.Fatalf("typing %+v", e)
	}
	// Not accepted: Bob never wrote to Alice, so his typing is not sent.
	if err := bob.SendTyping(ctx, alice.Account(), true); err != nil {
		t.Fatal(err)
	}
	none[client.TypingEvent](t, alice, 300*time.Millisecond)
	// Off: nothing is sent.
	if err := alice.SetSettings(ctx, client.Settings{DeliveryReceipts: true, ReadReceipts: true}); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendTyping(ctx, bob.Account(), false); err != nil {
		t.Fatal(err)
	}
	none[client.TypingEvent](t, bob, 300*time.Millisecond)
}

func TestSafetyNumbersAndIdentityChange(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob, carol := newAccount(t, url), newAccount(t, url), newAccount(t, url)
	if _, _, err := alice.SafetyNumber(ctx, bob.Account()); !errors.Is(err, client.ErrNoSafetyNumber) {
		t.Fatalf("safety number before any message: %v", err)
	}
	for _, pair := range [][2]*device{{alice, bob}, {alice, carol}} {
		if _, err := pair[0].SendText(ctx, pair[1].Account(), "hi"); err != nil {
			t.Fatal(err)
		}
		pair[1].next(t)
	}
	na, qa, err := alice.SafetyNumber(ctx, bob.Account())
	if err != nil {
		t.Fatal(err)
	}
	nb, qb, err := bob.SafetyNumber(ctx, alice.Account())
	if err != nil {
		t.Fatal(err)
	}
	if na != nb || len(na) != 60 {
		t.Fatalf("safety numbers differ: %s / %s", na, nb)
	}
	// Scanning the wrong code (Carol's conversation) fails; Bob's passes.
	_, qc, _ := carol.SafetyNumber(ctx, alice.Account())
	if err := alice.Verify(ctx, bob.Account(), qc); err == nil {
		t.Fatal("a code from another conversation verified")
	}
	if err := alice.Verify(ctx, bob.Account(), qb); err != nil {
		t.Fatal(err)
	}
	if err := bob.Verify(ctx, alice.Account(), qa); err != nil {
		t.Fatal(err)
	}
	if v, _ := alice.Verified(ctx, bob.Account()); !v {
		t.Fatal("not verified")
	}

	// Alice's record of Bob's key is replaced by another (as if the key
	// she verified had been a different one); Bob's next message carries
	// his real key, a change.
	key := "contact/" + bob.Account().String()
	b, err := alice.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	json.Unmarshal(b, &rec)
	var carolRec map[string]any
	cb, _ := alice.store.Get(ctx, "contact/"+carol.Account().String())
	json.Unmarshal(cb, &carolRec)
	rec["identity"] = carolRec["identity"]
	b, _ = json.Marshal(rec)
	alice.store.Apply(ctx, []client.Write{{Key: key, Value: b}})

	if _, err := bob.SendText(ctx, alice.Account(), "it is me"); err != nil {
		t.Fatal(err)
	}
	if e := event[client.IdentityChangedEvent](t, alice); e.With != bob.Account() || !e.WasVerified {
		t.Fatalf("identity change %+v", e)
	}
	if _, err := alice.SendText(ctx, bob.Account(), "who are you?"); !errors.Is(err, client.ErrIdentityChanged) {
		t.Fatalf("send to a verified contact whose key changed: %v", err)
	}
	if v, _ := alice.Verified(ctx, bob.Account()); v {
		t.Fatal("still verified after the change")
	}
	// Compared again: sending works.
	if err := alice.MarkVerified(ctx, bob.Account()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, bob.Account(), "ok, it is you"); err != nil {
		t.Fatal(err)
	}
	for {
		if m := bob.next(t); m.Text == "ok, it is you" {
			break
		}
	}
}

func TestBlock(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, url), newAccount(t, url)
	if _, err := alice.SendText(ctx, bob.Account(), "one"); err != nil {
		t.Fatal(err)
	}
	bob.next(t)
	if err := bob.Block(ctx, alice.Account()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, bob.Account(), "blocked"); err != nil {
		t.Fatal(err) // the server cannot tell: it stores and delivers
	}
	none[client.MessageEvent](t, bob, 500*time.Millisecond)
	if _, err := bob.SendText(ctx, alice.Account(), "x"); !errors.Is(err, client.ErrBlocked) {
		t.Fatalf("send to a blocked account: %v", err)
	}
	if err := bob.Unblock(ctx, alice.Account()); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, bob.Account(), "two"); err != nil {
		t.Fatal(err)
	}
	if m := bob.next(t); m.Text != "two" {
		t.Fatalf("after unblocking, Bob got %q", m.Text)
	}
	msgs, _ := bob.Messages(ctx, alice.Account())
	if len(msgs) != 2 {
		t.Fatalf("Bob kept %d messages, want 2 (none while blocked)", len(msgs))
	}
}

// link links a new device to d's account and starts it.
func link(t *testing.T, url string, d *device) *device {
	t.Helper()
	ctx := testContext(t)
	st := client.NewMemoryStore()
	req, err := client.NewLinkRequest(ctx, client.Options{Server: url, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	if !strings.HasPrefix(req.URI(), "sotto://link?") {
		t.Fatalf("link %q", req.URI())
	}
	if err := d.ApproveLink(ctx, req.URI()); err != nil {
		t.Fatal(err)
	}
	c, err := req.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Account() != d.Account() || c.Device() == d.Device() {
		t.Fatalf("linked as %s.%d", c.Account(), c.Device())
	}
	n := &device{Client: c, store: st}
	n.start(t)
	return n
}

// TestManyDevices: two accounts with two devices each; every message
// appears exactly once on every device of both sides, sent ones as sync
// transcripts on the sender's other device.
func TestManyDevices(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, url), newAccount(t, url)
	if err := bob.SetUsername(ctx, "bob_m"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact(ctx, "bob_m"); err != nil {
		t.Fatal(err)
	}
	alice2, bob2 := link(t, url, alice), link(t, url, bob)
	// The linked device came with the contacts and the username.
	if ct, err := alice2.ContactByName(ctx, "bob_m"); err != nil || ct.Account != bob.Account() {
		t.Fatalf("alice2's contacts: %+v, %v", ct, err)
	}
	if n, _ := bob2.Username(ctx); n != "bob_m" {
		t.Fatalf("bob2's username %q", n)
	}

	type seen struct {
		text     string
		outgoing bool
	}
	expect := func(d *device, want ...seen) {
		t.Helper()
		for _, w := range want {
			m := d.next(t)
			if m.Text != w.text || m.Outgoing != w.outgoing {
				t.Fatalf("got %q (outgoing %v), want %q (outgoing %v)", m.Text, m.Outgoing, w.text, w.outgoing)
			}
		}
	}
	if _, err := alice.SendText(ctx, bob.Account(), "from alice 1"); err != nil {
		t.Fatal(err)
	}
	expect(bob, seen{"from alice 1", false})
	expect(bob2, seen{"from alice 1", false})
	expect(alice2, seen{"from alice 1", true})

	if _, err := bob2.SendText(ctx, alice.Account(), "from bob 2"); err != nil {
		t.Fatal(err)
	}
	expect(alice, seen{"from bob 2", false})
	expect(alice2, seen{"from bob 2", false})
	expect(bob, seen{"from bob 2", true})

	if _, err := alice2.SendText(ctx, bob.Account(), "from alice 2"); err != nil {
		t.Fatal(err)
	}
	expect(bob, seen{"from alice 2", false})
	expect(bob2, seen{"from alice 2", false})
	expect(alice, seen{"from alice 2", true})

	// Nothing more anywhere, and every device holds the same three.
	for _, d := range []*device{alice, alice2, bob, bob2} {
		d.quiet(t, 300*time.Millisecond)
		other := bob.Account()
		if d.Account() == bob.Account() {
			other = alice.Account()
		}
		msgs, err := d.Messages(ctx, other)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("device %s.%d holds %d messages: %v", d.Account(), d.Device(), len(msgs), err)
		}
	}
}

// TestContactLink: a contact link lets its holder add an account that
// accepts only its contacts, and write to it.
func TestContactLink(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice := newAccount(t, url)
	carol := newAccount(t, url, func(o *client.Options) { o.ContactsOnly = true })
	if err := carol.SetUsername(ctx, "carol_l"); err != nil {
		t.Fatal(err)
	}
	link, err := carol.ContactLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"https://example.org", "sotto://contact?a=00&k=xx", strings.Replace(link, "k=", "k=AA", 1)} {
		if _, err := alice.AddContactLink(ctx, bad); err == nil {
			t.Errorf("contact link %q accepted", bad)
		}
	}
	ct, err := alice.AddContactLink(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	if ct.Account != carol.Account() || ct.Name != "carol_l" {
		t.Fatalf("added %+v", ct)
	}
	if _, err := alice.SendText(ctx, carol.Account(), "via your link"); err != nil {
		t.Fatal(err)
	}
	if m := carol.next(t); m.Text != "via your link" {
		t.Fatalf("Carol got %q", m.Text)
	}
}

// TestThreeAccountsTwoDevicesEach: three accounts with two devices each
// all write to each other; every message shows exactly once on every
// device of both its sides (on the sender's other device as sent) and
// nowhere else.
func TestThreeAccountsTwoDevicesEach(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	accounts := make([][2]*device, 3)
	for i := range accounts {
		first := newAccount(t, url)
		accounts[i] = [2]*device{first, link(t, url, first)}
	}
	type key struct {
		account  client.AccountID
		device   client.DeviceID
		with     client.AccountID
		outgoing bool
	}
	want := map[key]int{}
	n := 0
	for i, from := range accounts {
		for j, to := range accounts {
			if i == j {
				continue
			}
			for k, sender := range from {
				text := fmt.Sprintf("%d.%d to %d", i, k, j)
				if _, err := sender.SendText(ctx, to[0].Account(), text); err != nil {
					t.Fatal(err)
				}
				n++
				want[key{from[0].Account(), from[1-k].Device(), to[0].Account(), true}]++
				for _, d := range to {
					want[key{to[0].Account(), d.Device(), from[0].Account(), false}]++
				}
			}
		}
	}
	// Each device receives what it is owed (every message arrives once:
	// a second copy would be an extra event, caught below).
	got := map[key]int{}
	for _, acct := range accounts {
		for _, d := range acct {
			owed := 0
			for k, c := range want {
				if k.account == d.Account() && k.device == d.Device() {
					owed += c
				}
			}
			for range owed {
				m := d.next(t)
				got[key{d.Account(), d.Device(), m.With, m.Outgoing}]++
			}
			d.quiet(t, 200*time.Millisecond)
		}
	}
	for k, c := range want {
		if got[k] != c {
			t.Errorf("device %s.%d, conversation with %s (outgoing %v): %d messages, want %d", k.account, k.device, k.with, k.outgoing, got[k], c)
		}
	}
	t.Logf("%d messages; counts checked on %d (device, conversation, direction) pairs", n, len(want))
}

// TestProfiles: a profile is readable by those who hold the profile key
// (who were written to, or hold a contact link) and by nobody else, and
// the server holds only ciphertext.
func TestProfiles(t *testing.T) {
	url := testserver.Start(t)
	ctx := testContext(t)
	alice, bob, eve := newAccount(t, url), newAccount(t, url), newAccount(t, url)
	avatar := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000)
	if err := alice.SetProfile(ctx, client.Profile{Name: "Alice Liddell", Avatar: avatar}); err != nil {
		t.Fatal(err)
	}
	if p, err := alice.ProfileOf(ctx, alice.Account()); err != nil || p.Name != "Alice Liddell" {
		t.Fatalf("own profile: %+v, %v", p, err)
	}
	// Bob has no profile key yet.
	if _, err := bob.ProfileOf(ctx, alice.Account()); !errors.Is(err, client.ErrNoProfileKey) {
		t.Fatalf("profile without the key: %v", err)
	}
	// Alice writes to Bob: her message carries her profile key.
	if _, err := alice.SendText(ctx, bob.Account(), "hi"); err != nil {
		t.Fatal(err)
	}
	bob.next(t)
	p, err := bob.ProfileOf(ctx, alice.Account())
	if err != nil || p.Name != "Alice Liddell" || !bytes.Equal(p.Avatar, avatar) {
		t.Fatalf("Bob sees %q (%d-byte avatar), %v", p.Name, len(p.Avatar), err)
	}
	// Eve never got the key: nothing. Bob's own profile is empty.
	if _, err := eve.ProfileOf(ctx, alice.Account()); !errors.Is(err, client.ErrNoProfileKey) {
		t.Fatalf("Eve: %v", err)
	}
	if p, err := alice.ProfileOf(ctx, bob.Account()); !errors.Is(err, client.ErrNoProfileKey) && (err != nil || p.Name != "") {
		t.Fatalf("an unset profile: %+v, %v", p, err)
	}
	for _, bad := range []client.Profile{{Name: strings.Repeat("x", client.MaxProfileName+1)}, {Name: "\xff"}, {Avatar: make([]byte, client.MaxAvatar+1)}} {
		if err := alice.SetProfile(ctx, bad); err == nil {
			t.Errorf("profile %q with a %d-byte avatar accepted", bad.Name, len(bad.Avatar))
		}
	}
	// Deleting it.
	if err := alice.SetProfile(ctx, client.Profile{}); err != nil {
		t.Fatal(err)
	}
	if p, err := bob.ProfileOf(ctx, alice.Account()); err != nil || p.Name != "" {
		t.Fatalf("a deleted profile: %+v, %v", p, err)
	}
}

// TestServerCannotAddDevices: a device the server adds to an account on
// its own (its prekeys signed by some other key: only the account's
// devices hold the identity key) is refused loudly, never trusted.
func TestServerCannotAddDevices(t *testing.T) {
	srv := testserver.New(t)
	ctx := testContext(t)
	alice, bob := newAccount(t, srv.URL()), newAccount(t, srv.URL())
	st := srv.Store()
	mallory, err := keys.GenerateKeyPair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spk, _ := keys.GenerateSignedPreKey(rand.Reader, mallory.Private, 1, time.Now())
	kem, _ := keys.GenerateKEMPreKey(rand.Reader, mallory.Private, keys.DefaultKEM, 1, time.Now())
	acct := store.AccountID(bob.Account())
	if err := st.AddDevice(ctx, store.Device{Account: acct, ID: 9, RegistrationID: 77, AuthKey: mallory.Public.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetSignedPreKey(ctx, acct, 9, store.SignedPreKey{ID: 1, Key: spk.Key.Public.Bytes(), Signature: spk.Signature[:]}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetLastResortKEMPreKey(ctx, acct, 9, store.SignedPreKey{ID: 1, Key: kem.Key.Public.Bytes(), Signature: kem.Signature[:]}); err != nil {
		t.Fatal(err)
	}
	m, err := alice.SendText(ctx, bob.Account(), "for Bob only")
	if !errors.Is(err, client.ErrUnapprovedDevice) {
		t.Fatalf("send to an account with a server-made device: %v", err)
	}
	if m.Status != client.StatusFailed {
		t.Fatalf("the message is %v", m.Status)
	}
	none[client.MessageEvent](t, bob, 300*time.Millisecond)
}
