package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/internal/batch"
	"github.com/sotto-chat/sotto/internal/store/internal/check"
)

const (
	// appendCommitters is how many Append transactions run at once. Each
	// takes every Append queued when it starts, so one is enough to batch;
	// a second overlaps one batch's round trips and fsync with the next.
	appendCommitters = 2
	// maxAppendBatch bounds the envelopes one Append transaction writes,
	// so that its row locks are held for milliseconds. A single larger
	// Append still runs, alone.
	maxAppendBatch = 4096
	// appendQueue is how many Appends may wait for a committer before
	// callers block.
	appendQueue = 1024
)

// errClosed is returned by Appends made after Close.
var errClosed = errors.New("postgres store: closed")

// Request states: a caller whose context ends cancels its request unless a
// committer has started it; then the caller waits for the outcome, so that
// an error always means nothing was written.
const (
	reqPending int32 = iota
	reqRunning
	reqCancelled
)

type appendReq struct {
	mbs    []check.Mailbox
	n      int     // envelopes
	firsts []int64 // per mailbox, set on success
	state  atomic.Int32
	done   chan error
}

// appender commits concurrent Appends together (group commit): a
// committer takes every queued Append, locks their mailboxes' device rows
// in key order, decides each Append on its own (one refused for a full
// mailbox leaves the others), and writes the accepted ones in one
// transaction: four round trips and one WAL flush for the lot.
//
// mu guards shut and the sending side of reqs, as in store/sqlite.
type appender struct {
	s    *Store
	reqs chan *appendReq
	mu   sync.RWMutex
	shut bool
	wg   sync.WaitGroup
}

func newAppender(s *Store) *appender {
	a := &appender{s: s, reqs: make(chan *appendReq, appendQueue)}
	for range appendCommitters {
		a.wg.Go(a.run)
	}
	return a
}

func (a *appender) append(ctx context.Context, mbs []check.Mailbox, n int) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &appendReq{mbs: mbs, n: n, done: make(chan error, 1)}
	a.mu.RLock()
	if a.shut {
		a.mu.RUnlock()
		return nil, errClosed
	}
	select {
	case a.reqs <- r:
		a.mu.RUnlock()
	case <-ctx.Done():
		a.mu.RUnlock()
		return nil, ctx.Err()
	}
	var err error
	select {
	case err = <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqPending, reqCancelled) {
			return nil, ctx.Err()
		}
		err = <-r.done
	}
	if err != nil {
		return nil, err
	}
	return r.firsts, nil
}

// close stops taking Appends, lets the queued ones finish, and waits for
// the committers to exit.
func (a *appender) close() {
	a.mu.Lock()
	if !a.shut {
		a.shut = true
		close(a.reqs)
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func (a *appender) run() {
	var reqs []*appendReq
	for r := range a.reqs {
		reqs = batch.Gather(reqs, r, a.reqs, math.MaxInt, maxAppendBatch, func(r *appendReq) int { return r.n })
		a.commit(reqs)
	}
}

type mailboxKey struct {
	account store.AccountID
	device  store.DeviceID
}

func compareKeys(x, y mailboxKey) int {
	if c := bytes.Compare(x.account[:], y.account[:]); c != 0 {
		return c
	}
	return int(int64(x.device) - int64(y.device))
}

// mailboxState is a device row as the batch sees it.
type mailboxState struct {
	next, count int64
	touched     bool
}

// refuse returns why an Append cannot be stored, or nil: ErrNotFound for a
// missing device, ErrMailboxFull for a mailbox it would overfill, whichever
// mailbox comes first in key order.
func refuse(state map[mailboxKey]*mailboxState, mbs []check.Mailbox, limit int64) error {
	for _, mb := range mbs {
		st := state[mailboxKey{mb.Account, mb.Device}]
		if st == nil {
			return store.ErrNotFound
		}
		if st.count+int64(len(mb.Envs)) > limit {
			return store.ErrMailboxFull
		}
	}
	return nil
}

func (a *appender) commit(batch []*appendReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqPending, reqRunning) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	var results []error
	err := a.s.inTx(context.Background(), func(tx pgx.Tx) error {
		var err error
		results, err = a.attempt(tx, live)
		return err
	})
	for i, r := range live {
		if err != nil {
			r.done <- err
		} else {
			r.done <- results[i]
		}
	}
}

// attempt runs one try of a batch in tx and returns each Append's outcome.
func (a *appender) attempt(tx pgx.Tx, live []*appendReq) ([]error, error) {
	ctx := context.Background()
	var keys []mailboxKey
	for _, r := range live {
		for _, mb := range r.mbs {
			keys = append(keys, mailboxKey{mb.Account, mb.Device})
		}
	}
	slices.SortFunc(keys, compareKeys)
	keys = slices.Compact(keys)
	accts := make([][]byte, len(keys))
	devs := make([]int64, len(keys))
	for i := range keys {
		accts[i], devs[i] = keys[i].account[:], int64(keys[i].device)
	}

	// Lock the device rows in key order (as every writer of them does)
	// and read their counters.
	rows, err := tx.Query(ctx, `SELECT d.account, d.id, d.next_envelope, d.mailbox_count
		FROM devices d JOIN unnest($1::bytea[], $2::bigint[]) AS k (account, id)
		ON d.account = k.account AND d.id = k.id
		ORDER BY d.account, d.id FOR NO KEY UPDATE OF d`, accts, devs)
	if err != nil {
		return nil, err
	}
	state := make(map[mailboxKey]*mailboxState, len(keys))
	for rows.Next() {
		var (
			acct []byte
			dev  int64
			st   mailboxState
		)
		if err := rows.Scan(&acct, &dev, &st.next, &st.count); err != nil {
			rows.Close()
			return nil, err
		}
		var k mailboxKey
		copy(k.account[:], acct)
		k.device = store.DeviceID(dev)
		state[k] = &st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// Decide each Append in queue order; refused ones write nothing.
	limit := int64(a.s.limits.MaxMailbox)
	results := make([]error, len(live))
	var ins struct {
		accts    [][]byte
		devs     []int64
		ids      []int64
		expires  []int32
		contents [][]byte
	}
	for i, r := range live {
		if results[i] = refuse(state, r.mbs, limit); results[i] != nil {
			continue
		}
		r.firsts = make([]int64, len(r.mbs))
		for j, mb := range r.mbs {
			st := state[mailboxKey{mb.Account, mb.Device}]
			r.firsts[j] = st.next
			for k, e := range mb.Envs {
				ins.accts = append(ins.accts, mb.Account[:])
				ins.devs = append(ins.devs, int64(mb.Device))
				ins.ids = append(ins.ids, st.next+int64(k))
				ins.expires = append(ins.expires, int32(e.Expires))
				ins.contents = append(ins.contents, e.Content)
			}
			st.next += int64(len(mb.Envs))
			st.count += int64(len(mb.Envs))
			st.touched = true
		}
	}
	if len(ins.ids) == 0 {
		return results, nil
	}

	var upd struct {
		accts         [][]byte
		devs          []int64
		nexts, counts []int64
	}
	for _, k := range keys {
		if st := state[k]; st != nil && st.touched {
			upd.accts = append(upd.accts, k.account[:])
			upd.devs = append(upd.devs, int64(k.device))
			upd.nexts = append(upd.nexts, st.next)
			upd.counts = append(upd.counts, st.count)
		}
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE devices d SET next_envelope = u.next, mailbox_count = u.count
		FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::integer[]) AS u (account, id, next, count)
		WHERE d.account = u.account AND d.id = u.id`, upd.accts, upd.devs, upd.nexts, upd.counts)
	b.Queue(`INSERT INTO envelopes (account, device, id, expires, content)
		SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::integer[], $5::bytea[])`,
		ins.accts, ins.devs, ins.ids, ins.expires, ins.contents)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("write batch: %w", err)
	}
	return results, nil
}
