package ws

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// handshakeWriteTimeout bounds the write of the 101 response, a few hundred
// bytes that fit in any socket buffer: only a peer that stopped reading
// before its handshake completed makes it wait.
const handshakeWriteTimeout = 10 * time.Second

// acceptGUID is the GUID RFC 6455 section 1.3 appends to the client's key.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value that answers the
// Sec-WebSocket-Key value key: base64(SHA-1(key + GUID)).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// UpgradeOptions configure [Upgrade].
type UpgradeOptions struct {
	// OriginPatterns are the origins allowed besides the request's own
	// host. A pattern without "://" is a glob (path.Match) matched
	// against the origin's host (with its port, if any), like
	// "*.example.com"; a pattern with "://" is matched against the
	// origin's scheme and host, like "https://app.example.com". Matching
	// is case-insensitive.
	OriginPatterns []string
}

// HandshakeError is a refused opening handshake: the HTTP status [Upgrade]
// answered, or the status of the response [Dial] got.
type HandshakeError struct {
	Status int    // HTTP status code
	Reason string // what was wrong
	Err    error  // the cause, if any (path.ErrBadPattern for a bad origin pattern)
}

func (e *HandshakeError) Error() string {
	s := "ws: handshake: " + strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Upgrade answers a WebSocket opening handshake (RFC 6455 section 4.2). It
// checks the request: a GET over HTTP/1.1, without a body, with
// "Connection: upgrade", "Upgrade: websocket", Sec-WebSocket-Version 13
// and a Sec-WebSocket-Key of 16 bytes, from an allowed origin (see
// [UpgradeOptions]; a request without an Origin header, from a non-browser
// client, is allowed). Otherwise it answers with an error status (405, 505
// for HTTP/2 or HTTP/1.0: WebSocket over HTTP/2 is out of scope, 426, 400,
// 403) and returns a [*HandshakeError].
//
// On success it hijacks the connection, clears its deadlines, writes the
// 101 response (with the headers already set on w) directly to it, and
// returns it with a copy of any bytes the HTTP server had already read
// past the request: a client may send its first frames together with the
// handshake, and the caller must feed them to its [Parser] before reading.
// The caller can drop the HTTP server's bufio buffers; the connection is
// the caller's to close. No extension or subprotocol is ever negotiated.
func Upgrade(w http.ResponseWriter, r *http.Request, opts UpgradeOptions) (net.Conn, []byte, error) {
	key, herr := checkRequest(w.Header(), r, opts)
	if herr != nil {
		http.Error(w, herr.Reason, herr.Status)
		return nil, nil, herr
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		herr := &HandshakeError{Status: http.StatusInternalServerError, Reason: "connection cannot be hijacked", Err: err}
		http.Error(w, herr.Reason, herr.Status)
		return nil, nil, herr
	}
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n) // cannot fail: n bytes are buffered
		buffered = bytes.Clone(b)
	}
	var resp bytes.Buffer
	resp.WriteString("HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + AcceptKey(key) + "\r\n")
	// Headers set on w go along, but not those of the handshake itself
	// (nor any extension or subprotocol).
	extra := w.Header().Clone()
	for _, name := range []string{"Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Extensions",
		"Sec-WebSocket-Protocol", "Content-Length", "Transfer-Encoding"} {
		extra.Del(name)
	}
	if err := extra.Write(&resp); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	resp.WriteString("\r\n")

	// The HTTP server's read and write timeouts are for requests, not
	// for the connection that now carries WebSocket frames.
	_ = nc.SetDeadline(time.Time{})
	_ = nc.SetWriteDeadline(time.Now().Add(handshakeWriteTimeout))
	if _, err := nc.Write(resp.Bytes()); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("ws: write 101 response: %w", err)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	return nc, buffered, nil
}

// checkRequest checks an opening handshake and returns its key, or the
// error to answer with; it sets on h the headers that go with the error.
func checkRequest(h http.Header, r *http.Request, opts UpgradeOptions) (string, *HandshakeError) {
	refuse := func(status int, reason string) (string, *HandshakeError) {
		return "", &HandshakeError{Status: status, Reason: reason}
	}
	if r.Method != http.MethodGet {
		h.Set("Allow", http.MethodGet)
		return refuse(http.StatusMethodNotAllowed, "WebSocket handshake must be a GET")
	}
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return refuse(http.StatusHTTPVersionNotSupported, "WebSocket needs HTTP/1.1")
	}
	if !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket") {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		return refuse(http.StatusUpgradeRequired, `WebSocket handshake needs "Connection: Upgrade" and "Upgrade: websocket"`)
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		h.Set("Sec-WebSocket-Version", "13")
		return refuse(http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version (want 13)")
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return refuse(http.StatusBadRequest, "WebSocket handshake needs one Sec-WebSocket-Key")
	}
	key := strings.TrimSpace(keys[0])
	if k, err := base64.StdEncoding.Strict().DecodeString(key); err != nil || len(k) != 16 || len(key) != 24 {
		return refuse(http.StatusBadRequest, "Sec-WebSocket-Key is not 16 bytes in base64")
	}
	if r.ContentLength != 0 {
		return refuse(http.StatusBadRequest, "WebSocket handshake with a body")
	}
	if err := checkOrigin(r, opts.OriginPatterns); err != nil {
		return "", err
	}
	return key, nil
}

// checkOrigin allows a request without an Origin header, one from the
// request's own host, and one that matches a pattern.
func checkOrigin(r *http.Request, patterns []string) *HandshakeError {
	origins := r.Header.Values("Origin")
	switch len(origins) {
	case 0:
		return nil // not a browser: the Origin check protects browsers' users only
	case 1:
	default:
		return &HandshakeError{Status: http.StatusForbidden, Reason: "more than one Origin"}
	}
	u, err := url.Parse(origins[0])
	if err != nil || u.Host == "" {
		return &HandshakeError{Status: http.StatusForbidden, Reason: "Origin is not a URL with a host"}
	}
	if strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	for _, pat := range patterns {
		target := u.Host
		if strings.Contains(pat, "://") {
			target = u.Scheme + "://" + u.Host
		}
		ok, err := path.Match(strings.ToLower(pat), strings.ToLower(target))
		if err != nil {
			return &HandshakeError{Status: http.StatusInternalServerError, Reason: "bad origin pattern " + strconv.Quote(pat), Err: err}
		}
		if ok {
			return nil
		}
	}
	return &HandshakeError{Status: http.StatusForbidden, Reason: "Origin not allowed"}
}

// hasToken reports whether a comma-separated list in the header name holds
// token, case-insensitively.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
