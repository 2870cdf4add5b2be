package ws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// maxResponseHeader bounds the opening handshake response Dial reads. A
// 101 response is about 150 bytes; 8 KiB leaves room for the headers
// proxies and load balancers add, and keeps a hostile server from making
// the client buffer without end.
const maxResponseHeader = 8 << 10

// DialOptions configure [Dial].
type DialOptions struct {
	// Header is sent with the opening handshake (tests set Origin). The
	// handshake's own headers in it (Host, Connection, Upgrade,
	// Sec-WebSocket-*) are ignored.
	Header http.Header
	// NetDial opens the TCP connection; nil means a net.Dialer's.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is the TLS configuration of wss:// URLs; nil means the
	// defaults. Its ServerName, if empty, is the URL's host.
	TLSConfig *tls.Config
	// MaxMessage is the largest message Read accepts; 0 means
	// DefaultMaxMessage.
	MaxMessage int
}

// Dial opens a WebSocket connection to rawURL (ws:// or wss://) as a
// client. ctx bounds the connection and the opening handshake only. A
// server that refuses the handshake gives a [*HandshakeError] with its
// status. No extension or subprotocol is offered, and a response that
// selects one is refused.
func Dial(ctx context.Context, rawURL string, opts DialOptions) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ws: dial: %w", err)
	}
	var port string
	switch u.Scheme {
	case "ws":
		port = "80"
	case "wss":
		port = "443"
	default:
		return nil, fmt.Errorf("ws: dial %s: scheme is not ws or wss", u.Redacted())
	}
	if u.Host == "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("ws: dial %s: a WebSocket URL has a host, and no fragment or user", u.Redacted())
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	dial := opts.NetDial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ws: dial %s: %w", u.Redacted(), err)
	}
	nc, rest, err := clientHandshake(ctx, nc, u, opts)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("ws: dial %s: %w", u.Redacted(), err)
	}
	return NewConn(nc, rest, Client, opts.MaxMessage), nil
}

// clientHandshake runs TLS for wss://, then the opening handshake (RFC
// 6455 section 4.1) on nc, and returns the connection to use and the bytes
// that followed the response.
func clientHandshake(ctx context.Context, nc net.Conn, u *url.URL, opts DialOptions) (net.Conn, []byte, error) {
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	stop := watch(ctx, func() { _ = nc.SetDeadline(aLongTimeAgo()) })
	conn, rest, err := handshakeOn(ctx, nc, u, opts)
	stop()
	if err != nil {
		if cerr := contextError(ctx, err); cerr != nil {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return nc, nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return conn, rest, nil
}

func handshakeOn(ctx context.Context, nc net.Conn, u *url.URL, opts DialOptions) (net.Conn, []byte, error) {
	conn := nc
	if u.Scheme == "wss" {
		cfg := opts.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"} // never h2: WebSocket over HTTP/2 is another protocol
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		conn = tc
	}
	var k [16]byte
	rand.Read(k[:]) // never fails
	key := base64.StdEncoding.EncodeToString(k[:])
	if _, err := conn.Write(handshakeRequestBytes(u, key, opts.Header)); err != nil {
		return nil, nil, fmt.Errorf("write handshake: %w", err)
	}
	rest, err := readResponse(conn, key)
	if err != nil {
		return nil, nil, err
	}
	return conn, rest, nil
}

// handshakeRequestBytes returns the opening handshake for u with key.
func handshakeRequestBytes(u *url.URL, key string, header http.Header) []byte {
	var b bytes.Buffer
	b.WriteString("GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n")
	h := header.Clone()
	for _, name := range []string{"Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
		"Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol", "Content-Length", "Transfer-Encoding"} {
		h.Del(name)
	}
	if err := h.Write(&b); err != nil {
		panic(err) // a bytes.Buffer does not fail
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// readResponse reads the response to an opening handshake with key from r,
// reading at most maxResponseHeader bytes before its end, checks it, and
// returns a copy of the bytes read past it (the server's first frames).
func readResponse(r io.Reader, key string) ([]byte, error) {
	buf := make([]byte, 0, maxResponseHeader)
	end := -1
	for end < 0 {
		if len(buf) == cap(buf) {
			return nil, fmt.Errorf("handshake response header over %d bytes", maxResponseHeader)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		from := max(0, len(buf)-3)
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf[from:], []byte("\r\n\r\n")); i >= 0 {
			end = from + i + 4
			break
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read handshake response: %w", err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf[:end])), nil)
	if err != nil {
		return nil, fmt.Errorf("read handshake response: %w", err)
	}
	resp.Body.Close()
	refuse := func(reason string) ([]byte, error) {
		return nil, &HandshakeError{Status: resp.StatusCode, Reason: reason}
	}
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return refuse("server did not switch to WebSocket")
	case resp.ProtoMajor != 1 || resp.ProtoMinor < 1:
		return refuse("response is not HTTP/1.1")
	case !hasToken(resp.Header, "Upgrade", "websocket") || !hasToken(resp.Header, "Connection", "upgrade"):
		return refuse(`response lacks "Connection: Upgrade" or "Upgrade: websocket"`)
	case len(resp.Header.Values("Sec-WebSocket-Accept")) != 1 || resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key):
		return refuse("wrong Sec-WebSocket-Accept")
	case len(resp.Header.Values("Sec-WebSocket-Extensions")) != 0:
		return refuse("server selected an extension, and none was offered")
	case len(resp.Header.Values("Sec-WebSocket-Protocol")) != 0:
		return refuse("server selected a subprotocol, and none was offered")
	}
	if end == len(buf) {
		return nil, nil
	}
	return bytes.Clone(buf[end:]), nil
}
