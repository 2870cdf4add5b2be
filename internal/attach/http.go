package attach

import (
	"crypto/subtle"
	"errors"
	"io"
	"io/fs"
	"math"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Header names of the protocol (see the package documentation).
const (
	hdrTusResumable  = "Tus-Resumable"
	hdrTusVersion    = "Tus-Version"
	hdrTusMaxSize    = "Tus-Max-Size"
	hdrTusExtension  = "Tus-Extension"
	hdrUploadLength  = "Upload-Length"
	hdrUploadOffset  = "Upload-Offset"
	hdrUploadToken   = "Upload-Token"
	offsetStreamType = "application/offset+octet-stream"
)

// Handler returns the HTTP handler of the protocol in the package
// documentation. It expects paths with the mount prefix removed:
//
//	mux.Handle("/v1/attachments/", http.StripPrefix("/v1/attachments", store.Handler()))
//
// The server in front must not impose a total read timeout on requests (a
// 2 GiB PATCH takes a while); the handler closes a PATCH whose body stalls
// for BodyIdleTimeout.
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" {
		switch r.Method {
		case http.MethodPost:
			s.servePost(w, r)
		case http.MethodOptions:
			s.serveOptions(w)
		default:
			w.Header().Set("Allow", "POST, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, "/")
	id, err := ParseID(name)
	if !ok || err != nil {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.serveGet(w, r, id)
	case http.MethodHead:
		s.serveHead(w, r, id)
	case http.MethodPatch:
		s.servePatch(w, r, id)
	case http.MethodOptions:
		s.serveOptions(w)
	default:
		w.Header().Set("Allow", "GET, HEAD, PATCH, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Store) serveOptions(w http.ResponseWriter) {
	h := w.Header()
	h.Set(hdrTusVersion, tusVersion)
	h.Set(hdrTusMaxSize, strconv.FormatInt(s.cfg.MaxSize, 10))
	h.Set(hdrTusExtension, "creation")
	w.WriteHeader(http.StatusNoContent)
}

// tusStart sets the headers of every upload response and checks the
// request's protocol version; false means it has answered.
func tusStart(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set(hdrTusResumable, tusVersion)
	h.Set("Cache-Control", "no-store")
	if v := r.Header.Values(hdrTusResumable); len(v) != 1 || v[0] != tusVersion {
		h.Set(hdrTusVersion, tusVersion)
		http.Error(w, "Tus-Resumable 1.0.0 required", http.StatusPreconditionFailed)
		return false
	}
	return true
}

// sizeHeader returns the value of the Upload-Length or Upload-Offset header
// name; ok is false if it is missing, repeated or malformed.
func sizeHeader(r *http.Request, name string) (n int64, ok bool) {
	v := r.Header.Values(name)
	if len(v) != 1 {
		return 0, false
	}
	n, err := parseSize(v[0])
	return n, err == nil
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := max(1, int64(math.Ceil(d.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

func (s *Store) servePost(w http.ResponseWriter, r *http.Request) {
	if !tusStart(w, r) {
		return
	}
	length, ok := sizeHeader(r, hdrUploadLength)
	switch {
	case !ok:
		http.Error(w, "Upload-Length required: a decimal number", http.StatusBadRequest)
		return
	case length < MinSize:
		http.Error(w, "Upload-Length must be positive", http.StatusBadRequest)
		return
	case length > s.cfg.MaxSize:
		w.Header().Set(hdrTusMaxSize, strconv.FormatInt(s.cfg.MaxSize, 10))
		http.Error(w, "Upload-Length over the maximum", http.StatusRequestEntityTooLarge)
		return
	case r.ContentLength != 0:
		http.Error(w, "creation takes no body: send it with PATCH", http.StatusBadRequest)
		return
	}
	if s.cfg.Authorize != nil {
		if err := s.cfg.Authorize(r); err != nil {
			refuse(w, err)
			return
		}
	}
	id, tok, err := s.create(length)
	if errors.Is(err, errFull) {
		setRetryAfter(w, RetryAfterFull)
		http.Error(w, "too many uploads in progress", http.StatusServiceUnavailable)
		return
	} else if err != nil {
		s.log.Error("create attachment upload", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Location", id.String())
	w.Header().Set(hdrUploadToken, tok)
	w.WriteHeader(http.StatusCreated)
}

// refuse answers an Authorize error.
func refuse(w http.ResponseWriter, err error) {
	var rl *RateLimitError
	switch {
	case errors.As(err, &rl):
		setRetryAfter(w, rl.RetryAfter)
		http.Error(w, "rate limited", http.StatusTooManyRequests)
	case errors.Is(err, ErrRateLimited):
		http.Error(w, "rate limited", http.StatusTooManyRequests)
	case errors.Is(err, ErrUnauthorized):
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	default:
		http.Error(w, "forbidden", http.StatusForbidden)
	}
}

// authenticate checks the request's Upload-Token against id's record and
// returns the record; false means it has answered. A wrong token and an
// unknown id get the same answer, after the same work.
func (s *Store) authenticate(w http.ResponseWriter, r *http.Request, id ID) (record, bool) {
	v := r.Header.Values(hdrUploadToken)
	if len(v) == 0 {
		w.Header().Set("WWW-Authenticate", hdrUploadToken)
		http.Error(w, "Upload-Token required", http.StatusUnauthorized)
		return record{}, false
	}
	tok, tokErr := parseToken(v[0])
	rec, recErr := s.readRecord(id)
	if recErr != nil && !errors.Is(recErr, fs.ErrNotExist) {
		s.log.Error("read attachment upload record", "err", recErr)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return record{}, false
	}
	// For an unknown id rec.tokenHash is all zeros, which no token hashes
	// to; the comparison runs all the same.
	sum := hashToken(tok[:])
	match := subtle.ConstantTimeCompare(sum[:], rec.tokenHash[:]) == 1
	if !match || tokErr != nil || recErr != nil || len(v) != 1 {
		http.Error(w, "forbidden", http.StatusForbidden)
		return record{}, false
	}
	return rec, true
}

// uploadState returns the upload's offset and completeness; false means it
// has answered.
func (s *Store) uploadState(w http.ResponseWriter, id ID, rec record) (int64, bool, bool) {
	off, complete, err := s.state(id, rec)
	if errors.Is(err, errGone) {
		http.Error(w, "upload removed; start again", http.StatusNotFound)
		return 0, false, false
	} else if err != nil {
		s.log.Error("stat attachment upload", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return 0, false, false
	}
	return off, complete, true
}

func (s *Store) serveHead(w http.ResponseWriter, r *http.Request, id ID) {
	if !tusStart(w, r) {
		return
	}
	rec, ok := s.authenticate(w, r, id)
	if !ok {
		return
	}
	off, _, ok := s.uploadState(w, id, rec)
	if !ok {
		return
	}
	w.Header().Set(hdrUploadOffset, strconv.FormatInt(off, 10))
	w.Header().Set(hdrUploadLength, strconv.FormatInt(rec.length, 10))
	w.WriteHeader(http.StatusOK)
}

func (s *Store) servePatch(w http.ResponseWriter, r *http.Request, id ID) {
	if !tusStart(w, r) {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != offsetStreamType {
		http.Error(w, "Content-Type must be "+offsetStreamType, http.StatusUnsupportedMediaType)
		return
	}
	off, ok := sizeHeader(r, hdrUploadOffset)
	if !ok {
		http.Error(w, "Upload-Offset required: a decimal number", http.StatusBadRequest)
		return
	}
	rec, ok := s.authenticate(w, r, id)
	if !ok {
		return
	}
	if !s.lock(id) {
		http.Error(w, "another PATCH of this upload is running", http.StatusLocked)
		return
	}
	defer s.unlock(id)
	cur, complete, ok := s.uploadState(w, id, rec)
	if !ok {
		return
	}
	if off != cur {
		w.Header().Set(hdrUploadOffset, strconv.FormatInt(cur, 10))
		http.Error(w, "Upload-Offset is not the current offset", http.StatusConflict)
		return
	}
	remaining := rec.length - cur
	if r.ContentLength > remaining {
		http.Error(w, "body runs past Upload-Length", http.StatusRequestEntityTooLarge)
		return
	}
	body := &bodyReader{r: r.Body, rc: http.NewResponseController(w), idle: s.idle, deadlines: true}
	if complete {
		if body.more() {
			http.Error(w, "body runs past Upload-Length", http.StatusRequestEntityTooLarge)
			return
		}
		w.Header().Set(hdrUploadOffset, strconv.FormatInt(cur, 10))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	n, status, err := s.write(id, rec, cur, body)
	if err != nil {
		s.log.Error("write attachment upload", "err", err)
	}
	switch status {
	case http.StatusNoContent:
		w.Header().Set(hdrUploadOffset, strconv.FormatInt(cur+n, 10))
		w.WriteHeader(status)
	case http.StatusBadRequest:
		w.Header().Set(hdrUploadOffset, strconv.FormatInt(cur+n, 10))
		http.Error(w, "request body broke off; HEAD for the offset", status)
	case http.StatusRequestEntityTooLarge:
		w.Header().Set(hdrUploadOffset, strconv.FormatInt(cur, 10))
		http.Error(w, "body runs past Upload-Length", status)
	default:
		http.Error(w, "internal error", status) // the offset is uncertain: HEAD
	}
}

// write appends body to the upload id, at offset cur, and returns how many
// bytes it kept and the status to answer. It completes the blob when the
// upload reaches its length. The error is for the log.
func (s *Store) write(id ID, rec record, cur int64, body *bodyReader) (int64, int, error) {
	name := s.partialPath(id)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, http.StatusInternalServerError, scrub(err)
	}
	remaining := rec.length - cur
	n, copyErr := io.Copy(f, io.LimitReader(body, remaining))
	status := http.StatusNoContent
	switch {
	case body.err != nil:
		// The client went away or stalled: keep what arrived.
		status = http.StatusBadRequest
		copyErr = nil
	case copyErr != nil:
		status = http.StatusInternalServerError // a write error: disk full?
	case n == remaining && body.more():
		// Refused as a whole: nothing of this PATCH is kept.
		status = http.StatusRequestEntityTooLarge
		copyErr = f.Truncate(cur)
		n = 0
	}
	// Leave no time finer than the day on disk, then make bytes and times
	// durable.
	err = errors.Join(copyErr, os.Chtimes(name, rec.created, rec.created), f.Sync(), f.Close())
	if err != nil {
		return n, http.StatusInternalServerError, scrub(err)
	}
	if n > 0 {
		s.uploadedBytes.Add(uint64(n))
	}
	if status == http.StatusNoContent && cur+n == rec.length {
		if err := s.finish(id); err != nil {
			return n, http.StatusInternalServerError, err
		}
	}
	return n, status, nil
}

// bodyReader reads a PATCH body. It extends the connection's read deadline
// by BodyIdleTimeout before each read and remembers a read error, to tell it
// from a write error.
type bodyReader struct {
	r         io.Reader
	rc        *http.ResponseController
	idle      time.Duration // BodyIdleTimeout
	deadlines bool          // false once the connection turns out not to support them
	err       error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.deadlines {
		if err := b.rc.SetReadDeadline(time.Now().Add(b.idle)); err != nil {
			b.deadlines = false
		}
	}
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// more reports whether the body has another byte.
func (b *bodyReader) more() bool {
	var one [1]byte
	_, err := io.ReadFull(b, one[:])
	return err == nil
}

func (s *Store) serveGet(w http.ResponseWriter, r *http.Request, id ID) {
	f, err := openRead(s.blobPath(id))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("open attachment", "err", scrub(err))
		}
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", s.cache)
	h.Set("ETag", `"`+id.String()+`"`)
	cw := &countingWriter{ResponseWriter: w}
	// A zero modification time: no Last-Modified.
	http.ServeContent(cw, r, "", time.Time{}, f)
	s.downloadedBytes.Add(uint64(cw.n))
}

// countingWriter counts the body bytes of a response. It keeps the
// ResponseWriter's ReadFrom, so downloads still use sendfile.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		c.n += n
		return n, err
	}
	return io.Copy(writerOnly{c}, r)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// writerOnly hides a writer's ReadFrom, to avoid recursion.
type writerOnly struct{ io.Writer }
