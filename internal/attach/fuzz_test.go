package attach_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/sotto-chat/sotto/internal/attach"
)

// FuzzHandler sends arbitrary requests straight to the handler: it must
// never panic or fail internally, never write outside Dir, and never let an
// upload grow past its length.
func FuzzHandler(f *testing.F) {
	root := f.TempDir()
	dir := filepath.Join(root, "blobs")
	e := newEnv(f, attach.Config{Dir: dir, MaxSize: 1 << 20, MaxUploads: 8})
	up := e.create(100)
	f.Add("PATCH", "/"+up.id, "1.0.0", up.token, "", "0", "application/offset+octet-stream", []byte("hello"))
	f.Add("HEAD", "/"+up.id, "1.0.0", up.token, "", "", "", []byte(nil))
	f.Add("POST", "/", "1.0.0", "", "100", "", "", []byte(nil))
	f.Add("GET", "/../blobs/"+up.id, "", "", "", "", "", []byte(nil))
	f.Add("PATCH", "/"+up.id, "1.0.0", up.token, "", "5", "application/offset+octet-stream", bytes.Repeat([]byte("x"), 200))
	f.Fuzz(func(t *testing.T, method, path, tus, token, length, offset, ctype string, body []byte) {
		req := httptest.NewRequest("GET", "/", bytes.NewReader(body))
		req.Method = method
		req.URL.Path = path
		for k, v := range map[string]string{"Tus-Resumable": tus, "Upload-Token": token, "Upload-Length": length, "Upload-Offset": offset, "Content-Type": ctype} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		e.store.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q: %d %q", method, path, rec.Code, rec.Body)
		}
		ents, err := os.ReadDir(root)
		if err != nil || len(ents) != 1 {
			t.Fatalf("%d entries beside Dir (%v)", len(ents), err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "partial", up.id)); err == nil && fi.Size() > 100 {
			t.Fatalf("upload grew to %d bytes, past its length", fi.Size())
		}
	})
}
