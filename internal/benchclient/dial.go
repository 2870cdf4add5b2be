// Package benchclient is a small client of sottod for the load tool
// (cmd/sotto-bench) and the crash test (internal/crashtest): it registers
// accounts, links devices, authenticates connections, uploads prekeys,
// fetches bundles, seals real sealed-sender v1 envelopes with the protocol
// packages, sends them, and opens what it receives. It is the logic of
// internal/relay's test helpers, made reusable, with errors instead of
// t.Fatal.
//
// It is not the client package: there is no persistence, no retry beyond
// rate limits, and no multi-device fan-out bookkeeping beyond one Send per
// recipient account; and it can do what the client package never does
// (seal with any certificate, replay an envelope), which tests of hostile
// senders need.
//
// # Loopback only
//
// Every connection is dialed from a chosen loopback source address
// ([Source]): sottod's abuse limits are per source address, and a load test
// that stands for thousands of clients must come from more than one, as
// they would. A Dialer therefore refuses a server that is not on loopback.
package benchclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Limits of the client, each with its reason.
const (
	// MaxRetries bounds how often Do retries a request the server refused
	// with RATE_LIMITED or UNAVAILABLE.
	MaxRetries = 8
	// MaxRetryWait bounds one wait before a retry, whatever the server asks:
	// a benchmark that must wait longer is misconfigured, and should say so.
	MaxRetryWait = 10 * time.Second
	// dialTimeout bounds a TCP connect and WebSocket upgrade.
	dialTimeout = 10 * time.Second
)

// ErrNotLoopback is returned by NewDialer for a server that is not on a
// loopback address.
var ErrNotLoopback = errors.New("benchclient: server is not on a loopback address")

// MaxSources is how many source addresses Source has: 127.0.0.0/8 less the
// addresses with a last octet of 0 or 255, and 127.0.0.1.
const MaxSources = 254*256*256 - 1

// Source returns the i-th loopback source address: 127.0.0.2, 127.0.0.3, …,
// 127.0.0.254, 127.0.1.1, … (never a last octet of 0 or 255, never
// 127.0.0.1, which the server's own clients use). It panics unless
// 0 ≤ i < MaxSources.
func Source(i int) netip.Addr {
	if i < 0 || i >= MaxSources {
		panic(fmt.Sprintf("benchclient: source address %d out of range", i))
	}
	j := i + 1
	return netip.AddrFrom4([4]byte{127, byte(j / (254 * 256) % 256), byte(j / 254 % 256), byte(j%254 + 1)})
}

// Dialer opens WebSocket connections to one sottod. It is safe for
// concurrent use.
type Dialer struct {
	url  string // ws://host:port/v1/websocket
	base string // http://host:port
}

// NewDialer returns a Dialer for server, a ws://, wss://, http:// or
// https:// URL of a sottod on a loopback address; a URL without a path gets
// /v1/websocket.
func NewDialer(server string) (*Dialer, error) {
	u, err := wsclient.URL(server)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	if host != "localhost" {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Unmap().IsLoopback() || !a.Unmap().Is4() {
			return nil, fmt.Errorf("%w: %q (want 127.0.0.0/8)", ErrNotLoopback, host)
		}
	}
	base := *u
	base.Scheme = map[string]string{"ws": "http", "wss": "https"}[u.Scheme]
	base.Path, base.RawQuery = "", ""
	return &Dialer{url: u.String(), base: base.String()}, nil
}

// URL returns the WebSocket URL the dialer connects to.
func (d *Dialer) URL() string { return d.url }

// HTTPClient returns an HTTP client whose connections come from source.
func (d *Dialer) HTTPClient(source netip.Addr) *http.Client {
	nd := &net.Dialer{Timeout: dialTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(source, 0))}
	return &http.Client{Transport: &http.Transport{
		Proxy:              nil, // loopback: never a proxy
		DialContext:        nd.DialContext,
		DisableCompression: true,
		DisableKeepAlives:  true,
	}}
}

// Dial opens a WebSocket connection from source.
func (d *Dialer) Dial(ctx context.Context, source netip.Addr) (*wsclient.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	nd := &net.Dialer{Timeout: dialTimeout, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(source, 0))}
	c, err := wsclient.Dial(ctx, d.url, &wsclient.Options{NetDial: nd.DialContext})
	if err != nil {
		return nil, fmt.Errorf("from %v: %w", source, err)
	}
	return c, nil
}

// Get fetches path (e.g. "/metrics") from the server over plain HTTP and
// returns the body, at most 4 MiB.
func (d *Dialer) Get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.HTTPClient(Source(0)).Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("get %s: %s", path, resp.Status)
	}
	return b, nil
}

// Do sends body on c and waits for the response, retrying (at most
// MaxRetries times) a request the server refused with RATE_LIMITED or
// UNAVAILABLE after the wait it asked for. Other failures are returned as
// they are (a *wsclient.StatusError for a status other than OK). retried
// counts the retries, if not nil.
func Do(ctx context.Context, c *wsclient.Conn, body proto.Message, retried *int) (*wirepb.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.Do(ctx, body)
		wait, again := retryAfter(err, attempt)
		if !again {
			return resp, err
		}
		if retried != nil {
			*retried++
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// Start is Do without waiting: done gets the outcome once, with the number
// of retries, on c's reader goroutine or a timer's (so it must not block).
// It is how the load tool keeps many requests in flight without a
// goroutine each. Start returns an error, and done is not called, if the
// first attempt cannot be sent.
func Start(ctx context.Context, c *wsclient.Conn, body proto.Message, done func(resp *wirepb.Response, retried int, err error)) error {
	return c.Start(ctx, body, retrying(ctx, c, body, 0, done))
}

// StartBatch is Start for several requests written together (see
// wsclient.Conn.StartBatch): done gets each one's outcome with its index.
func StartBatch(ctx context.Context, c *wsclient.Conn, bodies []proto.Message, done func(i int, resp *wirepb.Response, retried int, err error)) error {
	dones := make([]func(*wirepb.Response, error), len(bodies))
	for i, body := range bodies {
		dones[i] = retrying(ctx, c, body, 0, func(resp *wirepb.Response, retried int, err error) {
			done(i, resp, retried, err)
		})
	}
	return c.StartBatch(ctx, bodies, dones)
}

// retrying returns the callback of attempt n of a Start: it hands the
// outcome to done, or sends the request again after the wait the server
// asked for.
func retrying(ctx context.Context, c *wsclient.Conn, body proto.Message, n int, done func(*wirepb.Response, int, error)) func(*wirepb.Response, error) {
	return func(resp *wirepb.Response, err error) {
		wait, again := retryAfter(err, n)
		if !again {
			done(resp, n, err)
			return
		}
		time.AfterFunc(wait, func() {
			if err := ctx.Err(); err != nil {
				done(nil, n+1, err)
			} else if err := c.Start(ctx, body, retrying(ctx, c, body, n+1, done)); err != nil {
				done(nil, n+1, err)
			}
		})
	}
}

// retryAfter says whether attempt (from 0) of a request that failed with
// err is to be tried again, and after how long.
func retryAfter(err error, attempt int) (time.Duration, bool) {
	var se *wsclient.StatusError
	if err == nil || attempt >= MaxRetries || !errors.As(err, &se) ||
		(se.Code != wirepb.Code_RATE_LIMITED && se.Code != wirepb.Code_UNAVAILABLE) {
		return 0, false
	}
	return min(max(time.Duration(se.Status.GetRetryAfterMs())*time.Millisecond, 10*time.Millisecond), MaxRetryWait), true
}
