package attach_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/attach"
)

// TestNoTimesAtRest checks that uploading and downloading leave only days in
// file times: modification times set to the creation day, and access times
// neither moved by writes nor by reads (O_NOATIME).
func TestNoTimesAtRest(t *testing.T) {
	day0 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day0.Add(9*time.Hour + 41*time.Minute)}
	e := newEnv(t, attach.Config{Now: clk.Now})
	data := randomBytes(10, 100_000)
	done := e.uploadAll(data, 40_000)
	pending := e.create(100)
	wantStatus(t, e.patchBytes(pending, 0, make([]byte, 50)), http.StatusNoContent)
	e.head(pending)
	for range 3 {
		if got := e.download(done); !bytes.Equal(got, data) {
			t.Fatal("download differs")
		}
	}
	for _, name := range []string{
		filepath.Join(e.dir, done.id),
		filepath.Join(e.dir, "partial", done.id+".meta"),
		filepath.Join(e.dir, "partial", pending.id),
		filepath.Join(e.dir, "partial", pending.id+".meta"),
	} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mtime := time.Unix(st.Mtim.Unix())
		atime := time.Unix(st.Atim.Unix())
		if !mtime.Equal(day0) || !atime.Equal(day0) {
			t.Errorf("%s: mtime %v, atime %v; want both %v", filepath.Base(name), mtime.UTC(), atime.UTC(), day0)
		}
	}
}
