// Package oracle drives libsignal itself, as a differential oracle for Sotto's
// protocol packages. It is only for tests: nothing outside _test.go files
// may import it.
//
// [Start] runs oracle/harness.mjs under Node. The harness loads
// @signalapp/libsignal-client at exactly [LibsignalVersion] (pinned by
// oracle/package-lock.json) and answers one JSON request per line on stdin
// with one JSON response per line on stdout; its header comment is the
// reference for every method. [Oracle.Call] is the raw transport; the other
// methods are typed wrappers around it, and a [Party] is a libsignal client
// (its identity and in-memory stores live in the harness).
//
// # Compatibility
//
// The harness speaks libsignal 0.72.1's Node API. Keys and messages cross
// the pipe in libsignal's own serializations: EC public keys are 33 bytes
// (0x05 ‖ u), EC private keys 32 bytes, Kyber-1024 keys carry the type byte
// 0x08, messages are CiphertextMessage bytes, sealed-sender messages are the
// exact v1/v2 wire bytes.
//
// # Security
//
// The harness treats every key as disposable test data. Never point it at
// real key material.
package oracle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// LibsignalVersion is the libsignal-client release the harness must load;
// Start fails the test if oracle/node_modules holds anything else.
const LibsignalVersion = "0.72.1"

const (
	// DefaultCallTimeout bounds a Call whose context has no deadline. The
	// slowest request, a sealed_v2_1024 bench, sets up 1,024 sessions and
	// times a few hundred 80 ms encryptions, so this leaves room for
	// thousands of iterations on a loaded 2-core machine.
	DefaultCallTimeout = 5 * time.Minute

	// startTimeout bounds loading Node and the native libsignal module.
	startTimeout = 30 * time.Second

	// shutdownGrace is how long Cleanup waits for the harness to exit after
	// closing its stdin before killing it.
	shutdownGrace = 5 * time.Second

	// harnessScript is the harness, relative to the repository root.
	harnessScript = "oracle/harness.mjs"

	// libsignalDir is the installed npm package, relative to the root.
	libsignalDir = "oracle/node_modules/@signalapp/libsignal-client"
)

// ErrExited is returned (wrapped) by calls made after, or pending when, the
// harness process exits.
var ErrExited = errors.New("oracle: harness exited")

// Error is a failure reported by the harness for one request: libsignal
// threw, or the request was malformed.
type Error struct {
	// Method is the harness method that failed.
	Method string
	// Message is the error message, as thrown.
	Message string
	// Name is libsignal's error name (its ErrorCode key, e.g.
	// "UntrustedIdentity", "DuplicatedMessage", "InvalidSession",
	// "SealedSenderSelfSend", or "LibSignalError" for the generic code), a
	// JavaScript error class, or one of the harness's own names:
	// "BadRequest", "UnknownMethod", "UnknownParty", "NoRecord",
	// "InvalidCertificate", "Mismatch".
	Name string
	// Operation is the libsignal operation that threw, when libsignal
	// reported one (e.g. "SessionCipher_DecryptSignalMessage").
	Operation string
}

func (e *Error) Error() string {
	if e.Operation != "" {
		return fmt.Sprintf("oracle %s: %s in %s: %s", e.Method, e.Name, e.Operation, e.Message)
	}
	return fmt.Sprintf("oracle %s: %s: %s", e.Method, e.Name, e.Message)
}

// ErrorName returns the Name of the *Error in err's chain, or "" if there
// is none.
func ErrorName(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Name
	}
	return ""
}

// Oracle is a running harness. It is safe for concurrent use; the harness
// handles requests one at a time in the order they were written.
//
// Lock order: writeMu and mu are never held together, and neither is held
// while waiting for a response.
type Oracle struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	logf  func(format string, args ...any)

	writeMu sync.Mutex // serializes request lines on stdin

	mu      sync.Mutex // guards the fields below
	nextID  uint64
	pending map[uint64]chan response
	exitErr error // why the reader stopped; set before dead is closed

	dead       chan struct{} // closed when stdout reaches EOF
	stderrDone chan struct{} // closed when stderr reaches EOF
}

type request struct {
	ID     uint64 `json:"id"`
	Method string `json:"method"`
	Params any    `json:"params"`
}

type response struct {
	ID     *uint64         `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *wireError      `json:"error"`
}

type wireError struct {
	Message   string `json:"message"`
	Name      string `json:"name"`
	Operation string `json:"operation"`
}

// Start runs the harness for the duration of t: it finds the repository
// root (the nearest directory above the working directory holding go.mod),
// checks that node is on PATH and that oracle/node_modules holds
// libsignal-client, starts `node oracle/harness.mjs`, and waits for it to
// answer a ping with [LibsignalVersion]. Anything missing fails the test;
// the oracle is never skipped. The harness's stderr goes to t.Logf, and
// t.Cleanup stops the process.
func Start(t testing.TB) *Oracle {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("oracle: node is not on PATH (%v): run scripts/test (it runs npm ci in oracle/)", err)
	}
	if _, err := os.Stat(filepath.Join(root, libsignalDir, "package.json")); err != nil {
		t.Fatalf("oracle: libsignal-client is not installed (%v): run scripts/test (it runs npm ci in oracle/)", err)
	}

	cmd := exec.Command(node, filepath.Join(root, harnessScript))
	cmd.Dir = filepath.Join(root, "oracle")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("oracle: stdin pipe: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("oracle: stdout pipe: %v", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("oracle: stderr pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("oracle: start %s: %v", harnessScript, err)
	}

	o := &Oracle{
		cmd:        cmd,
		stdin:      stdin,
		logf:       t.Logf,
		pending:    make(map[uint64]chan response),
		dead:       make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	go o.readLoop(stdout)
	go o.logLoop(stderr)
	t.Cleanup(o.stop)

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	version, err := o.Ping(ctx)
	if err != nil {
		t.Fatalf("oracle: harness did not start: %v", err)
	}
	if version != LibsignalVersion {
		t.Fatalf("oracle: harness loaded libsignal-client %s, want %s: run scripts/test (it runs npm ci in oracle/)", version, LibsignalVersion)
	}
	return o
}

// repoRoot walks up from the working directory to the directory holding
// go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// stop closes the harness's stdin, waits for it to exit, and kills it if it
// does not. Both reader goroutines have finished when stop returns, so none
// logs after the test ends.
func (o *Oracle) stop() {
	// Not under writeMu: a Write blocked on a wedged harness must not block
	// Close, and closing the pipe unblocks that Write.
	_ = o.stdin.Close() // an error means the pipe is already closed

	timer := time.NewTimer(shutdownGrace)
	defer timer.Stop()
	select {
	case <-o.dead:
	case <-timer.C:
		o.logf("oracle: harness did not exit within %v; killing it", shutdownGrace)
		_ = o.cmd.Process.Kill() // fails only if it has already exited
	}
	<-o.dead
	<-o.stderrDone
	if err := o.cmd.Wait(); err != nil {
		o.logf("oracle: harness exit: %v", err)
	}
}

func (o *Oracle) readLoop(stdout io.Reader) {
	r := bufio.NewReader(stdout)
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			o.dispatch(line)
		}
		if err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		err = ErrExited
	} else {
		err = fmt.Errorf("%w: read stdout: %w", ErrExited, err)
	}
	o.mu.Lock()
	o.exitErr = err
	o.mu.Unlock()
	close(o.dead)
}

func (o *Oracle) dispatch(line []byte) {
	var r response
	if err := json.Unmarshal(line, &r); err != nil {
		o.logf("oracle: undecodable response line: %v", err)
		return
	}
	if r.ID == nil {
		if r.Error != nil {
			o.logf("oracle: harness rejected a request line: %s: %s", r.Error.Name, r.Error.Message)
		} else {
			o.logf("oracle: response without id")
		}
		return
	}
	o.mu.Lock()
	ch, ok := o.pending[*r.ID]
	delete(o.pending, *r.ID)
	o.mu.Unlock()
	if ok {
		ch <- r // buffered; each id gets one response
	}
	// No waiter: its context ended first. Drop the late response.
}

func (o *Oracle) logLoop(stderr io.Reader) {
	defer close(o.stderrDone)
	s := bufio.NewScanner(stderr)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		o.logf("harness: %s", s.Text())
	}
	if err := s.Err(); err != nil {
		o.logf("oracle: read harness stderr: %v", err)
		_, _ = io.Copy(io.Discard, stderr) // keep the pipe drained
	}
}

// Call sends one request and waits for its response. params is encoded with
// encoding/json (nil sends {}); []byte fields become the standard base64 the
// harness expects, and nil slices become null, which the harness treats as
// absent. The result object is decoded into result unless result is nil.
//
// A failure reported by the harness is returned as *[Error]. If ctx has no
// deadline, [DefaultCallTimeout] applies. Call is safe for concurrent use.
func (o *Oracle) Call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}

	ch := make(chan response, 1)
	o.mu.Lock()
	o.nextID++
	id := o.nextID
	o.pending[id] = ch
	o.mu.Unlock()
	forget := func() {
		o.mu.Lock()
		delete(o.pending, id)
		o.mu.Unlock()
	}

	line, err := json.Marshal(request{ID: id, Method: method, Params: params})
	if err != nil {
		forget()
		return fmt.Errorf("oracle %s: encode request: %w", method, err)
	}
	line = append(line, '\n')
	o.writeMu.Lock()
	_, err = o.stdin.Write(line)
	o.writeMu.Unlock()
	if err != nil {
		forget()
		return fmt.Errorf("oracle %s: write request: %w", method, errors.Join(ErrExited, err))
	}

	var r response
	select {
	case r = <-ch:
	case <-ctx.Done():
		forget()
		return fmt.Errorf("oracle %s: %w", method, ctx.Err())
	case <-o.dead:
		select {
		case r = <-ch: // answered just before the harness exited
		default:
			forget()
			o.mu.Lock()
			err := o.exitErr
			o.mu.Unlock()
			return fmt.Errorf("oracle %s: %w", method, err)
		}
	}

	if r.Error != nil {
		return &Error{Method: method, Message: r.Error.Message, Name: r.Error.Name, Operation: r.Error.Operation}
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("oracle %s: decode result: %w", method, err)
	}
	return nil
}
