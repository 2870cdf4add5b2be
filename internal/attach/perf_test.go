package attach_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/attach"
)

// TestMemory uploads and downloads 64 MiB and checks that the heap never
// grew by anywhere near that: the body is streamed, never held. The test
// generates and hashes the blob as a stream too, so the heap measures the
// server.
func TestMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB upload")
	}
	const (
		size  = 64 << 20
		chunk = 16 << 20
		// bound is far below size and even below one chunk; the
		// transient garbage of an honest upload is a few 32 KiB buffers.
		bound = 8 << 20
	)
	e := newEnv(t, attach.Config{})
	up := e.create(size)

	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	})

	src := rand.NewChaCha8([32]byte{64})
	sent := sha256.New()
	for off := int64(0); off < size; off += chunk {
		body := io.TeeReader(io.LimitReader(src, chunk), sent)
		wantStatus(t, e.patch(up, off, body, chunk), http.StatusNoContent)
	}
	resp := e.get(up, nil)
	wantStatus(t, resp, http.StatusOK)
	got := sha256.New()
	if n, err := io.Copy(got, resp.Body); err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	close(stop)
	wg.Wait()
	var end runtime.MemStats
	runtime.ReadMemStats(&end)

	if !bytes.Equal(got.Sum(nil), sent.Sum(nil)) {
		t.Fatal("download differs")
	}
	grew := int64(peak) - int64(base.HeapAlloc)
	allocated := end.TotalAlloc - base.TotalAlloc
	t.Logf("heap: base %d KiB, peak +%d KiB; allocated %d KiB in all for %d MiB up and down",
		base.HeapAlloc>>10, grew>>10, allocated>>10, 2*size>>20)
	if grew > bound {
		t.Errorf("heap grew by %d bytes during a %d-byte upload and download, want < %d", grew, size, bound)
	}
	if allocated > bound {
		t.Errorf("%d bytes allocated for a %d-byte upload and download, want < %d", allocated, size, bound)
	}
}

// BenchmarkThroughput measures upload and download of a 16 MiB blob over
// loopback HTTP into a real directory (fsync included). MB/s counts the
// blob's bytes.
//
//	go test -run '^$' -bench Throughput -benchtime 20x ./internal/attach/
func BenchmarkThroughput(b *testing.B) {
	const size = 16 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{16}).Read(data)
	e := newEnv(b, attach.Config{})

	b.Run("upload", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			up := e.create(size)
			if resp := e.patchBytes(up, 0, data); resp.StatusCode != http.StatusNoContent {
				b.Fatal(resp.Status)
			}
		}
	})
	up := e.uploadAll(data, size)
	b.Run("download", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			resp := e.get(up, nil)
			if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != size {
				b.Fatal(n, err)
			}
			resp.Body.Close()
		}
	})
	b.Run("upload+download", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			up := e.create(size)
			if resp := e.patchBytes(up, 0, data); resp.StatusCode != http.StatusNoContent {
				b.Fatal(resp.Status)
			}
			resp := e.get(up, nil)
			if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != size {
				b.Fatal(n, err)
			}
			resp.Body.Close()
		}
	})
}
