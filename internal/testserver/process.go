//go:build unix

package testserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Limits of a sottod process's life in a test, each with its reason.
const (
	// readyTimeout bounds a start: opening the data directory and
	// replaying a crashed queue takes well under a second; a loaded CI
	// machine gets twenty.
	readyTimeout = 20 * time.Second
	// stopTimeout bounds SIGTERM's drain before the test gives up and
	// kills: the server's own drain deadline is shorter.
	stopTimeout = 30 * time.Second
	// startAttempts: a port found free can be taken before sottod binds
	// it; another port is tried.
	startAttempts = 3
	// logTail is how much of a log a failure message quotes.
	logTail = 4000
)

// Build compiles cmd/sottod into a temporary directory of the test and
// returns the binary's path, for tests that must kill a real process or
// measure a client's CPU apart from the server's.
func Build(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build sottod: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "sottod")
	start := time.Now()
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/sotto-chat/sotto/cmd/sottod").CombinedOutput()
	if err != nil {
		t.Fatalf("go build sottod: %v\n%s", err, out)
	}
	t.Logf("built sottod in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// Process is one run of the sottod binary on a loopback port.
type Process struct {
	// Addr is host:port; URL is its http:// URL.
	Addr, URL string
	// LogPath is the file that receives the process's output (appended
	// to across restarts on the same path).
	LogPath string

	cmd    *exec.Cmd
	exited chan struct{}
	killed atomic.Bool
	log    *os.File
}

// StartProcess runs bin on data (no proof of work, warnings logged to
// logPath) with any extra flags, and waits until /readyz answers. With
// -tls-cert among the flags the process serves TLS and its URL is
// https://. A failure ends the test with the log's tail.
func StartProcess(t testing.TB, bin, data, logPath string, flags ...string) *Process {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := tryStart(bin, data, freePort(t), logPath, flags)
		if err == nil {
			return p
		}
		if attempt == startAttempts {
			t.Fatalf("start sottod: %v\nlog:\n%s", err, Tail(logPath))
		}
		t.Logf("start sottod: %v; again on another port", err)
	}
}

// RestartProcess runs bin again on the address and data of a process
// that has ended (after Kill or Stop), so that clients that know its URL
// find it again. The address was just released: a bind that fails is
// tried again for a moment.
func RestartProcess(t testing.TB, bin, data string, old *Process, flags ...string) *Process {
	t.Helper()
	_, portText, err := net.SplitHostPort(old.Addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		p, err := tryStart(bin, data, port, old.LogPath, flags)
		if err == nil {
			return p
		}
		if attempt == startAttempts*10 {
			t.Fatalf("restart sottod on %s: %v\nlog:\n%s", old.Addr, err, Tail(old.LogPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func tryStart(bin, data string, port int, logPath string, flags []string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{"-listen", addr, "-data", data, "-pow-difficulty", "0", "-log-level", "warn"}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	scheme, client := "http", &http.Client{Timeout: time.Second}
	if slices.ContainsFunc(flags, func(f string) bool { return f == "-tls-cert" || strings.HasPrefix(f, "-tls-cert=") }) {
		// The test made the certificate; the probe only asks whether
		// the process serves yet.
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	defer client.CloseIdleConnections()
	p := &Process{Addr: addr, URL: scheme + "://" + addr, LogPath: logPath, cmd: cmd, exited: make(chan struct{}), log: logf}
	go func() { cmd.Wait(); close(p.exited) }()
	for deadline := time.Now().Add(readyTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.exited:
			logf.Close()
			return nil, fmt.Errorf("sottod exited: %v", cmd.ProcessState)
		default:
		}
		resp, err := client.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
	}
	p.Kill()
	return nil, errors.New("not ready in time")
}

// Pid is the process id, for reading its /proc entries.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Killed reports whether Kill was called, so that a client's error can
// be told apart from the test's own doing.
func (p *Process) Killed() bool { return p.killed.Load() }

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	p.killed.Store(true)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.log.Close()
}

// Stop ends the process gracefully (SIGTERM) and waits; one that does
// not end in time fails the test and is killed.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		t.Errorf("sottod did not stop on SIGTERM")
		p.killed.Store(true)
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
	p.log.Close()
}

// Tail returns the end of a log file, for failure messages.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > logTail {
		b = b[len(b)-logTail:]
	}
	return string(b)
}
