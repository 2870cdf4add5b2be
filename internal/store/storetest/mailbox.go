package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/sotto-chat/sotto/internal/store"
)

func envelope(id store.AccountID, dev store.DeviceID, content string, expires store.Day) *store.Envelope {
	return &store.Envelope{Account: id, Device: dev, Content: []byte(content), Expires: expires}
}

// appendN appends n envelopes, one call each, and returns their ids.
func appendN(t *testing.T, s store.Store, id store.AccountID, dev store.DeviceID, n int) []store.EnvelopeID {
	t.Helper()
	var ids []store.EnvelopeID
	for i := range n {
		e := envelope(id, dev, fmt.Sprintf("env %d", i), day+30)
		must(t, "Append", s.Append(t.Context(), []*store.Envelope{e}))
		ids = append(ids, e.ID)
	}
	return ids
}

func readIDs(t *testing.T, s store.Store, id store.AccountID, dev store.DeviceID) []store.EnvelopeID {
	t.Helper()
	envs, err := s.Read(t.Context(), id, dev, 0, 1_000_000)
	must(t, "Read", err)
	var ids []store.EnvelopeID
	for _, e := range envs {
		ids = append(ids, e.ID)
	}
	return ids
}

func testAppendRead(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	other := newAccount(t, s, 2)
	must(t, "Append nothing", s.Append(ctx, nil))

	envs := []*store.Envelope{
		envelope(id, 2, "a", day+30),
		envelope(id, 1, "b", day+31),
		envelope(other, 1, "c", day+32),
		envelope(id, 2, "d", day+33),
		envelope(id, 2, "e", day+34),
	}
	must(t, "Append", s.Append(ctx, envs))
	for _, e := range envs {
		if e.ID == 0 {
			t.Fatalf("Append left envelope %q without an id", e.Content)
		}
	}
	if !(envs[0].ID < envs[3].ID && envs[3].ID < envs[4].ID) {
		t.Errorf("ids within one mailbox do not increase in call order: %d %d %d", envs[0].ID, envs[3].ID, envs[4].ID)
	}
	later := envelope(id, 2, "f", day+35)
	must(t, "Append", s.Append(ctx, []*store.Envelope{later}))
	if later.ID <= envs[4].ID {
		t.Errorf("a later Append got id %d, not above %d", later.ID, envs[4].ID)
	}

	check := func(acct store.AccountID, dev store.DeviceID, want ...*store.Envelope) {
		t.Helper()
		got, err := s.Read(ctx, acct, dev, 0, 100)
		must(t, "Read", err)
		if len(got) != len(want) {
			t.Fatalf("Read(%d) = %d envelopes, want %d", dev, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.ID != w.ID || g.Account != acct || g.Device != dev || !bytes.Equal(g.Content, w.Content) || g.Expires != w.Expires {
				t.Errorf("Read(%d)[%d] = %+v, want %+v", dev, i, g, *w)
			}
		}
	}
	check(id, 1, envs[1])
	check(id, 2, envs[0], envs[3], envs[4], later)
	check(other, 1, envs[2])
}

func testAppendAllOrNothing(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	for _, bad := range []*store.Envelope{
		envelope(id, 2, "no such device", day),
		envelope(accountID(9), 1, "no such account", day),
	} {
		envs := []*store.Envelope{envelope(id, 1, "ok", day), bad, envelope(id, 1, "ok too", day)}
		wantErr(t, "Append", s.Append(ctx, envs), store.ErrNotFound)
		for _, e := range envs {
			if e.ID != 0 {
				t.Errorf("a failed Append set id %d", e.ID)
			}
		}
		if ids := readIDs(t, s, id, 1); len(ids) != 0 {
			t.Fatalf("a failed Append stored %d envelopes", len(ids))
		}
	}
	if err := s.Append(ctx, []*store.Envelope{envelope(id, 1, "x", day), nil}); err == nil {
		t.Error("Append with a nil envelope succeeded")
	}
	if ids := readIDs(t, s, id, 1); len(ids) != 0 {
		t.Fatalf("a failed Append stored %d envelopes", len(ids))
	}
}

func testReadPaging(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	ids := appendN(t, s, id, 1, 10)
	appendN(t, s, id, 2, 3)

	var got []store.EnvelopeID
	after := store.EnvelopeID(0)
	for page := 0; ; page++ {
		envs, err := s.Read(ctx, id, 1, after, 3)
		must(t, "Read", err)
		if len(envs) > 3 {
			t.Fatalf("Read returned %d envelopes, limit 3", len(envs))
		}
		if len(envs) == 0 {
			break
		}
		for _, e := range envs {
			got = append(got, e.ID)
			after = e.ID
		}
		if page > 10 {
			t.Fatal("paging does not end")
		}
	}
	if !equalSlices(got, ids) {
		t.Errorf("paged ids %v, want %v", got, ids)
	}
	envs, err := s.Read(ctx, id, 1, ids[4], 2)
	must(t, "Read", err)
	if len(envs) != 2 || envs[0].ID != ids[5] || envs[1].ID != ids[6] {
		t.Errorf("Read after %d = %+v", ids[4], envs)
	}
	envs, err = s.Read(ctx, id, 1, ids[9], 5)
	if err != nil || len(envs) != 0 {
		t.Errorf("Read after the last id = %d, %v", len(envs), err)
	}

	_, err = s.Read(ctx, id, 3, 0, 5)
	wantErr(t, "Read unknown device", err, store.ErrNotFound)
	if _, err := s.Read(ctx, id, 1, 0, 0); err == nil {
		t.Error("Read with limit 0 succeeded")
	}
}

func testAck(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	ids := appendN(t, s, id, 1, 5)
	ids2 := appendN(t, s, id, 2, 5)

	must(t, "Ack", s.Ack(ctx, id, 1, []store.EnvelopeID{ids[1], ids[3]}))
	want := []store.EnvelopeID{ids[0], ids[2], ids[4]}
	if got := readIDs(t, s, id, 1); !equalSlices(got, want) {
		t.Fatalf("after Ack: %v, want %v", got, want)
	}
	must(t, "Ack again", s.Ack(ctx, id, 1, []store.EnvelopeID{ids[1], ids[3]}))
	must(t, "Ack unknown id", s.Ack(ctx, id, 1, []store.EnvelopeID{ids[4] + 1000}))
	must(t, "Ack nothing", s.Ack(ctx, id, 1, nil))
	must(t, "Ack repeated id", s.Ack(ctx, id, 1, []store.EnvelopeID{ids[0], ids[0], ids[1]}))
	want = []store.EnvelopeID{ids[2], ids[4]}
	if got := readIDs(t, s, id, 1); !equalSlices(got, want) {
		t.Fatalf("after more Acks: %v, want %v", got, want)
	}
	// Acks name one mailbox: device 2's envelopes stay.
	if got := readIDs(t, s, id, 2); !equalSlices(got, ids2) {
		t.Fatalf("Ack on device 1 changed device 2: %v, want %v", got, ids2)
	}
	wantErr(t, "Ack unknown device", s.Ack(ctx, id, 3, ids), store.ErrNotFound)
	wantErr(t, "Ack unknown account", s.Ack(ctx, accountID(5), 1, ids), store.ErrNotFound)
}

func testIDsNeverReused(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	ids := appendN(t, s, id, 1, 3)
	must(t, "Ack", s.Ack(ctx, id, 1, ids))
	next := appendN(t, s, id, 1, 1)[0]
	if next <= ids[2] {
		t.Errorf("id %d after acking up to %d", next, ids[2])
	}

	ids2 := appendN(t, s, id, 2, 3)
	must(t, "RemoveDevice", s.RemoveDevice(ctx, id, 2))
	addDevice(t, s, id, 2)
	if next := appendN(t, s, id, 2, 1)[0]; next <= ids2[2] {
		t.Errorf("re-added device got id %d, not above its predecessor's %d", next, ids2[2])
	}
}

func testMaxMailbox(t *testing.T, open Opener) {
	l := store.DefaultLimits()
	l.MaxMailbox = 5
	s := open(t, l)
	ctx := t.Context()
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	ids := appendN(t, s, id, 1, 5)

	full := envelope(id, 1, "one too many", day)
	wantErr(t, "Append to a full mailbox", s.Append(ctx, []*store.Envelope{full}), store.ErrMailboxFull)
	if full.ID != 0 {
		t.Error("a refused Append set an id")
	}
	envs := []*store.Envelope{envelope(id, 2, "fits", day), envelope(id, 1, "does not", day)}
	wantErr(t, "Append to two mailboxes, one full", s.Append(ctx, envs), store.ErrMailboxFull)
	if got := readIDs(t, s, id, 2); len(got) != 0 {
		t.Errorf("a refused Append stored %d envelopes in the other mailbox", len(got))
	}
	var six []*store.Envelope
	for i := range 6 {
		six = append(six, envelope(id, 2, fmt.Sprint(i), day))
	}
	wantErr(t, "Append more than fit at once", s.Append(ctx, six), store.ErrMailboxFull)
	if got := readIDs(t, s, id, 2); len(got) != 0 {
		t.Errorf("a refused Append stored %d envelopes", len(got))
	}
	must(t, "Append exactly the limit", s.Append(ctx, six[:5]))

	must(t, "Ack", s.Ack(ctx, id, 1, ids[:2]))
	appendN(t, s, id, 1, 2)
	wantErr(t, "Append after refilling", s.Append(ctx, []*store.Envelope{envelope(id, 1, "x", day)}), store.ErrMailboxFull)
	if got := readIDs(t, s, id, 1); len(got) != 5 {
		t.Errorf("mailbox holds %d envelopes, limit 5", len(got))
	}

	// A removed device's mailbox does not count for the next one.
	must(t, "RemoveDevice", s.RemoveDevice(ctx, id, 2))
	addDevice(t, s, id, 2)
	appendN(t, s, id, 2, 5)
}

func testExpire(t *testing.T, open Opener) {
	l := store.DefaultLimits()
	l.MaxMailbox = 4
	s := open(t, l)
	ctx := t.Context()
	id := newAccount(t, s, 1)
	other := newAccount(t, s, 2)
	const today = day + 30
	old1 := envelope(id, 1, "old", today-5)
	old2 := envelope(id, 1, "old", today-1)
	keep1 := envelope(id, 1, "today", today)
	keep2 := envelope(id, 1, "later", today+1)
	old3 := envelope(other, 1, "old", today-1)
	keep3 := envelope(other, 1, "later", today+9)
	must(t, "Append", s.Append(ctx, []*store.Envelope{old1, old2, keep1, keep2, old3, keep3}))

	n, err := s.Expire(ctx, today)
	must(t, "Expire", err)
	if n != 3 {
		t.Errorf("Expire deleted %d, want 3", n)
	}
	if got := readIDs(t, s, id, 1); !equalSlices(got, []store.EnvelopeID{keep1.ID, keep2.ID}) {
		t.Errorf("after Expire: %v, want %v", got, []store.EnvelopeID{keep1.ID, keep2.ID})
	}
	if got := readIDs(t, s, other, 1); !equalSlices(got, []store.EnvelopeID{keep3.ID}) {
		t.Errorf("after Expire: %v, want %v", got, []store.EnvelopeID{keep3.ID})
	}
	n, err = s.Expire(ctx, today)
	if err != nil || n != 0 {
		t.Errorf("Expire again = %d, %v; want 0", n, err)
	}
	// Expired envelopes no longer count against the mailbox limit.
	appendN(t, s, id, 1, 2)
	wantErr(t, "Append over the limit", s.Append(ctx, []*store.Envelope{envelope(id, 1, "x", today)}), store.ErrMailboxFull)
}

func testAppendConcurrent(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	const (
		goroutines = 20
		appends    = 15
	)
	id := newAccount(t, s, 1)
	addDevice(t, s, id, 2)
	got := make([][]store.EnvelopeID, goroutines)
	errs := make([]error, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range appends {
				// Every other call also writes to device 2.
				envs := []*store.Envelope{envelope(id, 1, fmt.Sprintf("%d/%d", g, i), day+30)}
				if i%2 == 1 {
					envs = append(envs, envelope(id, 2, "x", day+30), envelope(id, 1, fmt.Sprintf("%d/%d+", g, i), day+30))
				}
				if err := s.Append(ctx, envs); err != nil {
					errs[g] = err
					return
				}
				for _, e := range envs {
					if e.Device == 1 {
						got[g] = append(got[g], e.ID)
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	var all []store.EnvelopeID
	for g := range goroutines {
		must(t, "Append", errs[g])
		if !slices.IsSorted(got[g]) || !distinct(got[g]) {
			t.Errorf("goroutine %d: ids not increasing: %v", g, got[g])
		}
		all = append(all, got[g]...)
	}
	if !distinct(all) {
		t.Fatal("concurrent Appends got the same id twice")
	}
	slices.Sort(all)
	if stored := readIDs(t, s, id, 1); !equalSlices(stored, all) {
		t.Errorf("Read returned %d ids, Append gave out %d (or they differ)", len(stored), len(all))
	}
	if n := len(readIDs(t, s, id, 2)); n != goroutines*(appends/2) {
		t.Errorf("device 2 holds %d envelopes, want %d", n, goroutines*(appends/2))
	}
}

// testAsyncMailboxes checks AppendAsync and AckAsync against what Append
// and Ack promise, for stores that offer them.
func testAsyncMailboxes(t *testing.T, open Opener) {
	s := open(t, store.Limits{MaxDevices: 4, MaxOneTimePreKeys: 10, MaxMailbox: 300})
	as := store.AsyncOf(s)
	if as == nil {
		t.Skipf("%T waits for every change, as configured (no store.AsyncMailboxes)", s)
	}
	ctx := t.Context()
	id := newAccount(t, s, 1)

	// outcomes collects each done call, failing on a second one.
	type outcome struct {
		mu    sync.Mutex
		calls int
		err   error
		ch    chan struct{}
	}
	newOutcome := func() *outcome { return &outcome{ch: make(chan struct{})} }
	doneOf := func(o *outcome) func(error) {
		return func(err error) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.calls++
			if o.calls == 1 {
				o.err = err
				close(o.ch)
			}
		}
	}
	wait := func(o *outcome) error {
		t.Helper()
		<-o.ch
		return o.err
	}

	// Queued one after another without waiting, the appends commit in
	// that order: ids increase with the order of the calls.
	const n = 200
	envs := make([]*store.Envelope, n)
	outs := make([]*outcome, n)
	for i := range n {
		envs[i] = envelope(id, 1, fmt.Sprintf("async %d", i), day+30)
		outs[i] = newOutcome()
		as.AppendAsync(ctx, []*store.Envelope{envs[i]}, doneOf(outs[i]))
	}
	var ids []store.EnvelopeID
	for i := range n {
		must(t, "AppendAsync", wait(outs[i]))
		ids = append(ids, envs[i].ID)
	}
	if !slices.IsSorted(ids) || !distinct(ids) || ids[0] == 0 {
		t.Fatalf("ids of appends queued in order: %v", ids)
	}
	if got := readIDs(t, s, id, 1); !equalSlices(got, ids) {
		t.Fatalf("Read after AppendAsync: %d ids, want %d", len(got), len(ids))
	}

	// Refusals come through done, with nothing stored.
	o := newOutcome()
	as.AppendAsync(ctx, []*store.Envelope{envelope(id, 9, "no such device", day+30)}, doneOf(o))
	wantErr(t, "AppendAsync to an unknown device", wait(o), store.ErrNotFound)
	over := make([]*store.Envelope, 101)
	for i := range over {
		over[i] = envelope(id, 1, "over", day+30)
	}
	o = newOutcome()
	as.AppendAsync(ctx, over, doneOf(o))
	wantErr(t, "AppendAsync past the mailbox limit", wait(o), store.ErrMailboxFull)
	for _, e := range over {
		if e.ID != 0 {
			t.Fatalf("a refused AppendAsync set id %d", e.ID)
		}
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	o = newOutcome()
	as.AppendAsync(ended, []*store.Envelope{envelope(id, 1, "too late", day+30)}, doneOf(o))
	wantErr(t, "AppendAsync with an ended context", wait(o), context.Canceled)
	if got := readIDs(t, s, id, 1); len(got) != n {
		t.Fatalf("refused AppendAsyncs stored something: %d envelopes, want %d", len(got), n)
	}

	// Acks: with done, and without (then the next change, queued after
	// it, commits after it).
	o = newOutcome()
	as.AckAsync(ctx, id, 1, ids[:100], doneOf(o))
	must(t, "AckAsync", wait(o))
	as.AckAsync(ctx, id, 1, ids[100:150], nil)
	o = newOutcome()
	as.AckAsync(ctx, id, 1, ids[150:151], doneOf(o))
	must(t, "AckAsync", wait(o))
	if got := readIDs(t, s, id, 1); !equalSlices(got, ids[151:]) {
		t.Fatalf("after AckAsync: %d envelopes, want %d", len(got), len(ids[151:]))
	}
	o = newOutcome()
	as.AckAsync(ctx, id, 7, ids, doneOf(o))
	wantErr(t, "AckAsync on an unknown device", wait(o), store.ErrNotFound)

	// Every done was called once.
	for i, o := range outs {
		o.mu.Lock()
		calls := o.calls
		o.mu.Unlock()
		if calls != 1 {
			t.Fatalf("append %d: done called %d times", i, calls)
		}
	}
}
