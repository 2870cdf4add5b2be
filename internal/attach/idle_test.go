package attach

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestBodyIdleTimeout checks that a PATCH whose client stops sending ends
// after the idle timeout, keeping what arrived and freeing the upload.
func TestBodyIdleTimeout(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s.idle = 200 * time.Millisecond
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	id, tok, err := s.create(10_000)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("PATCH", srv.URL+"/"+id.String(), pr)
	req.ContentLength = 10_000
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Token", tok)
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	answered := make(chan int, 1)
	start := time.Now()
	go func() {
		resp, err := srv.Client().Do(req)
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	pw.Write(bytes.Repeat([]byte("a"), 3000)) // then silence
	select {
	case <-answered:
	case <-time.After(10 * time.Second):
		t.Fatal("stalled PATCH still open after 10 s")
	}
	if d := time.Since(start); d < s.idle {
		t.Errorf("PATCH ended after %v, before the idle timeout", d)
	}
	fi, err := os.Stat(filepath.Join(s.partial, id.String()))
	if err != nil || fi.Size() != 3000 {
		t.Fatalf("kept %v bytes (%v), want 3000", fi.Size(), err)
	}
	// The upload is free again: it resumes from 3000.
	req, _ = http.NewRequest("PATCH", srv.URL+"/"+id.String(), bytes.NewReader(make([]byte, 7000)))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Token", tok)
	req.Header.Set("Upload-Offset", strconv.Itoa(3000))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("resume: %s", resp.Status)
	}
}
