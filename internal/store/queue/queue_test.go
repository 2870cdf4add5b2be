package queue

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/store"
)

func open(t *testing.T, dir string, boxes []Box, limit int) *Queue {
	t.Helper()
	q, err := Open(dir, boxes, Options{MaxMailbox: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func appendN(t *testing.T, q *Queue, b Box, n int) []store.EnvelopeID {
	t.Helper()
	envs := make([]*store.Envelope, n)
	for i := range envs {
		envs[i] = &store.Envelope{Account: b.Account, Device: b.Device, Content: []byte{byte(i)}, Expires: 100}
	}
	if err := q.Append(t.Context(), envs); err != nil {
		t.Fatal(err)
	}
	ids := make([]store.EnvelopeID, n)
	for i, e := range envs {
		ids[i] = e.ID
	}
	return ids
}

// TestReopen: after a reopen the mailboxes hold what they held, their
// counts still bound them, ids continue above every earlier one, and the
// mailbox of a device the owner no longer lists is gone.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	kept := Box{Account: store.AccountID{1}, Device: 1}
	gone := Box{Account: store.AccountID{1}, Device: 2}
	neighbour := Box{Account: store.AccountID{2}, Device: 1}
	q, err := Open(dir, []Box{kept, gone, neighbour}, Options{MaxMailbox: 4})
	if err != nil {
		t.Fatal(err)
	}
	ids := appendN(t, q, kept, 3)
	appendN(t, q, gone, 2)
	appendN(t, q, neighbour, 1)
	if err := q.Ack(ctx, kept.Account, kept.Device, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = open(t, dir, []Box{kept, neighbour}, 4)
	envs, err := q.Read(ctx, kept.Account, kept.Device, 0, 10)
	if err != nil || len(envs) != 2 || envs[0].ID != ids[1] || envs[1].ID != ids[2] {
		t.Fatalf("after reopen: %v, %v; want ids %v", envs, err, ids[1:])
	}
	// Two held, limit four: two more fit, a third does not.
	next := appendN(t, q, kept, 2)
	if next[0] <= ids[2] {
		t.Fatalf("id %d after %d", next[0], ids[2])
	}
	err = q.Append(ctx, []*store.Envelope{{Account: kept.Account, Device: kept.Device, Content: []byte{1}}})
	if !errors.Is(err, store.ErrMailboxFull) {
		t.Fatalf("Append over the limit after reopen: %v", err)
	}
	if _, err := q.Read(ctx, gone.Account, gone.Device, 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Read of an unlisted device: %v", err)
	}
	if err := q.AddBox(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if envs, err := q.Read(ctx, gone.Account, gone.Device, 0, 10); err != nil || len(envs) != 0 {
		t.Fatalf("a device added again found %d envelopes (%v)", len(envs), err)
	}
	if envs, err := q.Read(ctx, neighbour.Account, neighbour.Device, 0, 10); err != nil || len(envs) != 1 {
		t.Fatalf("neighbour holds %d envelopes (%v), want 1", len(envs), err)
	}
}

// TestAckTwiceInOneBatch: acking an envelope twice, even within one
// commit, frees its place in the mailbox once.
func TestAckTwiceInOneBatch(t *testing.T) {
	ctx := t.Context()
	b := Box{Account: store.AccountID{1}, Device: 1}
	q := open(t, t.TempDir(), []Box{b}, 2)
	ids := appendN(t, q, b, 2)
	done := make(chan error, 8)
	for range 8 {
		go func() { done <- q.Ack(ctx, b.Account, b.Device, []store.EnvelopeID{ids[0], ids[0]}) }()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, q, b, 1) // the freed place
	err := q.Append(ctx, []*store.Envelope{{Account: b.Account, Device: b.Device, Content: []byte{1}}})
	if !errors.Is(err, store.ErrMailboxFull) {
		t.Fatalf("a second place was freed: %v", err)
	}
}

// TestRemoveAccount: removing an account deletes its mailboxes and no
// other account's, including one whose id sorts right after it.
func TestRemoveAccount(t *testing.T) {
	ctx := t.Context()
	a := store.AccountID{1, 0xff}
	for i := 2; i < 16; i++ {
		a[i] = 0xff
	}
	after := a
	after[0] = 2
	for i := 1; i < 16; i++ {
		after[i] = 0
	}
	boxes := []Box{{a, 1}, {a, ^store.DeviceID(0)}, {after, 1}}
	q := open(t, t.TempDir(), boxes, 10)
	for _, b := range boxes {
		appendN(t, q, b, 2)
	}
	if err := q.RemoveAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Read(ctx, a, 1, 0, 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Read after RemoveAccount: %v", err)
	}
	if envs, err := q.Read(ctx, after, 1, 0, 10); err != nil || len(envs) != 2 {
		t.Fatalf("the next account holds %d envelopes (%v), want 2", len(envs), err)
	}
	// Re-adding a's device finds its mailbox empty.
	if err := q.AddBox(ctx, Box{a, ^store.DeviceID(0)}); err != nil {
		t.Fatal(err)
	}
	if envs, err := q.Read(ctx, a, ^store.DeviceID(0), 0, 10); err != nil || len(envs) != 0 {
		t.Fatalf("removed mailbox holds %d envelopes (%v)", len(envs), err)
	}
}

// TestConsecutiveIDs: a mailbox's ids follow one another with no gap
// whatever other mailboxes receive in between, so that a reader handed ids
// up to N knows the next is N+1 (the relay pushes on that basis).
func TestConsecutiveIDs(t *testing.T) {
	a := Box{Account: store.AccountID{1}, Device: 1}
	b := Box{Account: store.AccountID{2}, Device: 1}
	q := open(t, t.TempDir(), []Box{a, b}, 100)
	var ids []store.EnvelopeID
	for i := range 5 {
		ids = append(ids, appendN(t, q, a, i%2+1)...)
		appendN(t, q, b, 3)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("ids %v are not consecutive", ids)
		}
	}
}

// FuzzParseKey: any bytes parse or are refused without a panic, and a key
// that parses is the key its parts make.
func FuzzParseKey(f *testing.F) {
	f.Add(envKey(Box{Account: store.AccountID{1}, Device: 2}, 3))
	f.Add(counterKey(Box{Account: store.AccountID{1}, Device: 2}))
	f.Add([]byte{envPrefix})
	f.Fuzz(func(t *testing.T, k []byte) {
		if b, id, ok := parseKey(k); ok {
			if got := envKey(b, id); string(got) != string(k) {
				t.Fatalf("key %x parsed to %v/%d, which makes %x", k, b, id, got)
			}
		}
		if b, ok := parseBox(k, counterPrefix); ok {
			if got := counterKey(b); string(got) != string(k) {
				t.Fatalf("counter key %x parsed to %v, which makes %x", k, b, got)
			}
		}
	})
}

// TestClosed: every call after Close fails with ErrClosed rather than
// reaching the closed database.
func TestClosed(t *testing.T) {
	ctx := t.Context()
	b := Box{Account: store.AccountID{1}, Device: 1}
	q, err := Open(t.TempDir(), []Box{b}, Options{MaxMailbox: 10})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, q, b, 1)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := q.Read(ctx, b.Account, b.Device, 0, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("Read: %v", err)
	}
	if _, err := q.Expire(ctx, 1000); !errors.Is(err, ErrClosed) {
		t.Errorf("Expire: %v", err)
	}
	if err := q.Ack(ctx, b.Account, b.Device, []store.EnvelopeID{1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack: %v", err)
	}
	err = q.Append(ctx, []*store.Envelope{{Account: b.Account, Device: b.Device, Content: []byte{1}}})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("Append: %v", err)
	}
	if err := q.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Err: %v", err)
	}
}

// TestReadOnlyDurable: pebble makes a batch visible before its fsync
// ends; Read must not return an envelope until its batch is durable, or a
// crash could hand its id to another envelope after a device saw it.
func TestReadOnlyDurable(t *testing.T) {
	b := Box{Account: store.AccountID{7}, Device: 1}
	q := open(t, t.TempDir(), []Box{b}, 100)
	ids := appendN(t, q, b, 3)
	// An envelope that is in the database but whose batch has not been
	// synced yet, as the writer leaves it while the syncer waits.
	if err := q.db.Set(envKey(b, uint64(ids[2])+1), []byte{0, 0, 0, 100, 'x'}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := q.Read(t.Context(), b.Account, b.Device, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].ID != ids[2] {
		t.Fatalf("read %d envelopes, want the 3 durable ones", len(got))
	}
	if got, _ := q.Read(t.Context(), b.Account, b.Device, ids[2], 10); len(got) != 0 {
		t.Fatalf("read %d envelopes past the durable ones", len(got))
	}
	// Once the syncer marks it durable, it is read.
	q.mu.Lock()
	q.boxes[b.Account][b.Device].synced++
	q.mu.Unlock()
	if got, _ := q.Read(t.Context(), b.Account, b.Device, ids[2], 10); len(got) != 1 {
		t.Fatalf("read %d envelopes after the sync, want 1", len(got))
	}
}

// TestIDsNeverReusedAcrossReservations: the counter is written once per
// idReserve ids, yet after a reopen of an emptied mailbox, with ids handed
// out on both sides of a reservation, every new id is above every old one.
func TestIDsNeverReusedAcrossReservations(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	b := Box{Account: store.AccountID{7}, Device: 1}
	for round := range 3 {
		q, err := Open(dir, []Box{b}, Options{MaxMailbox: 2 * idReserve})
		if err != nil {
			t.Fatal(err)
		}
		// One (which writes a reservation), up to just below the
		// reservation's end at once, then one by one across it, then a
		// batch again.
		all := appendN(t, q, b, 1)
		all = append(all, appendN(t, q, b, idReserve-3)...)
		for range 6 {
			all = append(all, appendN(t, q, b, 1)...)
		}
		all = append(all, appendN(t, q, b, 5)...)
		for i := 1; i < len(all); i++ {
			if all[i] != all[i-1]+1 {
				t.Fatalf("round %d: id %d after %d within one run", round, all[i], all[i-1])
			}
		}
		for i := 0; i < len(all); i += 1000 {
			if err := q.Ack(ctx, b.Account, b.Device, all[i:min(i+1000, len(all))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q = open(t, dir, []Box{b}, 10)
		next := appendN(t, q, b, 1)
		if next[0] <= all[len(all)-1] {
			t.Fatalf("round %d: after a reopen, id %d, but %d was handed out before", round, next[0], all[len(all)-1])
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// holdWriter blocks the writer inside a commit until the returned func is
// called, so that the changes queued meanwhile make one group.
func holdWriter(t *testing.T, q *Queue) (release func()) {
	t.Helper()
	started, held := make(chan struct{}), make(chan struct{})
	q.submit(t.Context(), &op{fn: func(*group) error {
		close(started)
		<-held
		return nil
	}, finish: func(error) {}})
	<-started
	return func() { close(held) }
}

// waitQueued waits until n changes wait for the writer.
func waitQueued(t *testing.T, q *Queue, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(q.ops) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d changes queued, want %d", len(q.ops), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOneGroupSeesItsOwnWrites: changes committed together see what the
// earlier ones wrote, though the batch is not indexed. A mailbox removed
// and added again right after an Append that wrote its counter continues
// that counter, and an id acked twice frees one place.
func TestOneGroupSeesItsOwnWrites(t *testing.T) {
	ctx := t.Context()
	b := Box{Account: store.AccountID{9}, Device: 1}
	q := open(t, t.TempDir(), []Box{b}, 2)

	release := holdWriter(t, q)
	first := &store.Envelope{Account: b.Account, Device: b.Device, Content: []byte("first"), Expires: 100}
	appended := make(chan error, 1)
	q.AppendAsync(ctx, []*store.Envelope{first}, func(err error) { appended <- err })
	waitQueued(t, q, 1)
	removed, added := make(chan error, 1), make(chan error, 1)
	go func() { removed <- q.RemoveBox(ctx, b) }()
	waitQueued(t, q, 2)
	go func() { added <- q.AddBox(ctx, b) }()
	waitQueued(t, q, 3)
	release()
	for _, ch := range []chan error{appended, removed, added} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if next := appendN(t, q, b, 1); next[0] <= first.ID {
		t.Fatalf("mailbox added again in the group that wrote its counter: id %d after %d", next[0], first.ID)
	}

	// The box holds one envelope now; fill it, ack one twice in one
	// group, and exactly one place is free.
	ids := appendN(t, q, b, 1)
	release = holdWriter(t, q)
	acked := make(chan error, 2)
	q.AckAsync(ctx, b.Account, b.Device, ids, func(err error) { acked <- err })
	q.AckAsync(ctx, b.Account, b.Device, ids, func(err error) { acked <- err })
	waitQueued(t, q, 2)
	release()
	for range 2 {
		if err := <-acked; err != nil {
			t.Fatal(err)
		}
	}
	appendN(t, q, b, 1)
	err := q.Append(ctx, []*store.Envelope{{Account: b.Account, Device: b.Device, Content: []byte{1}}})
	if !errors.Is(err, store.ErrMailboxFull) {
		t.Fatalf("an id acked twice in one group freed two places: %v", err)
	}
}

// TestAckedStayDeletedThroughFlushes: envelopes deleted with SingleDelete
// stay deleted whether the delete met its envelope in the memtable or in a
// table file, through flushes, compactions and a reopen.
func TestAckedStayDeletedThroughFlushes(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	b := Box{Account: store.AccountID{5}, Device: 1}
	q, err := Open(dir, []Box{b}, Options{MaxMailbox: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	ids := appendN(t, q, b, 300)
	// Acked in the memtable, beside their Sets.
	if err := q.Ack(ctx, b.Account, b.Device, ids[:100]); err != nil {
		t.Fatal(err)
	}
	if err := q.db.Flush(); err != nil {
		t.Fatal(err)
	}
	// Acked after their Sets reached a table file, twice over.
	for range 2 {
		if err := q.Ack(ctx, b.Account, b.Device, ids[100:200]); err != nil {
			t.Fatal(err)
		}
	}
	more := appendN(t, q, b, 50)
	if err := q.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := q.db.Compact(ctx, []byte{envPrefix}, []byte{envPrefix + 1}, true); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(ctx, b.Account, b.Device, more[:25]); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = open(t, dir, []Box{b}, 10_000)
	envs, err := q.Read(ctx, b.Account, b.Device, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]store.EnvelopeID{}, ids[200:]...), more[25:]...)
	if len(envs) != len(want) {
		t.Fatalf("after flushes, a compaction and a reopen: %d envelopes, want %d", len(envs), len(want))
	}
	for i, e := range envs {
		if e.ID != want[i] {
			t.Fatalf("envelope %d: id %d, want %d", i, e.ID, want[i])
		}
	}
	q.mu.Lock()
	count := q.boxes[b.Account][b.Device].count
	q.mu.Unlock()
	if count != len(want) {
		t.Fatalf("mailbox count %d after reopen, want %d", count, len(want))
	}
}

// TestOnSyncedCommit: the hook hears of every commit that waited for an
// fsync (each Append), and of no commit of acks alone.
func TestOnSyncedCommit(t *testing.T) {
	ctx := t.Context()
	b := Box{Account: store.AccountID{3}, Device: 1}
	var mu sync.Mutex
	var commits []time.Duration
	q, err := Open(t.TempDir(), []Box{b}, Options{MaxMailbox: 100, OnSyncedCommit: func(d time.Duration) {
		mu.Lock()
		commits = append(commits, d)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(commits)
	}
	ids := appendN(t, q, b, 3)
	ids = append(ids, appendN(t, q, b, 2)...)
	if n := count(); n != 2 {
		t.Fatalf("two Appends, one after the other: %d synced commits heard of", n)
	}
	if err := q.Ack(ctx, b.Account, b.Device, ids); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("an Ack made %d synced commits heard of; want none", n-2)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range commits {
		if d <= 0 {
			t.Fatalf("commit took %v", d)
		}
	}
}
