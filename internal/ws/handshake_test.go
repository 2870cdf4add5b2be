package ws

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAcceptKeyRFCExample(t *testing.T) {
	// RFC 6455 section 1.3: base64(SHA-1(key + GUID)) =
	// base64(b37a4f2c c0624f16 90f64606 cf385945 b2bec4ea).
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("got %q", got)
	}
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// handshakeRequest returns a valid opening handshake for host.
func handshakeRequest(host string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://"+host+"/v1/websocket", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", testKey)
	return r
}

func TestUpgradeRefusals(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(r *http.Request)
		opts   UpgradeOptions
		status int
		header [2]string // a header the refusal carries
	}{
		{"POST", func(r *http.Request) { r.Method = http.MethodPost }, UpgradeOptions{}, 405, [2]string{"Allow", "GET"}},
		{"HTTP/1.0", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 }, UpgradeOptions{}, 505, [2]string{}},
		{"HTTP/2", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0 }, UpgradeOptions{}, 505, [2]string{}},
		{"no Connection", func(r *http.Request) { r.Header.Del("Connection") }, UpgradeOptions{}, 426, [2]string{"Upgrade", "websocket"}},
		{"Connection without upgrade", func(r *http.Request) { r.Header.Set("Connection", "keep-alive") }, UpgradeOptions{}, 426, [2]string{"Upgrade", "websocket"}},
		{"Connection upgraded", func(r *http.Request) { r.Header.Set("Connection", "upgraded") }, UpgradeOptions{}, 426, [2]string{}},
		{"no Upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, UpgradeOptions{}, 426, [2]string{"Upgrade", "websocket"}},
		{"Upgrade h2c", func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }, UpgradeOptions{}, 426, [2]string{}},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, UpgradeOptions{}, 426, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no version", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") }, UpgradeOptions{}, 426, [2]string{"Sec-WebSocket-Version", "13"}},
		{"two versions", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Version", "13") }, UpgradeOptions{}, 426, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, UpgradeOptions{}, 400, [2]string{}},
		{"two keys", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", testKey) }, UpgradeOptions{}, 400, [2]string{}},
		{"key of 15 bytes", func(r *http.Request) {
			r.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 15)))
		}, UpgradeOptions{}, 400, [2]string{}},
		{"key of 17 bytes", func(r *http.Request) {
			r.Header.Set("Sec-WebSocket-Key", base64.StdEncoding.EncodeToString(make([]byte, 17)))
		}, UpgradeOptions{}, 400, [2]string{}},
		{"key not base64", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "!!!!!!!!!!!!!!!!!!!!!!==") }, UpgradeOptions{}, 400, [2]string{}},
		{"body", func(r *http.Request) { r.ContentLength = 5 }, UpgradeOptions{}, 400, [2]string{}},
		{"foreign origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, UpgradeOptions{}, 403, [2]string{}},
		{"origin null", func(r *http.Request) { r.Header.Set("Origin", "null") }, UpgradeOptions{}, 403, [2]string{}},
		{"two origins", func(r *http.Request) {
			r.Header.Add("Origin", "http://example.com")
			r.Header.Add("Origin", "http://example.com")
		}, UpgradeOptions{}, 403, [2]string{}},
		{"origin of another port", func(r *http.Request) { r.Header.Set("Origin", "http://example.com:8080") }, UpgradeOptions{}, 403, [2]string{}},
		{"origin not matching a pattern", func(r *http.Request) { r.Header.Set("Origin", "https://a.example.org") },
			UpgradeOptions{OriginPatterns: []string{"*.example.net", "https://b.example.org"}}, 403, [2]string{}},
		{"bad origin pattern", func(r *http.Request) { r.Header.Set("Origin", "https://a.example.org") },
			UpgradeOptions{OriginPatterns: []string{"[a-"}}, 500, [2]string{}},
		{"not hijackable (a valid request)", func(*http.Request) {}, UpgradeOptions{}, 500, [2]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := handshakeRequest("example.com")
			tt.edit(r)
			w := httptest.NewRecorder()
			nc, buffered, err := Upgrade(w, r, tt.opts)
			if nc != nil || buffered != nil {
				t.Fatal("a refused handshake returned a connection")
			}
			var he *HandshakeError
			if !errors.As(err, &he) || he.Status != tt.status || w.Code != tt.status {
				t.Fatalf("got %v, answered %d; want %d", err, w.Code, tt.status)
			}
			if tt.header[0] != "" && w.Header().Get(tt.header[0]) != tt.header[1] {
				t.Fatalf("%s: %q, want %q", tt.header[0], w.Header().Get(tt.header[0]), tt.header[1])
			}
			if tt.name == "bad origin pattern" && !errors.Is(err, path.ErrBadPattern) {
				t.Fatalf("bad pattern error does not wrap path.ErrBadPattern: %v", err)
			}
		})
	}
}

func TestCheckRequestOrigins(t *testing.T) {
	patterns := []string{"*.trusted.example", "https://app.example.org", "HTTP://Legacy.Example.org:8080"}
	tests := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://example.com", true},
		{"https://EXAMPLE.com", true},       // same host, any scheme, any case
		{"http://example.com:8080", false},  // another port is another host
		{"https://evil.example", false},     // foreign
		{"https://a.trusted.example", true}, // host glob
		{"http://B.Trusted.Example", true},  // host glob, any scheme, any case
		{"https://trusted.example", false},  // the glob needs a subdomain
		{"https://a.trusted.example:444", false},
		{"https://app.example.org", true}, // scheme://host pattern
		{"http://app.example.org", false}, // wrong scheme
		{"https://app.example.org:443", false},
		{"http://legacy.example.org:8080", true},
		{"https://legacy.example.org:8080", false},
		{"null", false},
		{"file://", false},
		{"%zz", false},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			r := handshakeRequest("example.com")
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			key, err := checkRequest(http.Header{}, r, UpgradeOptions{OriginPatterns: patterns})
			switch {
			case tt.ok && (err != nil || key != testKey):
				t.Fatalf("refused: %v", err)
			case !tt.ok && (err == nil || err.Status != http.StatusForbidden):
				t.Fatalf("got %v, want 403", err)
			}
		})
	}
}

// upgradeServer starts an HTTP server whose handler upgrades with opts and
// passes the connection to handle, and returns its address.
func upgradeServer(t *testing.T, srv *http.Server, opts UpgradeOptions, handle func(nc net.Conn, buffered []byte)) string {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "set before Upgrade")
		nc, buffered, err := Upgrade(w, r, opts)
		if err != nil {
			return
		}
		defer nc.Close()
		handle(nc, buffered)
	}))
	if srv != nil {
		s.Config.ReadTimeout = srv.ReadTimeout
		s.Config.WriteTimeout = srv.WriteTimeout
	}
	s.Start()
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// rawHandshake writes an opening handshake, and anything in extra, in one
// write, reads the response header, and returns it with a reader of what
// follows.
func rawHandshake(t *testing.T, addr, origin string, extra []byte) (*http.Response, *bufio.Reader, net.Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET /v1/websocket HTTP/1.1\r\nHost: " + addr + "\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	if _, err := nc.Write(append([]byte(req+"\r\n"), extra...)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp, br, nc
}

func TestUpgradePipelinedFrames(t *testing.T) {
	type result struct {
		msgs     []msg
		buffered int
	}
	got := make(chan result, 1)
	addr := upgradeServer(t, nil, UpgradeOptions{}, func(nc net.Conn, buffered []byte) {
		p := NewParser(Server, 1<<10)
		var msgs []msg
		err := p.Feed(buffered, collect(&msgs))
		if err == nil {
			_, err = nc.Write(AppendFrame(nil, OpText, []byte("hello"), nil))
		}
		if err != nil {
			t.Error(err)
		}
		got <- result{msgs, len(buffered)}
		io.Copy(io.Discard, nc) // until the client closes
	})
	first := cat(frame(Server, OpBinary, true, "first"), frame(Server, OpPing, true, "p"))
	resp, br, _ := rawHandshake(t, addr, "", first)
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		!strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	if resp.Header.Get("Sec-WebSocket-Extensions") != "" {
		t.Fatal("an extension was negotiated")
	}
	if resp.Header.Get("X-Handler") != "set before Upgrade" {
		t.Fatalf("headers set on the ResponseWriter are missing: %v", resp.Header)
	}
	r := <-got
	if want := []msg{{OpBinary, "first"}, {OpPing, "p"}}; !reflect.DeepEqual(r.msgs, want) || r.buffered != len(first) {
		t.Fatalf("buffered %d bytes holding %v, want %v", r.buffered, r.msgs, want)
	}
	b := make([]byte, 7)
	if _, err := io.ReadFull(br, b); err != nil || !bytes.Equal(b, AppendFrame(nil, OpText, []byte("hello"), nil)) {
		t.Fatalf("read %x, %v", b, err)
	}
}

func TestUpgradeOriginsOverTCP(t *testing.T) {
	addr := upgradeServer(t, nil, UpgradeOptions{OriginPatterns: []string{"*.example.org"}}, func(net.Conn, []byte) {})
	for _, tt := range []struct {
		origin string
		status int
	}{
		{"", 101},
		{"http://" + addr, 101},
		{"https://app.example.org", 101},
		{"https://evil.example", 403},
	} {
		resp, _, _ := rawHandshake(t, addr, tt.origin, nil)
		if resp.StatusCode != tt.status {
			t.Errorf("Origin %q: %d, want %d", tt.origin, resp.StatusCode, tt.status)
		}
	}
}

func TestUpgradeClearsServerTimeouts(t *testing.T) {
	const timeout = 50 * time.Millisecond
	got := make(chan error, 1)
	addr := upgradeServer(t, &http.Server{ReadTimeout: timeout, WriteTimeout: timeout}, UpgradeOptions{}, func(nc net.Conn, _ []byte) {
		b := make([]byte, 64)
		_, err := nc.Read(b) // the client writes after the server's timeouts
		if err == nil {
			_, err = nc.Write([]byte{0x8A, 0})
		}
		got <- err
	})
	_, br, nc := rawHandshake(t, addr, "", nil)
	time.Sleep(4 * timeout)
	if _, err := nc.Write(frame(Server, OpPing, true, "")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("server side after the HTTP timeouts: %v", err)
	}
	if b, err := br.ReadByte(); err != nil || b != 0x8A {
		t.Fatalf("read %x, %v", b, err)
	}
}

// FuzzHandshake checks that checkRequest never panics on any request that
// net/http parses, refuses only with the statuses Upgrade documents, and
// accepts only a GET with a 16-byte key.
func FuzzHandshake(f *testing.F) {
	base := "GET /v1/websocket HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + testKey + "\r\n"
	f.Add([]byte(base + "\r\n"))
	f.Add([]byte(base + "Origin: https://a.example.org\r\n\r\n"))
	f.Add([]byte(base + "Origin: http://example.com\r\n\r\n"))
	f.Add([]byte(base + "Origin: https://app.example.net\r\n\r\n"))
	f.Add([]byte(base + "Origin: null\r\nSec-WebSocket-Key: x\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.0\r\nConnection: upgrade, close\r\nContent-Length: 3\r\n\r\nabc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		opts := UpgradeOptions{OriginPatterns: []string{"*.example.org", "https://app.example.net"}}
		key, herr := checkRequest(http.Header{}, r, opts)
		if herr != nil {
			switch herr.Status {
			case 400, 403, 405, 426, 505:
			default:
				t.Fatalf("status %d", herr.Status)
			}
			return
		}
		if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 || r.Method != http.MethodGet {
			t.Fatalf("accepted %s with key %q", r.Method, key)
		}
	})
}
