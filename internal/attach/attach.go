// Package attach is sottod's attachment store. Clients encrypt attachments
// (photos, videos, files) end to end and upload the opaque ciphertext over
// plain HTTP; the recipient downloads it by an unguessable id that travels
// inside the encrypted message. The server never holds a blob whole in
// memory, survives interrupted uploads (they resume), and deletes blobs after
// the retention period.
//
// Uploads follow the core of the [tus 1.0] resumable upload protocol and its
// creation extension, with one addition: a per-upload secret, Upload-Token,
// without which nobody can append to or inspect an upload.
//
// # Protocol
//
// Paths are relative to where the caller mounts [Store.Handler] (for example
// /v1/attachments/, with [http.StripPrefix] removing "/v1/attachments"). An
// id is 16 random bytes in lowercase hex, 32 characters. A token is 32 random
// bytes in unpadded base64url, 43 characters. The upload requests (POST,
// PATCH, HEAD) must carry "Tus-Resumable: 1.0.0"; without it, or with another
// version, they get 412 Precondition Failed and "Tus-Version: 1.0.0". Their
// responses carry "Tus-Resumable: 1.0.0" and "Cache-Control: no-store". A
// header listed below must appear at most once; integers are decimal with no
// sign or leading zeros.
//
// Create an upload. [Config.Authorize] is asked first.
//
//	POST /
//	Tus-Resumable: 1.0.0
//	Upload-Length: 4194304
//	Content-Length: 0
//
//	201 Created
//	Location: 3f0c9a5be1d0c1f7a2b44e6f0d9a8c21
//	Upload-Token: Zq1W7c9Q0aXb3lV6y2N8pR4sT5uK1mH0jG7fE3dC2bA
//
// POST goes to the collection URL, trailing slash included. Location is
// relative: resolved against that URL it names
// /v1/attachments/3f0c9a5be1d0c1f7a2b44e6f0d9a8c21. The client keeps the
// token until the upload is complete; the server keeps only its hash.
// Refusals: 400 (Upload-Length missing, malformed or 0, or a request body),
// 413 with Tus-Max-Size (Upload-Length over [Config.MaxSize]), 401, 403 or
// 429 (Authorize; 429 carries Retry-After when Authorize says how long), 503
// with Retry-After (too many uploads in progress, see [DefaultMaxUploads]).
//
// Append bytes, in one PATCH or several:
//
//	PATCH /3f0c9a5be1d0c1f7a2b44e6f0d9a8c21
//	Tus-Resumable: 1.0.0
//	Upload-Token: Zq1W7c9Q0aXb3lV6y2N8pR4sT5uK1mH0jG7fE3dC2bA
//	Upload-Offset: 0
//	Content-Type: application/offset+octet-stream
//	Content-Length: 1048576
//
//	[1048576 bytes]
//
//	204 No Content
//	Upload-Offset: 1048576
//
// The body is streamed to disk; 204 comes only once the bytes are durable
// (fsync). Content-Length may be absent (chunked body). The PATCH that brings
// the offset to Upload-Length completes the blob: from its 204 on, GET serves
// it and nothing can change it. Refusals: 400 (Upload-Offset missing or
// malformed; or the body broke off, in which case the bytes that arrived are
// kept and HEAD reports them), 401 (no Upload-Token), 403 (wrong token, or no
// such upload: the two are indistinguishable), 404 (the upload was removed;
// start again), 409 with Upload-Offset (Upload-Offset is not the current
// offset), 413 (the body runs past Upload-Length: the whole PATCH is refused
// and nothing of it is kept), 415 (another Content-Type), 423 (another PATCH
// of this upload is still running; retry shortly).
//
// Find where to resume:
//
//	HEAD /3f0c9a5be1d0c1f7a2b44e6f0d9a8c21
//	Tus-Resumable: 1.0.0
//	Upload-Token: Zq1W7c9Q0aXb3lV6y2N8pR4sT5uK1mH0jG7fE3dC2bA
//
//	200 OK
//	Upload-Offset: 1048576
//	Upload-Length: 4194304
//
// Refusals as for PATCH (401, 403, 404). After completion HEAD reports
// Upload-Offset equal to Upload-Length for as long as the upload's record
// lives ([MaxPartialAge]), so a client whose last 204 was lost learns that it
// is done; a PATCH at that offset with an empty body is answered 204 again.
//
// Download, resumable with Range (no token: the id is the capability):
//
//	GET /3f0c9a5be1d0c1f7a2b44e6f0d9a8c21
//	Range: bytes=1000-
//
//	206 Partial Content
//	Content-Type: application/octet-stream
//	Content-Range: bytes 1000-4194303/4194304
//	Cache-Control: private, max-age=2592000, immutable
//	ETag: "3f0c9a5be1d0c1f7a2b44e6f0d9a8c21"
//
//	[bytes]
//
// 200 without Range. 404 for an id that is malformed, unknown, incomplete or
// expired. The ETag is the id itself, which the requester already knows; it
// lets If-Range resume a download safely. There is no Last-Modified.
//
// Discover the limits:
//
//	OPTIONS /
//
//	204 No Content
//	Tus-Version: 1.0.0
//	Tus-Max-Size: 2147483648
//	Tus-Extension: creation
//
// Other methods get 405 with Allow.
//
// Differences from tus 1.0: the Upload-Token header; a relative Location; an
// Upload-Length of 0 is refused (every encrypted attachment has at least an
// IV and a MAC); 423 for a concurrent PATCH; none of the extensions other
// than creation (no creation-with-upload, deferred length, checksums,
// termination, concatenation or Upload-Expires; Upload-Metadata is ignored,
// never stored). Clients check integrity themselves with the digest that
// travels in the encrypted message.
//
// # Storage
//
// One directory per [Store] ([Config.Dir]); one Store per directory.
//
//	<Dir>/<id>               complete blobs, immutable
//	<Dir>/partial/<id>       uploads in progress; the file size is the offset
//	<Dir>/partial/<id>.meta  "v1 <length> <token hash, hex> <YYYY-MM-DD>\n"
//	<Dir>/partial/<id>.meta.tmp  a record being written (POST in progress)
//
// The record holds the upload's length, the hash of its token,
// SHA-256("sotto-upload-token-v1" ‖ token), and the day (UTC) the upload was
// created: nothing about the client. Every file's modification and access
// times are set to its creation day, midnight UTC; a complete blob's mtime
// is how [Store.Expire] knows its age. Uploads in progress are locked in
// memory, so two Stores (two nodes of a cluster) must not share a Dir.
//
// # Security
//
// Ids are 128 random bits; tokens 256. Ids are validated strictly (32
// lowercase hex digits) before any file-system access, so no request can name
// a path outside Dir or a file other than a blob or an upload. The token is
// compared by its hash, in constant time, against a dummy hash when the
// upload does not exist, and the answer (403) is the same either way (the
// work differs by one small file read, which no one can exploit without
// first guessing a 128-bit id). The server only ever sees ciphertext.
//
// # Privacy
//
// Nothing here reads or stores remote addresses, user agents or any header
// other than those above (DESIGN.md, P4); only Authorize, the server's own
// code, sees the whole request. Logs carry errors only, with file
// names (which contain ids) stripped. Times at rest are days: creation days
// in records and in file times; downloads open blobs with O_NOATIME on Linux
// so reading leaves no access time. The file system's inode change time
// (ctime) cannot be set and records when a file was last written; Expire
// removes it with the file.
//
// # Compatibility
//
// Protocol history:
//   - v1 (2026-11-25): tus 1.0.0 core and creation, with Upload-Token.
//
// Record format history:
//   - v1 (2026-11-25): the line above.
//
// [tus 1.0]: https://tus.io/protocols/resumable-upload
package attach

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sotto-chat/sotto/internal/metrics"
)

// Defaults and limits, each with its reason.
const (
	// DefaultMaxSize is 2 GiB: a long video, and far below what one disk
	// holds.
	DefaultMaxSize = 2 << 30
	// DefaultRetention is 30 days (DESIGN.md, P5): as long as undelivered
	// envelopes are kept, so a recipient who can still receive the message
	// can still fetch its attachment.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultMaxUploads bounds the uploads in progress (created, neither
	// complete nor expired) in one store. Each may reserve up to MaxSize of
	// disk and holds two files; the bound is the global backstop against a
	// flood of POSTs, while Authorize's rate limits keep one device from
	// taking all of it.
	DefaultMaxUploads = 4096
	// MinSize is the smallest Upload-Length accepted: an empty blob carries
	// nothing a client could decrypt (every encrypted attachment has at
	// least an IV and a MAC).
	MinSize = 1
	// MaxPartialAge is how long an unfinished upload is kept after the day
	// it was created: long enough for a phone that lost its network
	// overnight to resume, short enough that abandoned uploads (each up to
	// MaxSize) do not pile up. Only the creation day is stored, so an
	// upload lives between one and two days.
	MaxPartialAge = 48 * time.Hour
	// ExpireInterval is how often Run calls Expire. Retention is counted in
	// days, so an hourly pass deletes a blob at most an hour after its last
	// day, for one directory scan an hour.
	ExpireInterval = time.Hour
	// BodyIdleTimeout closes a PATCH whose body has sent nothing for this
	// long (the 30 s tus recommends): its client is gone, and the PATCH
	// holds the upload's lock until it ends.
	BodyIdleTimeout = 30 * time.Second
	// RetryAfterFull is the Retry-After of a 503 when DefaultMaxUploads is
	// reached: uploads in progress finish within minutes.
	RetryAfterFull = time.Minute
	// maxRecordSize bounds a record file read from disk; a valid one is
	// under 110 bytes.
	maxRecordSize = 256
	// expireBatch is how many directory entries Expire reads at a time, so
	// a directory of millions of blobs costs a fixed amount of memory.
	expireBatch = 1024
	// tokenSize is the size of an upload token: unguessable.
	tokenSize = 32
	// tokenContext separates token hashes from every other SHA-256 use.
	tokenContext = "sotto-upload-token-v1"
	// tusVersion is the only tus protocol version spoken.
	tusVersion = "1.0.0"
	// partialDir is the subdirectory of Dir holding uploads in progress.
	partialDir = "partial"
	// recordSuffix and tmpSuffix name an upload's record and a record
	// being written.
	recordSuffix = ".meta"
	tmpSuffix    = ".tmp"
)

// Errors Authorize returns to choose the refusal's status. Any other error
// refuses with 403.
var (
	ErrUnauthorized = errors.New("attach: unauthorized") // 401
	ErrForbidden    = errors.New("attach: forbidden")    // 403
	ErrRateLimited  = errors.New("attach: rate limited") // 429
)

// RateLimitError is an [ErrRateLimited] that says when to retry; the 429
// carries it as Retry-After.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("attach: rate limited, retry after %v", e.RetryAfter)
}

// Unwrap returns ErrRateLimited.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// Config configures a Store. Zero values take the defaults.
type Config struct {
	// Dir holds the blobs; created (0700) if missing. Required.
	Dir string
	// MaxSize bounds one blob, in bytes. 0 means DefaultMaxSize.
	MaxSize int64
	// Retention is how long a complete blob is kept: it is deleted by the
	// first Expire at or after its creation day plus one day plus
	// Retention, so it is always available for at least Retention.
	// 0 means DefaultRetention.
	Retention time.Duration
	// MaxUploads bounds the uploads in progress. 0 means
	// DefaultMaxUploads.
	MaxUploads int
	// Authorize is called before an upload is created; an error refuses it
	// (see ErrUnauthorized, ErrForbidden, ErrRateLimited). The server plugs
	// in device authentication and in-memory rate limits here. Nil allows
	// every upload. It must do its own logging, if any.
	Authorize func(r *http.Request) error
	// Metrics, when not nil, gets the sotto_attachment_* metrics. A
	// registry can hold the metrics of only one Store.
	Metrics *metrics.Registry
	// Logger gets errors (never ids, addresses or times). Nil discards.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxSize == 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.MaxUploads == 0 {
		c.MaxUploads = DefaultMaxUploads
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("attach: Dir is required"))
	}
	if c.MaxSize < MinSize {
		errs = append(errs, fmt.Errorf("attach: MaxSize %d: must be positive", c.MaxSize))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("attach: Retention %v: must be positive", c.Retention))
	}
	if c.MaxUploads < 0 {
		errs = append(errs, fmt.Errorf("attach: MaxUploads %d: must be positive", c.MaxUploads))
	}
	return errors.Join(errs...)
}

// Store is an attachment store on one directory. It is safe for concurrent
// use.
type Store struct {
	cfg     Config
	dir     string // Config.Dir
	partial string // Dir/partial
	log     *slog.Logger
	cache   string        // the Cache-Control of downloads
	idle    time.Duration // BodyIdleTimeout; shorter in tests

	uploadedBytes   *metrics.Counter
	downloadedBytes *metrics.Counter
	blobsStored     *metrics.Counter
	blobsExpired    *metrics.Counter
	uploadsExpired  *metrics.Counter

	// mu guards busy and inProgress; it is held only for map and counter
	// updates, never across I/O.
	mu sync.Mutex
	// busy holds the ids a request is working on (a POST creating the
	// upload, a PATCH writing it, Expire removing it); one at a time.
	busy map[ID]struct{}
	// inProgress counts the uploads created and neither completed nor
	// removed, at most cfg.MaxUploads.
	inProgress int
}

// Stats are a Store's counters since New.
type Stats struct {
	UploadedBytes   uint64 // bytes kept from PATCH bodies
	DownloadedBytes uint64 // bytes sent by GET
	BlobsStored     uint64 // uploads completed
	BlobsExpired    uint64 // complete blobs deleted after the retention period
	UploadsExpired  uint64 // unfinished uploads deleted after MaxPartialAge
	UploadsActive   int    // uploads in progress now
}

// New opens (creating if needed) the store in cfg.Dir. It removes records
// left half-written by a crash and counts the uploads in progress.
func New(cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:     cfg,
		dir:     cfg.Dir,
		partial: filepath.Join(cfg.Dir, partialDir),
		log:     cfg.Logger,
		cache:   fmt.Sprintf("private, max-age=%d, immutable", int64(cfg.Retention/time.Second)),
		idle:    BodyIdleTimeout,
		busy:    map[ID]struct{}{},
	}
	if err := os.MkdirAll(s.partial, 0o700); err != nil {
		return nil, fmt.Errorf("attach: create directory: %w", err)
	}
	if err := s.scanPartial(); err != nil {
		return nil, fmt.Errorf("attach: scan uploads in progress: %w", err)
	}
	counter := func(name, help string) *metrics.Counter {
		if cfg.Metrics == nil {
			return new(metrics.Counter)
		}
		return cfg.Metrics.Counter(name, help)
	}
	s.uploadedBytes = counter("sotto_attachment_uploaded_bytes_total", "Attachment bytes received and kept.")
	s.downloadedBytes = counter("sotto_attachment_downloaded_bytes_total", "Attachment bytes sent.")
	s.blobsStored = counter("sotto_attachment_blobs_stored_total", "Attachment uploads completed.")
	s.blobsExpired = counter("sotto_attachment_blobs_expired_total", "Attachments deleted after the retention period.")
	s.uploadsExpired = counter("sotto_attachment_uploads_expired_total", "Unfinished attachment uploads deleted.")
	if cfg.Metrics != nil {
		cfg.Metrics.GaugeFunc("sotto_attachment_uploads_in_progress", "Attachment uploads created and not yet complete.",
			func() float64 { return float64(s.Stats().UploadsActive) })
	}
	return s, nil
}

// scanPartial removes half-written records and counts uploads in progress.
func (s *Store) scanPartial() error {
	return s.eachEntry(s.partial, func(e fs.DirEntry) error {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) {
			if err := os.Remove(filepath.Join(s.partial, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return scrub(err)
			}
			return nil
		}
		if _, err := ParseID(name); err == nil && e.Type().IsRegular() {
			s.inProgress++
		}
		return nil
	})
}

// eachEntry calls f for every entry of dir, reading it in batches. It stops
// at the first error of reading dir, and joins f's errors.
func (s *Store) eachEntry(dir string, f func(fs.DirEntry) error) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	var errs []error
	for {
		ents, err := d.ReadDir(expireBatch)
		for _, e := range ents {
			if err := f(e); err != nil {
				errs = append(errs, err)
			}
		}
		if err == io.EOF {
			return errors.Join(errs...)
		}
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
	}
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	active := s.inProgress
	s.mu.Unlock()
	return Stats{
		UploadedBytes:   s.uploadedBytes.Value(),
		DownloadedBytes: s.downloadedBytes.Value(),
		BlobsStored:     s.blobsStored.Value(),
		BlobsExpired:    s.blobsExpired.Value(),
		UploadsExpired:  s.uploadsExpired.Value(),
		UploadsActive:   active,
	}
}

// day returns the start (UTC) of t's day.
func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (s *Store) blobPath(id ID) string    { return filepath.Join(s.dir, id.String()) }
func (s *Store) partialPath(id ID) string { return filepath.Join(s.partial, id.String()) }
func (s *Store) recordPath(id ID) string  { return s.partialPath(id) + recordSuffix }

// lock marks id busy; it reports false if it already was.
func (s *Store) lock(id ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.busy[id]; ok {
		return false
	}
	s.busy[id] = struct{}{}
	return true
}

func (s *Store) unlock(id ID) {
	s.mu.Lock()
	delete(s.busy, id)
	s.mu.Unlock()
}

// reserve counts a new upload in progress, if there is room.
func (s *Store) reserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inProgress >= s.cfg.MaxUploads {
		return false
	}
	s.inProgress++
	return true
}

// done counts an upload as no longer in progress.
func (s *Store) done() {
	s.mu.Lock()
	s.inProgress--
	s.mu.Unlock()
}

var errFull = errors.New("attach: too many uploads in progress")

// create makes a new upload of length bytes and returns its id and token.
func (s *Store) create(length int64) (ID, string, error) {
	if !s.reserve() {
		return ID{}, "", errFull
	}
	var id ID
	var tok [tokenSize]byte
	rand.Read(id[:]) // never fails (crypto/rand)
	rand.Read(tok[:])
	if !s.lock(id) { // 2^-128: a second random id equal to a busy one
		s.done()
		return ID{}, "", errors.New("attach: id collision")
	}
	defer s.unlock(id)
	created := day(s.cfg.Now())
	rec := record{length: length, tokenHash: hashToken(tok[:]), created: created}
	if err := s.writeRecord(id, rec); err != nil {
		s.done()
		return ID{}, "", fmt.Errorf("attach: write upload record: %w", err)
	}
	if err := s.createData(id, created); err != nil {
		os.Remove(s.recordPath(id))
		s.done()
		return ID{}, "", fmt.Errorf("attach: create upload: %w", err)
	}
	return id, base64.RawURLEncoding.EncodeToString(tok[:]), nil
}

func hashToken(tok []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(tokenContext))
	h.Write(tok)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// writeRecord writes id's record durably: to a temporary file, synced, then
// renamed.
func (s *Store) writeRecord(id ID, rec record) error {
	final := s.recordPath(id)
	tmp := final + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return scrub(err)
	}
	_, err = f.Write(rec.marshal())
	if err == nil {
		err = os.Chtimes(tmp, rec.created, rec.created)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return scrub(err)
	}
	return nil
}

// createData creates id's empty data file and makes both files' names
// durable.
func (s *Store) createData(id ID, created time.Time) error {
	name := s.partialPath(id)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return scrub(err)
	}
	err = os.Chtimes(name, created, created)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(s.partial)
	}
	if err != nil {
		os.Remove(name)
		return scrub(err)
	}
	return nil
}

// readRecord reads id's record.
func (s *Store) readRecord(id ID) (record, error) {
	f, err := openRead(s.recordPath(id))
	if err != nil {
		return record{}, scrub(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return record{}, scrub(err)
	}
	return parseRecord(b)
}

// state returns id's current offset, and whether the upload is complete.
// errGone means that the record exists but neither the data nor the blob
// does.
func (s *Store) state(id ID, rec record) (offset int64, complete bool, err error) {
	fi, err := os.Stat(s.partialPath(id))
	if err == nil {
		if fi.Size() > rec.length {
			return 0, false, errors.New("attach: upload longer than its length")
		}
		return fi.Size(), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return 0, false, scrub(err)
	}
	if _, err := os.Stat(s.blobPath(id)); err == nil {
		return rec.length, true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, false, scrub(err)
	}
	return 0, false, errGone
}

var errGone = errors.New("attach: upload removed")

// finish makes the complete upload id a blob: its data (already synced) is
// renamed into Dir, and that name made durable.
func (s *Store) finish(id ID) error {
	if err := os.Rename(s.partialPath(id), s.blobPath(id)); err != nil {
		return scrub(err)
	}
	s.done()
	s.blobsStored.Inc()
	return scrub(syncDir(s.dir))
}

// Expire deletes the complete blobs past the retention period and the
// unfinished uploads older than MaxPartialAge, as of now, and returns how
// many of those it deleted. It also drops the records of completed uploads
// after MaxPartialAge. It carries on past errors and returns them joined.
func (s *Store) Expire(now time.Time) (int, error) {
	n1, err1 := s.expireBlobs(now)
	n2, err2 := s.expireUploads(now)
	return n1 + n2, errors.Join(err1, err2)
}

func (s *Store) expireBlobs(now time.Time) (int, error) {
	n := 0
	err := s.eachEntry(s.dir, func(e fs.DirEntry) error {
		id, err := ParseID(e.Name())
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return scrub(err)
		}
		if now.Before(day(fi.ModTime()).Add(24*time.Hour + s.cfg.Retention)) {
			return nil
		}
		if err := os.Remove(s.blobPath(id)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return scrub(err)
		}
		n++
		s.blobsExpired.Inc()
		return nil
	})
	return n, err
}

func (s *Store) expireUploads(now time.Time) (int, error) {
	n := 0
	stale := func(created time.Time) bool { return !now.Before(day(created).Add(MaxPartialAge)) }
	err := s.eachEntry(s.partial, func(e fs.DirEntry) error {
		name := e.Name()
		var id ID
		var err error
		switch {
		case strings.HasSuffix(name, recordSuffix+tmpSuffix):
			id, err = ParseID(strings.TrimSuffix(name, recordSuffix+tmpSuffix))
		case strings.HasSuffix(name, recordSuffix):
			id, err = ParseID(strings.TrimSuffix(name, recordSuffix))
		default:
			id, err = ParseID(name)
		}
		if err != nil || !e.Type().IsRegular() {
			return nil
		}
		if !s.lock(id) {
			return nil // being written; looked at again next time
		}
		defer s.unlock(id)
		var created time.Time
		rec, err := s.readRecord(id)
		switch {
		case err == nil:
			created = rec.created
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, errBadRecord):
			// A leftover temporary record, data without a record, or a
			// damaged record: judged by the file's own time.
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			} else if err != nil {
				return scrub(err)
			}
			created = fi.ModTime()
		default:
			return err
		}
		if !stale(created) {
			return nil
		}
		var errs []error
		switch err := os.Remove(s.partialPath(id)); {
		case err == nil:
			s.done()
			s.uploadsExpired.Inc()
			n++
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, scrub(err))
		}
		for _, name := range []string{s.recordPath(id), s.recordPath(id) + tmpSuffix} {
			if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, scrub(err))
			}
		}
		return errors.Join(errs...)
	})
	return n, err
}

// Run calls Expire now and every ExpireInterval until ctx is done, logging
// its errors.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(ExpireInterval)
	defer t.Stop()
	for {
		n, err := s.Expire(s.cfg.Now())
		if err != nil {
			s.log.Error("expire attachments", "err", err)
		}
		if n > 0 {
			s.log.Debug("expired attachments", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// syncDir makes the names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// scrub drops file names from a file-system error: names carry attachment
// ids, which must not reach logs (see # Privacy). The causes stay matchable
// with errors.Is.
func scrub(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch e := err.(type) {
	case nil:
		return nil
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		out := make([]error, len(errs))
		for i, err := range errs {
			out[i] = scrub(err)
		}
		return errors.Join(out...)
	}
	switch {
	case errors.As(err, &pe):
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	case errors.As(err, &le):
		return fmt.Errorf("%s: %w", le.Op, le.Err)
	}
	return err
}
