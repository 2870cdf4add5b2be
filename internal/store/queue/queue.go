// Package queue keeps the devices' mailboxes in a log-structured key-value
// store (github.com/cockroachdb/pebble), built for what a mailbox is: an
// append-and-delete queue. An envelope is one key written once and deleted
// once, usually before the memtable holding it is flushed, so most
// envelopes never reach a table file at all; a B-tree (SQLite) instead
// rewrites pages for every insert and every delete.
//
// A Queue implements store.Mailboxes. It does not own the list of devices:
// its owner (store/sqlite, which keeps accounts and devices) tells it which
// mailboxes exist when it opens it and as devices come and go.
//
// # Layout
//
// Every envelope is one key:
//
//	'm' ‖ account (16) ‖ device (4, big-endian) ‖ id (8, big-endian)
//	  → expires day (4, big-endian) ‖ content
//
// so a mailbox is a key range in id order, and
//
//	'c' ‖ account (16) ‖ device (4) → the mailbox's next id (8, big-endian)
//
// holds each mailbox's counter. Ids in a mailbox are consecutive, so a
// reader that was handed ids up to N knows that N+1 is the next; the
// counter outlives its device, so a device removed and added again under
// the same id never sees an id twice.
//
// # Durability and order
//
// One writer goroutine runs every change. It gathers the changes that are
// waiting into one batch, assigns ids, commits the batch with an fsync
// (pebble.Sync) and only then answers the callers: group commit, as in
// store/sqlite. A batch of acks alone is not fsynced (see Queue.commit).
// (Applying the next batch while the last one's fsync runs, with pebble's
// ApplyNoSyncWait, was measured: higher latency at 10,000 sends/s, no
// clear gain in throughput; see BENCHMARKS.md.)
//
// Pebble makes a batch visible before its fsync ends. Read returns only
// envelopes whose batch is durable (each mailbox remembers the last such
// id), so that no device ever sees an envelope, or its id, that a crash
// could take back and give to another envelope. Batches apply one after
// another, so envelopes become readable in id order within a mailbox; a
// reader that has seen id N never later finds a smaller id appear.
//
// How many envelopes each mailbox holds is kept in memory, counted from
// the keys when the queue opens; the mailbox limit is checked against it.
//
// # Deletion
//
// Ack and Expire delete an envelope with pebble's SingleDelete, which
// annihilates with the one Set it meets: an envelope acked while still in
// the memtable leaves nothing at all in the table file the memtable is
// flushed to (a tombstone would be written there, and compacted down the
// levels later: 6% of sottod's CPU at saturation). SingleDelete is only
// correct for a key set once and deleted once, which holds here: ids are
// never reused (the reservation above), and a change deletes only an
// envelope it found still stored, not earlier in its own group (see
// group.delete). Removing a mailbox or an account deletes ranges.
//
// The envelope's bytes stay in pebble's write-ahead log until the memtable
// is flushed (then the log file is deleted) and, for an envelope that
// reached a table file, until a compaction drops it. Unlike
// store/sqlite's secure_delete, deleted bytes are not overwritten at once.
// They are sealed ciphertext either way.
package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/batch"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
)

// Limits of the writer, each with its reason.
const (
	// maxBatchOps bounds how many changes share one commit: enough that
	// the fsync is shared widely, few enough that one failed commit fails
	// few callers.
	maxBatchOps = 1024
	// maxBatchBytes bounds the envelope bytes of one commit (a single
	// larger Append still runs, alone), so that a batch is written in
	// milliseconds.
	maxBatchBytes = 16 << 20
	// opQueue is how many changes may wait for the writer before callers
	// block: about a batch, so the next one gathers while one commits.
	opQueue = 1024
	// memTableSize is pebble's in-memory table, eight times its default:
	// at 20,000 envelopes of 1.5 kB a second it fills in about a second,
	// longer than most envelopes wait for their ack, so an envelope and
	// its tombstone meet in memory and its bytes are never written to a
	// table file (nor read back from one when an ack checks for it). The
	// memory is touched only as envelopes arrive.
	memTableSize = 32 << 20
	// idReserve is how many envelope ids one write of a mailbox's counter
	// reserves. The counter is the next id after a restart, so that an id
	// is never handed out twice; writing it with every Append was a third
	// of the keys inserted into the memtable. A restart skips at most
	// this many ids of each mailbox (ids are 64 bits, and need not be
	// consecutive).
	idReserve = 4096
	// expireChunk is how many envelopes one Expire change deletes, so that
	// expiring a day's backlog does not hold up the writer for long.
	expireChunk = 4096
)

// Key layout.
const (
	envPrefix     = 'm'
	counterPrefix = 'c'
	boxLen        = 1 + 16 + 4
	envKeyLen     = boxLen + 8
)

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("queue: closed")

// Box names one device's mailbox.
type Box struct {
	Account store.AccountID
	Device  store.DeviceID
}

// Queue is the mailboxes of every device. It is safe for concurrent use.
type Queue struct {
	db    *pebble.DB
	limit int
	log   *slog.Logger

	onSynced func(time.Duration) // Options.OnSyncedCommit, or nil

	ops    chan *op
	opsMu  sync.RWMutex // senders hold it for reading, Close for writing
	shut   bool
	done   chan struct{}
	broken atomic.Pointer[error] // a failed commit: counts may be wrong

	// dbMu keeps Close from closing the database under a reader: Read
	// and Expire hold it for reading while they iterate (pebble panics
	// on a closed database), and dbClosed says Close has run.
	dbMu     sync.RWMutex
	dbClosed bool

	// mu guards boxes. The writer changes it; Read and Ack check a
	// mailbox exists.
	mu    sync.Mutex
	boxes map[store.AccountID]map[store.DeviceID]*box
}

// box is what the queue keeps in memory of one mailbox.
type box struct {
	count  int    // envelopes held
	next   uint64 // the next envelope's id
	synced uint64 // the last id whose batch is durable: Read stops there
	// reserved is the mailbox's counter on disk: ids below it may be
	// handed out without writing the counter again.
	reserved uint64
}

var _ store.Mailboxes = (*Queue)(nil)

// Options configure a Queue.
type Options struct {
	// MaxMailbox is the most envelopes one mailbox holds.
	MaxMailbox int
	// Logger receives pebble's messages; nil discards them.
	Logger *slog.Logger
	// OnSyncedCommit, if set, is told how long each synced commit took
	// (applying, writing and fsyncing the log), on the writer: the
	// disk's fsync tail, which every acknowledged Send waits out, for a
	// metric. It must not block.
	OnSyncedCommit func(time.Duration)
}

// Open opens (creating if needed) the queue in dir. boxes are the
// mailboxes that exist: envelopes of any other mailbox (left by a device
// removed just before a crash) are deleted.
func Open(dir string, boxes []Box, opts Options) (*Queue, error) {
	if opts.MaxMailbox < 1 {
		return nil, fmt.Errorf("queue: mailbox limit %d is below 1", opts.MaxMailbox)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{log}, MemTableSize: memTableSize})
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", dir, err)
	}
	q := &Queue{db: db, limit: opts.MaxMailbox, log: log, onSynced: opts.OnSyncedCommit,
		ops: make(chan *op, opQueue), done: make(chan struct{}),
		boxes: make(map[store.AccountID]map[store.DeviceID]*box)}
	if err := q.load(boxes); err != nil {
		db.Close()
		return nil, fmt.Errorf("queue: open %s: %w", dir, err)
	}
	go q.run()
	return q, nil
}

// load reads the mailboxes' counters and counts their envelopes, deleting
// those of mailboxes not in boxes.
func (q *Queue) load(boxes []Box) error {
	for _, b := range boxes {
		q.addBox(b, 1)
	}
	it, err := q.db.NewIter(&pebble.IterOptions{LowerBound: []byte{counterPrefix}, UpperBound: []byte{counterPrefix + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		b, ok := parseBox(it.Key(), counterPrefix)
		if !ok || len(it.Value()) != 8 {
			it.Close()
			return fmt.Errorf("malformed counter %x", it.Key())
		}
		if st := q.boxes[b.Account][b.Device]; st != nil {
			st.next = binary.BigEndian.Uint64(it.Value())
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	it, err = q.db.NewIter(&pebble.IterOptions{LowerBound: []byte{envPrefix}, UpperBound: []byte{envPrefix + 1}})
	if err != nil {
		return err
	}
	var orphans []Box
	for it.First(); it.Valid(); {
		b, id, ok := parseKey(it.Key())
		if !ok {
			it.Close()
			return fmt.Errorf("malformed key %x", it.Key())
		}
		if st := q.boxes[b.Account][b.Device]; st != nil {
			st.count++
			st.next = max(st.next, id+1)
			it.Next()
			continue
		}
		orphans = append(orphans, b)
		it.SeekGE(boxEnd(b)) // skip the rest of this mailbox
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, devs := range q.boxes {
		for _, st := range devs {
			st.synced = st.next - 1 // all that is on disk is durable
			st.reserved = st.next   // the next Append writes a new reservation
		}
	}
	if len(orphans) > 0 {
		batch := q.db.NewBatch()
		for _, b := range orphans {
			if err := batch.DeleteRange(boxStart(b), boxEnd(b), nil); err != nil {
				return err
			}
		}
		if err := batch.Commit(pebble.Sync); err != nil {
			return err
		}
		q.log.Info("deleted the mailboxes of removed devices", "mailboxes", len(orphans))
	}
	return nil
}

// Close lets queued changes finish and closes the database.
func (q *Queue) Close() error {
	q.opsMu.Lock()
	if q.shut {
		q.opsMu.Unlock()
		return nil
	}
	q.shut = true
	close(q.ops)
	q.opsMu.Unlock()
	<-q.done
	q.dbMu.Lock()
	defer q.dbMu.Unlock()
	q.dbClosed = true
	return q.db.Close()
}

// reading holds off Close while a reader uses the database; the returned
// func ends that. ErrClosed after Close.
func (q *Queue) reading() (done func(), err error) {
	q.dbMu.RLock()
	if q.dbClosed {
		q.dbMu.RUnlock()
		return nil, ErrClosed
	}
	return q.dbMu.RUnlock, nil
}

// Err reports a failed commit, after which the queue refuses changes
// (its counts may no longer match the disk), or ErrClosed.
func (q *Queue) Err() error {
	if p := q.broken.Load(); p != nil {
		return *p
	}
	q.opsMu.RLock()
	defer q.opsMu.RUnlock()
	if q.shut {
		return ErrClosed
	}
	return nil
}

// AddBox makes an empty mailbox for a new device. It is not durable by
// itself: the device list is its owner's, given again to Open.
func (q *Queue) AddBox(ctx context.Context, b Box) error {
	return q.wait(ctx, &op{fn: func(g *group) error {
		// A device added again continues its predecessor's counter, as
		// written earlier in this group or before.
		if next, ok := g.counters[b]; ok {
			q.addBox(b, next)
			return nil
		}
		next := uint64(1)
		v, closer, err := q.db.Get(counterKey(b))
		switch {
		case errors.Is(err, pebble.ErrNotFound):
		case err != nil:
			return err
		default:
			if len(v) == 8 {
				next = binary.BigEndian.Uint64(v)
			}
			closer.Close()
		}
		q.addBox(b, next)
		return nil
	}})
}

func (q *Queue) addBox(b Box, next uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	devs := q.boxes[b.Account]
	if devs == nil {
		devs = make(map[store.DeviceID]*box)
		q.boxes[b.Account] = devs
	}
	if devs[b.Device] == nil {
		devs[b.Device] = &box{next: next, synced: next - 1, reserved: next}
	}
}

// RemoveBox deletes a device's mailbox with its envelopes.
func (q *Queue) RemoveBox(ctx context.Context, b Box) error {
	return q.wait(ctx, &op{fn: func(g *group) error {
		q.mu.Lock()
		if devs := q.boxes[b.Account]; devs != nil {
			delete(devs, b.Device)
			if len(devs) == 0 {
				delete(q.boxes, b.Account)
			}
		}
		q.mu.Unlock()
		return g.batch.DeleteRange(boxStart(b), boxEnd(b), nil)
	}})
}

// RemoveAccount deletes the mailboxes of all the account's devices.
func (q *Queue) RemoveAccount(ctx context.Context, id store.AccountID) error {
	return q.wait(ctx, &op{fn: func(g *group) error {
		q.mu.Lock()
		delete(q.boxes, id)
		q.mu.Unlock()
		for b := range g.counters {
			if b.Account == id {
				delete(g.counters, b)
			}
		}
		// An account id is never given out again, so its counters go too.
		if err := g.batch.DeleteRange(boxPrefix(counterPrefix, Box{Account: id}), accountEnd(counterPrefix, id), nil); err != nil {
			return err
		}
		return g.batch.DeleteRange(boxStart(Box{Account: id}), accountEnd(envPrefix, id), nil)
	}})
}

// Append stores the envelopes durably and sets their ids, all or none:
// ErrNotFound if a device has no mailbox, ErrMailboxFull if a mailbox
// would exceed the limit.
func (q *Queue) Append(ctx context.Context, envs []*store.Envelope) error {
	ch := make(chan error, 1)
	q.AppendAsync(ctx, envs, func(err error) { ch <- err })
	return <-ch
}

// AppendAsync is Append without the wait: it queues the change (waiting
// only while the writer's queue is full, or until ctx ends) and returns.
// done is called once with Append's outcome, the envelopes' ids set,
// from the writer once the commit is durable, or at once if the change
// could not be queued. done runs on the writer: it must not block, nor
// call the queue.
func (q *Queue) AppendAsync(ctx context.Context, envs []*store.Envelope, done func(error)) {
	if len(envs) == 0 {
		done(nil)
		return
	}
	mbs, err := check.Append(envs)
	if err != nil {
		done(fmt.Errorf("append: %w", err))
		return
	}
	size := 0
	for _, e := range envs {
		size += len(e.Content)
	}
	ids := make([]uint64, len(mbs))
	q.submit(ctx, &op{size: size, fn: func(g *group) error {
		// Check every mailbox before writing any.
		q.mu.Lock()
		sts := make([]*box, len(mbs))
		for i, mb := range mbs {
			st := q.boxes[mb.Account][mb.Device]
			if st == nil {
				q.mu.Unlock()
				return store.ErrNotFound
			}
			if st.count+len(mb.Envs) > q.limit {
				q.mu.Unlock()
				return store.ErrMailboxFull
			}
			sts[i] = st
		}
		reserve := make([]uint64, len(mbs)) // a counter to write, or 0
		for i, mb := range mbs {
			st := sts[i]
			ids[i] = st.next
			st.count += len(mb.Envs)
			st.next += uint64(len(mb.Envs))
			if st.next > st.reserved {
				// The counter goes into the same batch as the envelopes
				// that pass the old reservation: neither is durable
				// without the other.
				st.reserved = st.next + idReserve
				reserve[i] = st.reserved
			}
			g.marks = append(g.marks, mark{st, st.next - 1})
		}
		q.mu.Unlock()
		for i, mb := range mbs {
			b := Box{mb.Account, mb.Device}
			for j, e := range mb.Envs {
				g.val = envValue(g.val[:0], e) // Set copies it
				if err := g.batch.Set(envKey(b, ids[i]+uint64(j)), g.val, nil); err != nil {
					return err
				}
			}
			if reserve[i] != 0 {
				var next [8]byte
				binary.BigEndian.PutUint64(next[:], reserve[i])
				if err := g.batch.Set(counterKey(b), next[:], nil); err != nil {
					return err
				}
				g.setCounter(b, reserve[i])
			}
		}
		return nil
	}, finish: func(err error) {
		if err != nil {
			done(fmt.Errorf("append: %w", err))
			return
		}
		for i, mb := range mbs {
			for j, e := range mb.Envs {
				e.ID = store.EnvelopeID(ids[i] + uint64(j))
			}
		}
		done(nil)
	}})
}

// Read returns up to limit envelopes of the device's mailbox with ids
// above after, in id order; ErrNotFound without the mailbox.
func (q *Queue) Read(ctx context.Context, id store.AccountID, dev store.DeviceID, after store.EnvelopeID, limit int) ([]store.Envelope, error) {
	if err := check.ReadLimit(limit); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	b := Box{id, dev}
	q.mu.Lock()
	st := q.boxes[id][dev]
	var synced uint64
	if st != nil {
		synced = st.synced
	}
	q.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("read: %w", store.ErrNotFound)
	}
	if uint64(after) >= synced {
		return nil, nil // nothing durable past after
	}
	done, err := q.reading()
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	defer done()
	it, err := q.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: envKey(b, uint64(after)+1), UpperBound: envKey(b, synced+1)})
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	var envs []store.Envelope
	for it.First(); it.Valid() && len(envs) < limit; it.Next() {
		_, eid, _ := parseKey(it.Key())
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("read: %w", err)
		}
		if len(v) < 5 {
			it.Close()
			return nil, fmt.Errorf("read: envelope %d of %d bytes", eid, len(v))
		}
		envs = append(envs, store.Envelope{ID: store.EnvelopeID(eid), Account: id, Device: dev,
			Expires: store.Day(int32(binary.BigEndian.Uint32(v))), Content: bytes.Clone(v[4:])})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return envs, nil
}

func (q *Queue) exists(b Box) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.boxes[b.Account][b.Device] == nil {
		return store.ErrNotFound
	}
	return nil
}

// Ack deletes the device's envelopes with these ids; unknown ids are
// ignored. ErrNotFound without the mailbox.
func (q *Queue) Ack(ctx context.Context, id store.AccountID, dev store.DeviceID, ids []store.EnvelopeID) error {
	ch := make(chan error, 1)
	q.AckAsync(ctx, id, dev, ids, func(err error) { ch <- err })
	return <-ch
}

// AckAsync is Ack without the wait, as AppendAsync is Append's; done may
// be nil. An ack is not fsynced by itself (see commit): done hears of it
// once it is written.
func (q *Queue) AckAsync(ctx context.Context, id store.AccountID, dev store.DeviceID, ids []store.EnvelopeID, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	b := Box{id, dev}
	if err := q.exists(b); err != nil {
		done(fmt.Errorf("ack: %w", err))
		return
	}
	if len(ids) == 0 {
		done(nil)
		return
	}
	keys := make([][]byte, len(ids))
	for i, eid := range ids {
		keys[i] = envKey(b, uint64(eid))
	}
	q.submit(ctx, &op{lazy: true, fn: func(g *group) error {
		_, err := g.delete(q, keys)
		return err
	}, finish: func(err error) {
		if err != nil {
			err = fmt.Errorf("ack: %w", err)
		}
		done(err)
	}})
}

// Expire deletes every envelope whose expiry day is before today and
// returns how many it deleted. It reads every envelope's expiry (once a
// day: the queue holds only what is undelivered) and deletes in changes of
// expireChunk envelopes.
func (q *Queue) Expire(ctx context.Context, today store.Day) (int, error) {
	done, err := q.reading()
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	defer done()
	it, err := q.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: []byte{envPrefix}, UpperBound: []byte{envPrefix + 1}})
	if err != nil {
		return 0, fmt.Errorf("expire: %w", err)
	}
	defer it.Close()
	total := 0
	var keys [][]byte
	flush := func() error {
		var n int
		err := q.wait(ctx, &op{lazy: true, fn: func(g *group) (err error) {
			n, err = g.delete(q, keys)
			return err
		}})
		total += n
		keys = keys[:0]
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return total, fmt.Errorf("expire: %w", err)
		}
		if len(v) >= 4 && store.Day(int32(binary.BigEndian.Uint32(v))) < today {
			keys = append(keys, bytes.Clone(it.Key()))
			if len(keys) == expireChunk {
				if err := flush(); err != nil {
					return total, fmt.Errorf("expire: %w", err)
				}
			}
		}
	}
	if err := it.Error(); err != nil {
		return total, fmt.Errorf("expire: %w", err)
	}
	if len(keys) > 0 {
		if err := flush(); err != nil {
			return total, fmt.Errorf("expire: %w", err)
		}
	}
	return total, nil
}

// op is one change, run by the writer inside a group.
type op struct {
	size   int  // envelope bytes written, for batch sizing
	lazy   bool // a deletion that may commit without an fsync (see commit)
	fn     func(*group) error
	finish func(error) // told the outcome, once; on the writer
}

// group is the batch the writer is gathering. The batch is not indexed
// (an index costs every Set a skiplist insert, and a Get through it a
// merging iterator): what a change must know of the group's own writes it
// finds in counters and deleted, and the rest in the database.
type group struct {
	batch    *pebble.Batch
	val      []byte                       // scratch for envelope values
	marks    []mark                       // mailboxes whose ids become durable with it
	counters map[Box]uint64               // mailbox counters written in the group
	deleted  map[[envKeyLen]byte]struct{} // envelopes deleted in the group
}

func (g *group) setCounter(b Box, next uint64) {
	if g.counters == nil {
		g.counters = make(map[Box]uint64)
	}
	g.counters[b] = next
}

// mark says a mailbox's envelopes up to id are in a group.
type mark struct {
	st *box
	id uint64
}

// delete deletes the envelopes under keys that exist (committed, and not
// deleted earlier in the group), updates their mailboxes' counts, and
// returns how many it deleted. An envelope appended in the group itself
// is not found: no device can have been pushed it yet, so an ack of its
// id is a guess, and ignored like any unknown id.
func (g *group) delete(q *Queue, keys [][]byte) (int, error) {
	n := 0
	for _, k := range keys {
		var kk [envKeyLen]byte
		if len(k) != envKeyLen {
			return n, fmt.Errorf("envelope key of %d bytes", len(k))
		}
		copy(kk[:], k)
		if _, done := g.deleted[kk]; done {
			continue
		}
		_, closer, err := q.db.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		closer.Close()
		if err := g.batch.SingleDelete(k, nil); err != nil { // set once, deleted once
			return n, err
		}
		if g.deleted == nil {
			g.deleted = make(map[[envKeyLen]byte]struct{})
		}
		g.deleted[kk] = struct{}{}
		b, _, _ := parseKey(k)
		q.mu.Lock()
		if st := q.boxes[b.Account][b.Device]; st != nil && st.count > 0 {
			st.count--
		}
		q.mu.Unlock()
		n++
	}
	return n, nil
}

// wait runs a change and returns its outcome.
func (q *Queue) wait(ctx context.Context, o *op) error {
	ch := make(chan error, 1)
	o.finish = func(err error) { ch <- err }
	q.submit(ctx, o)
	return <-ch
}

// submit queues a change for the writer, waiting while the queue is full;
// a change it cannot queue (ctx ended, the queue closed or broken) is
// finished at once with the reason. Once queued, a change runs and is
// finished by the writer even if ctx ends, so that an error always means
// nothing was written.
func (q *Queue) submit(ctx context.Context, o *op) {
	if err := ctx.Err(); err != nil {
		o.finish(err)
		return
	}
	if p := q.broken.Load(); p != nil {
		o.finish(*p)
		return
	}
	q.opsMu.RLock()
	if q.shut {
		q.opsMu.RUnlock()
		o.finish(ErrClosed)
		return
	}
	select {
	case q.ops <- o:
		q.opsMu.RUnlock()
	case <-ctx.Done():
		q.opsMu.RUnlock()
		o.finish(ctx.Err())
	}
}

func (q *Queue) run() {
	defer close(q.done)
	ops := make([]*op, 0, maxBatchOps)
	for o := range q.ops {
		// Let the callers the last commit woke queue their next change,
		// so that it joins this batch.
		runtime.Gosched()
		ops = batch.Gather(ops, o, q.ops, maxBatchOps, maxBatchBytes, func(o *op) int { return o.size })
		q.commit(ops)
	}
}

// commit runs a batch of changes and commits what they wrote with one
// fsync. A change that fails has written nothing (each checks before it
// writes); the others stand.
func (q *Queue) commit(ops []*op) {
	if p := q.broken.Load(); p != nil {
		for _, o := range ops {
			o.finish(*p)
		}
		return
	}
	g := &group{batch: q.db.NewBatch()}
	defer g.batch.Close()
	errs := make([]error, len(ops))
	for i, o := range ops {
		errs[i] = o.fn(g)
	}
	// A batch of deletions only (acks, expiry) commits without an fsync:
	// the write-ahead log is written in order, so the next synced commit
	// makes them durable too, and if a crash comes first, the envelopes
	// they deleted are delivered again, which at-least-once delivery
	// allows (clients drop duplicates). An envelope's bytes stay on disk
	// until a flush or compaction either way. Every other change is
	// fsynced before its caller hears of it.
	sync := pebble.NoSync
	for _, o := range ops {
		if !o.lazy {
			sync = pebble.Sync
			break
		}
	}
	var err error
	if !g.batch.Empty() {
		start := time.Now()
		err = g.batch.Commit(sync)
		if err == nil && sync == pebble.Sync && q.onSynced != nil {
			q.onSynced(time.Since(start))
		}
	}
	if err != nil {
		err = fmt.Errorf("queue: commit: %w", err)
		q.broken.Store(&err)
		q.log.Error("mailbox commit failed; refusing further changes", "err", err)
		for _, o := range ops {
			o.finish(err)
		}
		return
	}
	// Durable now (pebble made it visible before the fsync ended): Read
	// may return these envelopes from here on.
	q.mu.Lock()
	for _, m := range g.marks {
		m.st.synced = max(m.st.synced, m.id)
	}
	q.mu.Unlock()
	for i, o := range ops {
		o.finish(errs[i])
	}
}

// boxPrefix is the key prefix of b's mailbox (envPrefix) or counter
// (counterPrefix).
func boxPrefix(kind byte, b Box) []byte {
	k := make([]byte, boxLen, envKeyLen)
	k[0] = kind
	copy(k[1:17], b.Account[:])
	binary.BigEndian.PutUint32(k[17:21], uint32(b.Device))
	return k
}

func boxStart(b Box) []byte { return boxPrefix(envPrefix, b) }

func counterKey(b Box) []byte { return boxPrefix(counterPrefix, b) }

// boxEnd is the first key after every key of b's mailbox.
func boxEnd(b Box) []byte {
	if b.Device == ^store.DeviceID(0) {
		return accountEnd(envPrefix, b.Account)
	}
	return boxStart(Box{b.Account, b.Device + 1})
}

// accountEnd is the first key of kind after every key of the account.
func accountEnd(kind byte, id store.AccountID) []byte {
	k := boxPrefix(kind, Box{Account: id})[:17]
	for i := 16; i >= 1; i-- { // increment the account as a big number
		k[i]++
		if k[i] != 0 {
			return k
		}
	}
	return []byte{kind + 1}
}

func envKey(b Box, id uint64) []byte {
	return binary.BigEndian.AppendUint64(boxStart(b), id)
}

func parseKey(k []byte) (Box, uint64, bool) {
	if len(k) != envKeyLen {
		return Box{}, 0, false
	}
	b, ok := parseBox(k[:boxLen], envPrefix)
	return b, binary.BigEndian.Uint64(k[boxLen:]), ok
}

func parseBox(k []byte, kind byte) (Box, bool) {
	if len(k) != boxLen || k[0] != kind {
		return Box{}, false
	}
	var b Box
	copy(b.Account[:], k[1:17])
	b.Device = store.DeviceID(binary.BigEndian.Uint32(k[17:21]))
	return b, true
}

// envValue appends e's stored value to dst.
func envValue(dst []byte, e *store.Envelope) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(int32(e.Expires)))
	return append(dst, e.Content...)
}

// pebbleLogger sends pebble's messages to slog. Pebble logs file and
// compaction events, never keys or values.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Warn("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf is called by pebble on corruption it cannot go on from; pebble
// panics after it, which only main may turn into an exit.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf("pebble: "+format, args...))
}
