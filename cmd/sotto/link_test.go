package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/testserver"
)

// sotto runs one command and returns its stdout; it fails the test on a
// non-zero exit.
func sotto(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("sotto %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// TestLinkDevice: `sotto link` on a new device, `sotto link approve` on
// the old one; then both are devices of the account and see each other's
// messages.
func TestLinkDevice(t *testing.T) {
	url := testserver.Start(t)
	dir := t.TempDir()
	phone, laptop, bob := filepath.Join(dir, "phone"), filepath.Join(dir, "laptop"), filepath.Join(dir, "bob")
	sotto(t, "--home", phone, "init", "--server", url, "--username", "amy_1")
	sotto(t, "--home", bob, "init", "--server", url, "--username", "ben_1")
	sotto(t, "--home", phone, "add", "@ben_1")

	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var linkErr bytes.Buffer
	go func() {
		done <- run(context.Background(), []string{"--home", laptop, "--json", "link", "--server", url}, strings.NewReader(""), pw, &linkErr)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("link printed nothing: %s", linkErr.String())
	}
	var shown struct{ Link string }
	if err := json.Unmarshal(lines.Bytes(), &shown); err != nil || !strings.HasPrefix(shown.Link, "sotto://link?") {
		t.Fatalf("link printed %q", lines.Text())
	}
	sotto(t, "--home", phone, "link", "approve", shown.Link)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"device":2`) {
		t.Fatalf("after the approval, link printed %q: %s", lines.Text(), linkErr.String())
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("link exited %d: %s", code, linkErr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("link did not end")
	}

	devs := sotto(t, "--home", laptop, "--json", "devices")
	if !strings.Contains(devs, `"id":1`) || !strings.Contains(devs, `"id":2`) || !strings.Contains(devs, `"this":true`) {
		t.Fatalf("devices: %s", devs)
	}
	// The laptop came with the contact; what it sends, the phone sees.
	sotto(t, "--home", laptop, "send", "@ben_1", "from the laptop")
	if got := sotto(t, "--home", bob, "recv"); !strings.Contains(got, "from the laptop") {
		t.Fatalf("Ben got %q", got)
	}
	if got := sotto(t, "--home", phone, "recv"); !strings.Contains(got, "to @ben_1: from the laptop") {
		t.Fatalf("the phone got %q", got)
	}
	// The phone removes the laptop.
	sotto(t, "--home", phone, "devices", "remove", "2")
	if got := sotto(t, "--home", phone, "devices"); strings.Contains(got, "device 2") {
		t.Fatalf("after removing: %s", got)
	}
}

// TestVerifyByCode: one side shows its code (as a QR or text), the other
// checks it with --code; both then show the conversation verified.
func TestVerifyByCode(t *testing.T) {
	url := testserver.Start(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	sotto(t, "--home", a, "init", "--server", url, "--username", "ann_v")
	sotto(t, "--home", b, "init", "--server", url, "--username", "bea_v")
	sotto(t, "--home", a, "add", "@bea_v")
	sotto(t, "--home", a, "send", "@bea_v", "hi")
	sotto(t, "--home", b, "recv")
	sotto(t, "--home", b, "add", "@ann_v")
	var shown struct {
		Code         string `json:"code"`
		SafetyNumber string `json:"safety_number"`
	}
	if err := json.Unmarshal([]byte(sotto(t, "--home", b, "--json", "verify", "@ann_v")), &shown); err != nil || shown.Code == "" {
		t.Fatalf("verify --json: %v", err)
	}
	out := sotto(t, "--home", a, "--json", "verify", "@bea_v", "--code", shown.Code)
	if !strings.Contains(out, `"verified":true`) || !strings.Contains(out, shown.SafetyNumber) {
		t.Fatalf("after checking Bea's code: %s", out)
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestListenStreams: `sotto --json listen` streams messages, typing and
// receipts as JSON lines, each with its type.
func TestListenStreams(t *testing.T) {
	url := testserver.Start(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	sotto(t, "--home", a, "init", "--server", url, "--username", "al_s")
	sotto(t, "--home", b, "init", "--server", url, "--username", "bo_s")
	sotto(t, "--home", a, "add", "@bo_s")
	sotto(t, "--home", b, "add", "@al_s")

	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--home", a, "--json", "listen"}, strings.NewReader(""), &out, io.Discard)
	}()
	defer func() { cancel(); <-done }()

	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("listen printed no %s:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Alice's listener is connected once a first message reaches it.
	sotto(t, "--home", b, "send", "@al_s", "are you there?")
	waitFor(`"text":"are you there?"`)
	waitFor(`"type":"message"`)
	// Alice answers from another process; Bob's device acknowledges it,
	// and the receipt reaches the listener.
	sotto(t, "--home", a, "send", "@bo_s", "yes")
	sotto(t, "--home", b, "recv")
	waitFor(`"type":"receipt"`)
	waitFor(`"status":"delivered"`)
}
