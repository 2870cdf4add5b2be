package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/sotto-chat/sotto/internal/store/internal/batch"
)

const (
	// maxBatchOps bounds how many writes share one transaction. Group
	// commit pays one fsync per batch; beyond a few hundred callers the
	// fsync is no longer what they wait for, and a failed commit would fail
	// them all.
	maxBatchOps = 512
	// maxBatchRows bounds the rows (envelopes, prekeys) one batch writes,
	// so that a batch holds the write lock for milliseconds, not seconds.
	// A single larger write still runs, alone.
	maxBatchRows = 8192
	// opQueue is how many writes may wait for the writer before callers
	// block; about two batches, so the next batch gathers while one commits.
	opQueue = 1024
)

// errClosed is returned by calls made after Close.
var errClosed = errors.New("sqlite store: closed")

// Op states: a caller whose context ends cancels its op unless the writer
// has already started it; then the caller waits for the outcome, so that an
// error always means nothing was written.
const (
	opPending int32 = iota
	opRunning
	opCancelled
)

// op is one write: fn runs inside the batch's transaction, under its own
// savepoint unless it is clean, and its error (or the commit's) goes to
// done.
//
// A clean fn either succeeds, or fails with a refusal having written
// nothing (a failed statement undoes itself), or fails otherwise, which
// aborts the whole batch. Ops of one statement, and Appends that check
// before they write, are clean and skip the two savepoint statements.
type op struct {
	rows  int // rows fn writes, for batch sizing
	clean bool
	fn    func(*wtx) error
	state atomic.Int32
	done  chan error
}

// writer owns the single write connection. One goroutine runs every write:
// it takes whatever writes are queued, runs them in one transaction, each
// under a savepoint so that one write failing leaves the others, commits
// once (one WAL fsync for the lot), then answers every caller.
//
// mu guards shut and the sending side of ops: senders hold it for
// reading, Close for writing, so no send can follow close(ops).
type writer struct {
	tx   wtx
	ops  chan *op
	mu   sync.RWMutex
	shut bool
	done chan struct{} // closed when the goroutine has exited
}

func newWriter(conn *sql.Conn) *writer {
	w := &writer{
		tx:   wtx{ctx: context.Background(), conn: conn, stmts: make(map[string]*sql.Stmt)},
		ops:  make(chan *op, opQueue),
		done: make(chan struct{}),
	}
	go w.run()
	return w
}

// refusal marks an error a clean op returns before writing anything.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// do runs fn in the writer and returns its error, or the commit's. rows is
// roughly how many rows fn writes. fn runs on the writer goroutine with no
// caller context: a batch's statements are never interrupted, since
// interrupting one would roll back the whole batch.
func (w *writer) do(ctx context.Context, rows int, fn func(*wtx) error) error {
	return w.submit(ctx, &op{rows: rows, fn: fn})
}

// doClean is do for a clean fn (see op).
func (w *writer) doClean(ctx context.Context, rows int, fn func(*wtx) error) error {
	return w.submit(ctx, &op{rows: rows, clean: true, fn: fn})
}

func (w *writer) submit(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.done = make(chan error, 1)
	w.mu.RLock()
	if w.shut {
		w.mu.RUnlock()
		return errClosed
	}
	select {
	case w.ops <- o:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opPending, opCancelled) {
			return ctx.Err()
		}
		return <-o.done
	}
}

// close stops taking writes, lets the queued ones finish, and waits for
// the goroutine to exit.
func (w *writer) close() {
	w.mu.Lock()
	if !w.shut {
		w.shut = true
		close(w.ops)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	defer w.tx.closeStmts()
	ops := make([]*op, 0, maxBatchOps)
	for o := range w.ops {
		// Let the callers the last commit woke queue their next write,
		// so that it joins this batch rather than the one after.
		runtime.Gosched()
		ops = batch.Gather(ops, o, w.ops, maxBatchOps, maxBatchRows, func(o *op) int { return o.rows })
		w.commit(ops)
	}
}

// commit runs one batch in one transaction.
func (w *writer) commit(batch []*op) {
	live := batch[:0]
	for _, o := range batch {
		if o.state.CompareAndSwap(opPending, opRunning) {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	x := &w.tx
	if _, err := x.exec("BEGIN IMMEDIATE"); err != nil {
		for _, o := range live {
			o.done <- fmt.Errorf("begin: %w", err)
		}
		return
	}
	errs := make([]error, len(live))
	ok := 0
	single := len(live) == 1
	for i, o := range live {
		sp := !single && !o.clean
		if sp {
			if _, err := x.exec("SAVEPOINT op"); err != nil {
				w.abort(live, fmt.Errorf("savepoint: %w", err))
				return
			}
		}
		err := o.fn(x)
		var r refusal
		switch {
		case err == nil:
			ok++
		case sp:
			if _, rerr := x.exec("ROLLBACK TO op"); rerr != nil {
				// SQLite already rolled back the transaction (an I/O
				// error, a full disk): nothing in the batch stands.
				w.abort(live, fmt.Errorf("%w (then rollback to savepoint: %v)", err, rerr))
				return
			}
		case single, errors.As(err, &r):
			// Nothing written, or the whole transaction rolls back.
		default:
			// A clean op failed after writing: only the whole batch can
			// be undone.
			w.abort(live, err)
			return
		}
		if sp {
			if _, err := x.exec("RELEASE op"); err != nil {
				w.abort(live, fmt.Errorf("release savepoint: %w", err))
				return
			}
		}
		errs[i] = err
	}
	if ok == 0 {
		// Nothing to keep. The transaction may already be gone (SQLite
		// rolls back by itself on some errors); the writes' own errors
		// are what their callers need.
		_, _ = x.exec("ROLLBACK")
		for i, o := range live {
			o.done <- errs[i]
		}
		return
	}
	if _, err := x.exec("COMMIT"); err != nil {
		w.abort(live, fmt.Errorf("commit: %w", err))
		return
	}
	for i, o := range live {
		o.done <- errs[i]
	}
}

// abort rolls the batch back and fails every write in it with err.
func (w *writer) abort(live []*op, err error) {
	// The transaction may already be gone; ROLLBACK then fails harmlessly.
	_, _ = w.tx.conn.ExecContext(w.tx.ctx, "ROLLBACK")
	for _, o := range live {
		o.done <- err
	}
}

// wtx runs statements on the write connection inside the writer's current
// transaction. Statements are prepared once and kept; only the writer
// goroutine uses a wtx.
type wtx struct {
	ctx   context.Context
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

func (x *wtx) stmt(query string) (*sql.Stmt, error) {
	if s, ok := x.stmts[query]; ok {
		return s, nil
	}
	s, err := x.conn.PrepareContext(x.ctx, query)
	if err != nil {
		return nil, err
	}
	x.stmts[query] = s
	return s, nil
}

func (x *wtx) exec(query string, args ...any) (sql.Result, error) {
	s, err := x.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(x.ctx, args...)
}

// execN runs an INSERT, UPDATE or DELETE and returns the rows it changed.
func (x *wtx) execN(query string, args ...any) (int64, error) {
	r, err := x.exec(query, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (x *wtx) query(query string, args ...any) (*sql.Rows, error) {
	s, err := x.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(x.ctx, args...)
}

// scan runs a query for one row and scans it into dest; sql.ErrNoRows if
// there is none.
func (x *wtx) scan(query string, args []any, dest ...any) error {
	s, err := x.stmt(query)
	if err != nil {
		return err
	}
	return s.QueryRowContext(x.ctx, args...).Scan(dest...)
}

func (x *wtx) closeStmts() {
	for q, s := range x.stmts {
		_ = s.Close()
		delete(x.stmts, q)
	}
}
