package attach_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/attach"
	"github.com/sotto-chat/sotto/internal/metrics"
)

const prefix = "/v1/attachments"

// env is a store mounted the way sottod mounts it, behind a real HTTP
// server.
type env struct {
	t     testing.TB
	dir   string
	store *attach.Store
	srv   *httptest.Server
	base  string // the collection URL, with its trailing slash
}

func newEnv(t testing.TB, cfg attach.Config) *env {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "blobs")
	}
	st, err := attach.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, st.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{t: t, dir: cfg.Dir, store: st, srv: srv, base: srv.URL + prefix + "/"}
}

// upload is the client side of one upload.
type upload struct {
	url, token string
	id         string
}

func (e *env) do(method, u string, hdr map[string]string, body io.Reader, n int64) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = n
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, u, err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *env) create(length int64) upload {
	e.t.Helper()
	resp := e.do("POST", e.base, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": strconv.FormatInt(length, 10)}, nil, 0)
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("POST: %s", resp.Status)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatal(err)
	}
	base, _ := url.Parse(e.base)
	u := base.ResolveReference(loc).String()
	return upload{url: u, token: resp.Header.Get("Upload-Token"), id: resp.Header.Get("Location")}
}

func (e *env) patch(up upload, off int64, body io.Reader, n int64) *http.Response {
	e.t.Helper()
	return e.do("PATCH", up.url, map[string]string{
		"Tus-Resumable": "1.0.0",
		"Upload-Token":  up.token,
		"Upload-Offset": strconv.FormatInt(off, 10),
		"Content-Type":  "application/offset+octet-stream",
	}, body, n)
}

func (e *env) patchBytes(up upload, off int64, b []byte) *http.Response {
	e.t.Helper()
	return e.patch(up, off, bytes.NewReader(b), int64(len(b)))
}

// head returns the upload's offset and length, failing unless it gets 200.
func (e *env) head(up upload) (off, length int64) {
	e.t.Helper()
	resp := e.do("HEAD", up.url, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Token": up.token}, nil, 0)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("HEAD: %s", resp.Status)
	}
	return headerInt(e.t, resp, "Upload-Offset"), headerInt(e.t, resp, "Upload-Length")
}

func (e *env) get(up upload, hdr map[string]string) *http.Response {
	e.t.Helper()
	return e.do("GET", up.url, hdr, nil, 0)
}

func (e *env) download(up upload) []byte {
	e.t.Helper()
	resp := e.get(up, nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// uploadAll uploads data in PATCHes of at most chunk bytes.
func (e *env) uploadAll(data []byte, chunk int) upload {
	e.t.Helper()
	up := e.create(int64(len(data)))
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		resp := e.patchBytes(up, int64(off), data[off:end])
		if resp.StatusCode != http.StatusNoContent {
			e.t.Fatalf("PATCH at %d: %s", off, resp.Status)
		}
		if got := headerInt(e.t, resp, "Upload-Offset"); got != int64(end) {
			e.t.Fatalf("PATCH at %d: Upload-Offset %d, want %d", off, got, end)
		}
	}
	return up
}

func headerInt(t testing.TB, resp *http.Response, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(resp.Header.Get(name), 10, 64)
	if err != nil {
		t.Fatalf("%s %q: %v", name, resp.Header.Get(name), err)
	}
	return n
}

func wantStatus(t testing.TB, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %s (%q), want %d", resp.Request.Method, resp.Request.URL.Path, resp.Status, body, want)
	}
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func fileSize(t testing.TB, name string) int64 {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// eventually waits up to 5 s for cond.
func eventually(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func exists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

func TestUploadDownload(t *testing.T) {
	reg := metrics.New()
	e := newEnv(t, attach.Config{Metrics: reg})
	data := randomBytes(1, 5<<20+123)
	up := e.create(int64(len(data)))
	if len(up.id) != 32 || len(up.token) != 43 {
		t.Fatalf("id %q token %q: want 32 hex and 43 base64url characters", up.id, up.token)
	}
	if !strings.HasPrefix(up.url, e.srv.URL+prefix+"/") {
		t.Fatalf("Location resolves to %s", up.url)
	}
	const chunk = 1 << 20
	for off := 0; off < len(data); off += chunk {
		if got, _ := e.head(up); got != int64(off) {
			t.Fatalf("HEAD: offset %d, want %d", got, off)
		}
		if resp := e.get(up, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET of an incomplete upload: %s", resp.Status)
		}
		end := min(off+chunk, len(data))
		resp := e.patchBytes(up, int64(off), data[off:end])
		wantStatus(t, resp, http.StatusNoContent)
		if got := headerInt(t, resp, "Upload-Offset"); got != int64(end) {
			t.Fatalf("Upload-Offset %d, want %d", got, end)
		}
		if resp.Header.Get("Tus-Resumable") != "1.0.0" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("PATCH response headers: %v", resp.Header)
		}
	}
	if got := e.download(up); !bytes.Equal(got, data) {
		t.Fatalf("download differs: %d bytes, want %d", len(got), len(data))
	}

	// Downloads carry nothing but what the protocol says.
	resp := e.get(up, nil)
	io.Copy(io.Discard, resp.Body)
	for name, want := range map[string]string{
		"Content-Type":   "application/octet-stream",
		"Cache-Control":  "private, max-age=2592000, immutable",
		"ETag":           `"` + up.id + `"`,
		"Content-Length": strconv.Itoa(len(data)),
		"Last-Modified":  "",
		"Set-Cookie":     "",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("GET %s: %q, want %q", name, got, want)
		}
	}

	// The upload is complete: HEAD says so, an empty PATCH at the end is
	// answered again, and nothing more can be added.
	if off, length := e.head(up); off != length || length != int64(len(data)) {
		t.Errorf("HEAD after completion: %d/%d", off, length)
	}
	wantStatus(t, e.patchBytes(up, int64(len(data)), nil), http.StatusNoContent)
	wantStatus(t, e.patchBytes(up, int64(len(data)), []byte("x")), http.StatusRequestEntityTooLarge)
	wantStatus(t, e.patch(up, int64(len(data)), strings.NewReader("x"), -1), http.StatusRequestEntityTooLarge)
	if got := e.download(up); !bytes.Equal(got, data) {
		t.Fatal("blob changed after completion")
	}

	// On disk: the blob under its id, no data left in partial/, and a
	// record that holds length, token hash and day only.
	if !exists(filepath.Join(e.dir, up.id)) || exists(filepath.Join(e.dir, "partial", up.id)) {
		t.Error("blob not moved into place")
	}
	rec, err := os.ReadFile(filepath.Join(e.dir, "partial", up.id+".meta"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(rec))
	if len(f) != 4 || f[0] != "v1" || f[1] != strconv.Itoa(len(data)) || len(f[2]) != 64 || len(f[3]) != len("2006-01-02") {
		t.Errorf("record %q", rec)
	}
	if strings.Contains(string(rec), up.token) {
		t.Error("record holds the token")
	}

	// The handler counts a download after its last byte has gone out.
	eventually(t, func() bool { return e.store.Stats().DownloadedBytes == 3*uint64(len(data)) })
	st := e.store.Stats()
	if st.UploadedBytes != uint64(len(data)) || st.DownloadedBytes != 3*uint64(len(data)) || st.BlobsStored != 1 || st.UploadsActive != 0 {
		t.Errorf("stats %+v", st)
	}
	var buf bytes.Buffer
	reg.Write(&buf)
	for _, want := range []string{
		fmt.Sprintf("sotto_attachment_uploaded_bytes_total %d\n", len(data)),
		fmt.Sprintf("sotto_attachment_downloaded_bytes_total %d\n", 3*len(data)),
		"sotto_attachment_blobs_stored_total 1\n",
		"sotto_attachment_blobs_expired_total 0\n",
		"sotto_attachment_uploads_in_progress 0\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, buf.String())
		}
	}
}

// failingReader yields n bytes of r, then fails as a dropped connection
// would.
type failingReader struct {
	r io.Reader
	n int
}

var errNetwork = errors.New("network went away")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errNetwork
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestResumeAfterInterruptedPatch(t *testing.T) {
	e := newEnv(t, attach.Config{})
	data := randomBytes(2, 3<<20)
	up := e.create(int64(len(data)))
	id, _ := attach.ParseID(up.id)

	// Call the handler directly, so the break is exactly where we say.
	const cut = 1<<20 + 4321
	req := httptest.NewRequest("PATCH", "/"+id.String(), &failingReader{r: bytes.NewReader(data), n: cut})
	req.ContentLength = int64(len(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Token", up.token)
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	rec := httptest.NewRecorder()
	e.store.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Upload-Offset") != strconv.Itoa(cut) {
		t.Fatalf("interrupted PATCH: %d, Upload-Offset %q", rec.Code, rec.Header().Get("Upload-Offset"))
	}
	if got := fileSize(t, filepath.Join(e.dir, "partial", up.id)); got != cut {
		t.Fatalf("kept %d bytes, want %d", got, cut)
	}
	off, _ := e.head(up)
	if off != cut {
		t.Fatalf("HEAD: %d, want %d", off, cut)
	}
	wantStatus(t, e.patchBytes(up, off, data[off:]), http.StatusNoContent)
	if got := e.download(up); !bytes.Equal(got, data) {
		t.Fatal("resumed upload differs")
	}
}

// TestResumeOverNetwork is the same over a real connection, with a client
// that resumes the way a real one does: HEAD, then PATCH from there, again
// on 409 or 423 while the server is still finishing the broken PATCH.
func TestResumeOverNetwork(t *testing.T) {
	e := newEnv(t, attach.Config{})
	data := randomBytes(3, 4<<20)
	up := e.create(int64(len(data)))
	const cut = 2 << 20
	req, _ := http.NewRequest("PATCH", up.url, &failingReader{r: bytes.NewReader(data), n: cut})
	req.ContentLength = int64(len(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Token", up.token)
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	if resp, err := e.srv.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("PATCH with a failing body: %s", resp.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	var resumedAt int64 = -1
	for time.Now().Before(deadline) {
		off, _ := e.head(up)
		if off == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		resp := e.patchBytes(up, off, data[off:])
		if resp.StatusCode == http.StatusNoContent {
			resumedAt = off
			break
		}
		if resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusLocked {
			t.Fatalf("resume at %d: %s", off, resp.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resumedAt <= 0 || resumedAt > cut {
		t.Fatalf("resumed at %d, want in (0, %d]", resumedAt, cut)
	}
	if got := e.download(up); !bytes.Equal(got, data) {
		t.Fatal("resumed upload differs")
	}
}

func TestWrongOffset(t *testing.T) {
	e := newEnv(t, attach.Config{})
	up := e.create(100)
	wantStatus(t, e.patchBytes(up, 0, make([]byte, 40)), http.StatusNoContent)
	for _, off := range []int64{0, 39, 41, 100, 1000} {
		resp := e.patchBytes(up, off, make([]byte, 10))
		wantStatus(t, resp, http.StatusConflict)
		if got := headerInt(t, resp, "Upload-Offset"); got != 40 {
			t.Errorf("409 at %d: Upload-Offset %d, want 40", off, got)
		}
	}
	if off, _ := e.head(up); off != 40 {
		t.Errorf("offset %d after refused PATCHes", off)
	}
}

func TestOverLength(t *testing.T) {
	e := newEnv(t, attach.Config{})
	data := randomBytes(4, 1000)
	up := e.create(int64(len(data)))
	wantStatus(t, e.patchBytes(up, 0, data[:600]), http.StatusNoContent)
	partial := filepath.Join(e.dir, "partial", up.id)

	// Declared too long: refused before a byte is read.
	wantStatus(t, e.patchBytes(up, 600, make([]byte, 401)), http.StatusRequestEntityTooLarge)
	// Chunked, with no length to check first: the bytes up to the length
	// are read, then the extra byte shows up and the PATCH is undone.
	resp := e.patch(up, 600, io.MultiReader(bytes.NewReader(data[600:]), strings.NewReader("extra")), -1)
	wantStatus(t, resp, http.StatusRequestEntityTooLarge)
	if got := headerInt(t, resp, "Upload-Offset"); got != 600 {
		t.Errorf("413: Upload-Offset %d, want 600", got)
	}
	if off, _ := e.head(up); off != 600 {
		t.Errorf("offset %d after over-length PATCHes, want 600", off)
	}
	if got := fileSize(t, partial); got != 600 {
		t.Errorf("partial file holds %d bytes, want 600", got)
	}
	// The upload is still good.
	wantStatus(t, e.patch(up, 600, bytes.NewReader(data[600:]), -1), http.StatusNoContent)
	if got := e.download(up); !bytes.Equal(got, data) {
		t.Fatal("download differs")
	}
	if got := fileSize(t, filepath.Join(e.dir, up.id)); got != int64(len(data)) {
		t.Errorf("blob of %d bytes", got)
	}
}

func TestCreateRefusals(t *testing.T) {
	e := newEnv(t, attach.Config{MaxSize: 1000})
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		body   string
		status int
	}{
		{"at MaxSize", map[string]string{"Upload-Length": "1000"}, "", http.StatusCreated},
		{"over MaxSize", map[string]string{"Upload-Length": "1001"}, "", http.StatusRequestEntityTooLarge},
		{"huge", map[string]string{"Upload-Length": "9223372036854775807"}, "", http.StatusRequestEntityTooLarge},
		{"overflow", map[string]string{"Upload-Length": "9223372036854775808"}, "", http.StatusBadRequest},
		{"zero", map[string]string{"Upload-Length": "0"}, "", http.StatusBadRequest},
		{"missing", map[string]string{}, "", http.StatusBadRequest},
		{"negative", map[string]string{"Upload-Length": "-1"}, "", http.StatusBadRequest},
		{"leading zero", map[string]string{"Upload-Length": "0100"}, "", http.StatusBadRequest},
		{"deferred", map[string]string{"Upload-Defer-Length": "1"}, "", http.StatusBadRequest},
		{"with body", map[string]string{"Upload-Length": "10"}, "0123456789", http.StatusBadRequest},
		{"no Tus-Resumable", map[string]string{"Upload-Length": "10", "Tus-Resumable": ""}, "", http.StatusPreconditionFailed},
		{"old Tus-Resumable", map[string]string{"Upload-Length": "10", "Tus-Resumable": "0.2.2"}, "", http.StatusPreconditionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Tus-Resumable": "1.0.0"}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp := e.do("POST", e.base, hdr, body, int64(len(tc.body)))
			wantStatus(t, resp, tc.status)
			switch tc.status {
			case http.StatusRequestEntityTooLarge:
				if resp.Header.Get("Tus-Max-Size") != "1000" {
					t.Errorf("Tus-Max-Size %q", resp.Header.Get("Tus-Max-Size"))
				}
			case http.StatusPreconditionFailed:
				if resp.Header.Get("Tus-Version") != "1.0.0" {
					t.Errorf("Tus-Version %q", resp.Header.Get("Tus-Version"))
				}
			}
			if tc.status != http.StatusCreated && (resp.Header.Get("Location") != "" || resp.Header.Get("Upload-Token") != "") {
				t.Error("a refusal created an upload")
			}
		})
	}
	if got := e.store.Stats().UploadsActive; got != 1 {
		t.Errorf("%d uploads in progress, want 1", got)
	}
}

func TestToken(t *testing.T) {
	e := newEnv(t, attach.Config{})
	up := e.create(100)
	other := e.create(100)
	wantStatus(t, e.patchBytes(up, 0, make([]byte, 10)), http.StatusNoContent)
	unknown := upload{url: e.base + strings.Repeat("ab", 16), token: up.token}

	for _, tc := range []struct {
		name   string
		up     upload
		token  []string
		status int
	}{
		{"missing", up, nil, http.StatusUnauthorized},
		{"wrong", up, []string{other.token}, http.StatusForbidden},
		{"malformed", up, []string{"not-a-token"}, http.StatusForbidden},
		{"padded", up, []string{up.token + "="}, http.StatusForbidden},
		{"twice", up, []string{up.token, up.token}, http.StatusForbidden},
		{"unknown id", unknown, []string{up.token}, http.StatusForbidden},
		{"unknown id, missing", unknown, nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"HEAD", "PATCH"} {
				req, _ := http.NewRequest(method, tc.up.url, bytes.NewReader(make([]byte, 5)))
				req.Header.Set("Tus-Resumable", "1.0.0")
				req.Header.Set("Upload-Offset", "10")
				req.Header.Set("Content-Type", "application/offset+octet-stream")
				for _, v := range tc.token {
					req.Header.Add("Upload-Token", v)
				}
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status || resp.Header.Get("Upload-Offset") != "" || resp.Header.Get("Upload-Length") != "" {
					t.Errorf("%s: %s, Upload-Offset %q", method, resp.Status, resp.Header.Get("Upload-Offset"))
				}
			}
		})
	}
	if off, _ := e.head(up); off != 10 {
		t.Errorf("offset %d after refused PATCHes, want 10", off)
	}
	// A wrong token and an unknown id read the same.
	a := e.do("PATCH", up.url, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Token": other.token, "Upload-Offset": "10", "Content-Type": "application/offset+octet-stream"}, nil, 0)
	b := e.do("PATCH", unknown.url, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Token": other.token, "Upload-Offset": "10", "Content-Type": "application/offset+octet-stream"}, nil, 0)
	ab, _ := io.ReadAll(a.Body)
	bb, _ := io.ReadAll(b.Body)
	a.Header.Del("Date")
	b.Header.Del("Date")
	if a.StatusCode != b.StatusCode || !bytes.Equal(ab, bb) || fmt.Sprint(a.Header) != fmt.Sprint(b.Header) {
		t.Errorf("wrong token %s %v %q; unknown id %s %v %q", a.Status, a.Header, ab, b.Status, b.Header, bb)
	}
}

func TestBadIDs(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "blobs")
	e := newEnv(t, attach.Config{Dir: dir})
	up := e.uploadAll(randomBytes(5, 100), 100)
	pending := e.create(100)

	// Files outside Dir a traversal would reach, named like blobs.
	valid := strings.Repeat("0f", 16)
	for _, name := range []string{valid, "secret"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("outside"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	paths := []string{
		"/../" + valid,
		"/../secret",
		"/..%2f" + valid,
		"/%2e%2e/secret",
		"/" + valid[:31],
		"/" + valid + "0",
		"/" + strings.ToUpper(up.id),
		"/" + up.id + "/",
		"/" + up.id + "/x",
		"/" + up.id + ".meta",
		"/" + pending.id + ".meta",
		"/partial",
		"/partial/" + pending.id,
		"/" + strings.Repeat("g", 32),
		"/" + up.id[:30] + "\x00\x00",
		"//" + up.id,
		"/ " + up.id[1:],
		"",
		"/..",
	}
	for _, p := range paths {
		t.Run(strconv.Quote(p), func(t *testing.T) {
			for _, method := range []string{"GET", "HEAD", "PATCH"} {
				// Straight to the handler, path as given, no cleaning.
				req := httptest.NewRequest(method, "/", nil)
				req.URL.Path = p
				req.Header.Set("Tus-Resumable", "1.0.0")
				req.Header.Set("Upload-Token", pending.token)
				req.Header.Set("Upload-Offset", "0")
				req.Header.Set("Content-Type", "application/offset+octet-stream")
				rec := httptest.NewRecorder()
				e.store.Handler().ServeHTTP(rec, req)
				if rec.Code != http.StatusNotFound && rec.Code != http.StatusBadRequest && rec.Code != http.StatusMethodNotAllowed {
					t.Errorf("%s %q: %d", method, p, rec.Code)
				}
				if strings.Contains(rec.Body.String(), "outside") {
					t.Errorf("%s %q served a file outside Dir", method, p)
				}
			}
		})
	}
	// An upload in progress is not served.
	wantStatus(t, e.get(pending, nil), http.StatusNotFound)
	// Over the network, through the mux (which cleans some paths itself).
	for _, p := range []string{"/../" + valid, "/..%2f" + valid, "/%2e%2e/secret", "/" + pending.id, "/" + up.id + ".meta"} {
		req, _ := http.NewRequest("GET", e.srv.URL+prefix+p, nil)
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "outside") {
			t.Errorf("GET %s: %s %q", p, resp.Status, body)
		}
	}
	for _, name := range []string{valid, "secret"} {
		if b, err := os.ReadFile(filepath.Join(root, name)); err != nil || string(b) != "outside" {
			t.Errorf("file outside Dir touched: %q %v", b, err)
		}
	}
	if off, _ := e.head(pending); off != 0 {
		t.Errorf("pending upload at %d", off)
	}
}

func TestRangeDownload(t *testing.T) {
	e := newEnv(t, attach.Config{})
	data := randomBytes(6, 1<<20)
	up := e.uploadAll(data, 300_000)
	etag := `"` + up.id + `"`
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
		want   []byte
	}{
		{"middle", map[string]string{"Range": "bytes=1000-1999"}, http.StatusPartialContent, data[1000:2000]},
		{"resume", map[string]string{"Range": "bytes=524288-"}, http.StatusPartialContent, data[524288:]},
		{"suffix", map[string]string{"Range": "bytes=-50"}, http.StatusPartialContent, data[len(data)-50:]},
		{"if-range match", map[string]string{"Range": "bytes=10-19", "If-Range": etag}, http.StatusPartialContent, data[10:20]},
		{"if-range other", map[string]string{"Range": "bytes=10-19", "If-Range": `"x"`}, http.StatusOK, data},
		{"unsatisfiable", map[string]string{"Range": "bytes=2000000-"}, http.StatusRequestedRangeNotSatisfiable, nil},
		{"not modified", map[string]string{"If-None-Match": etag}, http.StatusNotModified, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.get(up, tc.hdr)
			wantStatus(t, resp, tc.status)
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !bytes.Equal(got, tc.want) {
				t.Errorf("got %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func TestExpire(t *testing.T) {
	day0 := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day0.Add(13*time.Hour + 17*time.Minute + 5*time.Second)}
	reg := metrics.New()
	e := newEnv(t, attach.Config{Now: clk.Now, Metrics: reg})
	data := randomBytes(7, 5000)
	done := e.uploadAll(data, 2000) // complete on day 0
	stale := e.create(5000)         // abandoned on day 0
	wantStatus(t, e.patchBytes(stale, 0, data[:100]), http.StatusNoContent)
	fresh := e.create(5000)           // resumed on day 1
	clk.Set(day0.Add(36 * time.Hour)) // day 1, noon
	newer := e.create(5000)           // created on day 1
	wantStatus(t, e.patchBytes(fresh, 0, data[:100]), http.StatusNoContent)

	// Every time on disk is a day.
	err := filepath.Walk(e.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !fi.ModTime().Equal(day0) && !fi.ModTime().Equal(day0.Add(24*time.Hour)) {
			t.Errorf("%s: mtime %v, not a day", p, fi.ModTime().UTC())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	expire := func(at time.Time, want int) {
		t.Helper()
		n, err := e.store.Expire(at)
		if err != nil || n != want {
			t.Fatalf("Expire(%v) = %d, %v; want %d", at, n, err, want)
		}
	}
	expire(day0.Add(48*time.Hour-time.Nanosecond), 0)
	if off, _ := e.head(fresh); off != 100 {
		t.Fatalf("fresh upload at %d", off)
	}
	// Uploads created on day 0 are gone on day 2; the complete one's record
	// too, but not the blob.
	expire(day0.Add(48*time.Hour), 2)
	for _, up := range []upload{stale, fresh} {
		resp := e.do("HEAD", up.url, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Token": up.token}, nil, 0)
		wantStatus(t, resp, http.StatusForbidden)
		if exists(filepath.Join(e.dir, "partial", up.id)) || exists(filepath.Join(e.dir, "partial", up.id+".meta")) {
			t.Errorf("upload %s left files", up.id)
		}
	}
	if exists(filepath.Join(e.dir, "partial", done.id+".meta")) {
		t.Error("completed upload's record kept past MaxPartialAge")
	}
	if got := e.download(done); !bytes.Equal(got, data) {
		t.Fatal("blob damaged")
	}
	if off, _ := e.head(newer); off != 0 {
		t.Fatalf("newer upload at %d", off)
	}
	if got := e.store.Stats(); got.UploadsActive != 1 || got.UploadsExpired != 2 {
		t.Errorf("stats %+v", got)
	}

	var buf bytes.Buffer
	reg.Write(&buf)
	if want := "sotto_attachment_uploads_expired_total 2\n"; !strings.Contains(buf.String(), want) {
		t.Errorf("metrics lack %q:\n%s", want, buf.String())
	}

	// Debris a crash can leave, found by the next start: judged by its
	// file time.
	partial := filepath.Join(e.dir, "partial")
	orphan := filepath.Join(partial, strings.Repeat("1", 32))
	tmp := filepath.Join(partial, strings.Repeat("2", 32)+".meta.tmp")
	for _, name := range []string{orphan, tmp} {
		if err := os.WriteFile(name, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(name, day0, day0); err != nil {
			t.Fatal(err)
		}
	}
	reg = metrics.New()
	e = newEnv(t, attach.Config{Dir: e.dir, Now: clk.Now, Metrics: reg})
	if got := e.store.Stats().UploadsActive; got != 2 {
		t.Errorf("%d uploads in progress after reopening, want 2 (newer, orphan)", got)
	}
	done.url = e.base + done.id
	os.WriteFile(tmp, []byte("x"), 0o600) // as if a POST had crashed after New
	os.Chtimes(tmp, day0, day0)

	// The blob lives Retention after the day it was made, and a day more.
	expire(day0.Add(24*time.Hour+attach.DefaultRetention-time.Nanosecond), 2) // newer, orphan
	if got := e.download(done); !bytes.Equal(got, data) {
		t.Fatal("blob expired early")
	}
	if exists(orphan) || exists(tmp) {
		t.Error("crash debris kept")
	}
	expire(day0.Add(24*time.Hour+attach.DefaultRetention), 1)
	wantStatus(t, e.get(done, nil), http.StatusNotFound)
	if exists(filepath.Join(e.dir, done.id)) {
		t.Error("expired blob still on disk")
	}
	expire(day0.Add(100*24*time.Hour), 0)
	if ents, _ := os.ReadDir(partial); len(ents) != 0 {
		t.Errorf("partial/ holds %d entries", len(ents))
	}
	if got := e.store.Stats(); got.UploadsActive != 0 || got.UploadsExpired != 2 || got.BlobsExpired != 1 {
		t.Errorf("stats %+v", got)
	}
	buf.Reset()
	reg.Write(&buf)
	for _, want := range []string{"sotto_attachment_blobs_expired_total 1\n", "sotto_attachment_uploads_expired_total 2\n"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, buf.String())
		}
	}
}

func TestConcurrentUploads(t *testing.T) {
	e := newEnv(t, attach.Config{})
	const uploads = 10
	blobs := make([][]byte, uploads)
	ups := make([]upload, uploads)
	var wg sync.WaitGroup
	errs := make(chan error, uploads)
	for i := range uploads {
		blobs[i] = randomBytes(uint64(100+i), 1<<20+i*4099)
		wg.Go(func() {
			up := e.create(int64(len(blobs[i])))
			ups[i] = up
			data := blobs[i]
			const chunk = 300_000
			for off := 0; off < len(data); off += chunk {
				end := min(off+chunk, len(data))
				if resp := e.patchBytes(up, int64(off), data[off:end]); resp.StatusCode != http.StatusNoContent {
					errs <- fmt.Errorf("upload %d at %d: %s", i, off, resp.Status)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, up := range ups {
		if got := e.download(up); !bytes.Equal(got, blobs[i]) {
			t.Errorf("upload %d differs", i)
		}
	}
	if st := e.store.Stats(); st.BlobsStored != uploads || st.UploadsActive != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestConcurrentPatchOfOneUpload(t *testing.T) {
	e := newEnv(t, attach.Config{})
	data := randomBytes(8, 100_000)
	up := e.create(int64(len(data)))
	pr, pw := io.Pipe()
	first := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest("PATCH", up.url, pr)
		req.ContentLength = int64(len(data))
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Token", up.token)
		req.Header.Set("Upload-Offset", "0")
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			first <- nil
			return
		}
		resp.Body.Close()
		first <- resp
	}()
	pw.Write(data[:1000])
	// Wait until the first PATCH is writing.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if off, _ := e.head(up); off == 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first PATCH never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantStatus(t, e.patchBytes(up, 1000, data[1000:]), http.StatusLocked)
	pw.Write(data[1000:])
	pw.Close()
	if resp := <-first; resp == nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("first PATCH: %v", resp)
	}
	if got := e.download(up); !bytes.Equal(got, data) {
		t.Fatal("download differs")
	}
}

func TestAuthorize(t *testing.T) {
	// Authorize runs on the server's goroutines.
	var mu sync.Mutex
	var calls int
	var refusal error
	setRefusal := func(err error) {
		mu.Lock()
		refusal = err
		mu.Unlock()
	}
	e := newEnv(t, attach.Config{Authorize: func(r *http.Request) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.Header.Get("Upload-Length") == "" {
			t.Error("Authorize called before the request was checked")
		}
		return refusal
	}})
	for _, tc := range []struct {
		name       string
		err        error
		status     int
		retryAfter string
	}{
		{"unauthorized", fmt.Errorf("no device: %w", attach.ErrUnauthorized), http.StatusUnauthorized, ""},
		{"forbidden", attach.ErrForbidden, http.StatusForbidden, ""},
		{"rate limited", attach.ErrRateLimited, http.StatusTooManyRequests, ""},
		{"rate limited for a while", &attach.RateLimitError{RetryAfter: 2500 * time.Millisecond}, http.StatusTooManyRequests, "3"},
		{"other", errors.New("database down"), http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setRefusal(tc.err)
			resp := e.do("POST", e.base, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "10"}, nil, 0)
			wantStatus(t, resp, tc.status)
			if got := resp.Header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			if resp.Header.Get("Location") != "" || resp.Header.Get("Upload-Token") != "" {
				t.Error("refused, yet an upload was created")
			}
		})
	}
	if ents, err := os.ReadDir(filepath.Join(e.dir, "partial")); err != nil || len(ents) != 0 {
		t.Errorf("partial/ holds %d entries after refusals (%v)", len(ents), err)
	}
	setRefusal(nil)
	up := e.uploadAll([]byte("hello"), 2)
	mu.Lock()
	defer mu.Unlock()
	if calls != 6 {
		t.Errorf("Authorize called %d times, want once per POST (6)", calls)
	}
	if got := e.download(up); string(got) != "hello" {
		t.Errorf("download %q", got)
	}
}

func TestMaxUploads(t *testing.T) {
	e := newEnv(t, attach.Config{MaxUploads: 2})
	a := e.create(10)
	e.create(10)
	resp := e.do("POST", e.base, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "10"}, nil, 0)
	wantStatus(t, resp, http.StatusServiceUnavailable)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	wantStatus(t, e.patchBytes(a, 0, make([]byte, 10)), http.StatusNoContent)
	e.create(10) // a's completion made room
}

func TestProtocolRefusals(t *testing.T) {
	e := newEnv(t, attach.Config{})
	up := e.create(10)
	hdr := func(kv ...string) map[string]string {
		m := map[string]string{"Tus-Resumable": "1.0.0", "Upload-Token": up.token, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		method string
		url    string
		hdr    map[string]string
		status int
	}{
		{"PATCH without Tus-Resumable", "PATCH", up.url, hdr("Tus-Resumable", "1.0"), http.StatusPreconditionFailed},
		{"HEAD without Tus-Resumable", "HEAD", up.url, hdr("Tus-Resumable", "2.0.0"), http.StatusPreconditionFailed},
		{"wrong Content-Type", "PATCH", up.url, hdr("Content-Type", "application/octet-stream"), http.StatusUnsupportedMediaType},
		{"Content-Type with parameter", "PATCH", up.url, hdr("Content-Type", "application/offset+octet-stream; x=y"), http.StatusNoContent},
		{"malformed offset", "PATCH", up.url, hdr("Upload-Offset", "+3"), http.StatusBadRequest},
		{"missing offset", "PATCH", up.url, hdr("Upload-Offset", ""), http.StatusBadRequest},
		{"DELETE", "DELETE", up.url, hdr(), http.StatusMethodNotAllowed},
		{"PUT collection", "PUT", e.base, hdr(), http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, nil)
			for k, v := range tc.hdr {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wantStatus(t, resp, tc.status)
			if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	resp := e.do("OPTIONS", e.base, nil, nil, 0)
	wantStatus(t, resp, http.StatusNoContent)
	if resp.Header.Get("Tus-Version") != "1.0.0" || resp.Header.Get("Tus-Max-Size") != strconv.Itoa(attach.DefaultMaxSize) || resp.Header.Get("Tus-Extension") != "creation" {
		t.Errorf("OPTIONS: %v", resp.Header)
	}
}

// TestReopen checks that an upload survives a restart of the store.
func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blobs")
	e := newEnv(t, attach.Config{Dir: dir})
	data := randomBytes(9, 10_000)
	up := e.create(int64(len(data)))
	e.create(10)
	wantStatus(t, e.patchBytes(up, 0, data[:4000]), http.StatusNoContent)
	tmp := filepath.Join(dir, "partial", strings.Repeat("3", 32)+".meta.tmp")
	os.WriteFile(tmp, []byte("half a rec"), 0o600)

	e2 := newEnv(t, attach.Config{Dir: dir})
	if got := e2.store.Stats().UploadsActive; got != 2 {
		t.Errorf("%d uploads in progress after reopening, want 2", got)
	}
	if exists(tmp) {
		t.Error("half-written record kept")
	}
	up.url = e2.base + up.id
	if off, _ := e2.head(up); off != 4000 {
		t.Fatalf("offset %d after reopening", off)
	}
	wantStatus(t, e2.patchBytes(up, 4000, data[4000:]), http.StatusNoContent)
	if got := e2.download(up); !bytes.Equal(got, data) {
		t.Fatal("download differs")
	}
}

func TestNewConfig(t *testing.T) {
	for _, cfg := range []attach.Config{
		{},
		{Dir: t.TempDir(), MaxSize: -1},
		{Dir: t.TempDir(), Retention: -time.Hour},
		{Dir: t.TempDir(), MaxUploads: -1},
	} {
		if _, err := attach.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestRun(t *testing.T) {
	clk := &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, attach.Config{Now: clk.Now})
	up := e.uploadAll([]byte("old"), 3)
	clk.Set(clk.Now().Add(40 * 24 * time.Hour))
	ctx, cancel := context.WithCancel(t.Context())
	stopped := make(chan struct{})
	go func() {
		e.store.Run(ctx)
		close(stopped)
	}()
	eventually(t, func() bool { return !exists(filepath.Join(e.dir, up.id)) })
	cancel()
	<-stopped
}

// TestLogs checks that success is quiet and that errors carry no ids.
func TestLogs(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, attach.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	done := e.uploadAll(randomBytes(11, 1000), 300)
	e.download(done)
	e.head(done)
	up := e.create(100)
	e.head(up)
	if buf.String() != "" {
		t.Fatalf("success logged: %s", buf.String())
	}
	// Damage the upload: its data file turns into a directory.
	data := filepath.Join(e.dir, "partial", up.id)
	if err := os.Remove(data); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(data, "x"), make([]byte, 10), 0o600)
	resp := e.do("HEAD", up.url, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Token": up.token}, nil, 0)
	wantStatus(t, resp, http.StatusInternalServerError)
	wantStatus(t, e.patchBytes(up, 0, []byte("x")), http.StatusInternalServerError)
	logs := buf.String()
	if logs == "" {
		t.Fatal("error not logged")
	}
	for _, secret := range []string{up.id, done.id, up.token, "127.0.0.1", "Go-http-client"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
