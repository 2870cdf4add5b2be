package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// The attack's shape, each with its reason.
const (
	// slowSockets is the count of attacking connections.
	slowSockets = 1_000
	// dribbleEvery: each attacking socket sends one more byte of its
	// headers this often, well inside any per-read timeout.
	dribbleEvery = 500 * time.Millisecond
	// honestP99 is the latency an honest client must keep meanwhile.
	honestP99 = 200 * time.Millisecond
	// honestRounds: each round opens a WebSocket and makes one request,
	// one round every honestEvery, so that they span most of the attack.
	honestRounds = 200
	honestEvery  = 40 * time.Millisecond
	// closeGrace is how long after the header timeout every attacking
	// connection must be closed: accepts lag dials on a loaded machine.
	closeGrace = 5 * time.Second
)

// TestSlowloris: 1,000 connections dribble their request headers a byte
// at a time. An honest client meanwhile connects and makes requests with
// p99 under 200 ms, and the server closes every dribbling connection once
// readHeaderTimeout has passed.
func TestSlowloris(t *testing.T) {
	raiseFileLimit(t, 2*slowSockets+500) // both ends live in this process
	_, base, _ := start(t)
	addr := strings.TrimPrefix(base, "http://")

	socks := make([]net.Conn, 0, slowSockets)
	t.Cleanup(func() {
		for _, c := range socks {
			c.Close()
		}
	})
	for range slowSockets {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("attacking connection %d: %v", len(socks), err)
		}
		if _, err := io.WriteString(c, "GET /v1/websocket HTTP/1.1\r\nHost: "+addr+"\r\n"); err != nil {
			t.Fatal(err)
		}
		socks = append(socks, c)
	}
	attackStart := time.Now()
	ctx, stop := context.WithCancel(context.Background())
	dribbled := make(chan struct{})
	go func() { // one goroutine feeds every socket: "X-a: b\r\n" forever, a byte at a time
		defer close(dribbled)
		pattern := "X-Slow: a\r\n"
		t := time.NewTicker(dribbleEvery)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, c := range socks {
				c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				c.Write([]byte{pattern[i%len(pattern)]}) // errors: closed by the server, as it should
			}
		}
	}()

	lat := make([]time.Duration, 0, honestRounds)
	pace := time.NewTicker(honestEvery)
	defer pace.Stop()
	for range honestRounds {
		<-pace.C
		t0 := time.Now()
		c, err := wsclient.Dial(context.Background(), "ws://"+addr+"/v1/websocket", nil)
		if err != nil {
			t.Fatalf("an honest client could not connect during the attack: %v", err)
		}
		if _, err := c.Do(context.Background(), &wirepb.GetChallenge{}); err != nil {
			t.Fatalf("an honest request failed during the attack: %v", err)
		}
		lat = append(lat, time.Since(t0))
		c.Close()
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("honest connect + request during the attack: p50 %v, p99 %v, max %v", lat[len(lat)/2], p99, lat[len(lat)-1])
	if p99 > honestP99 {
		t.Errorf("honest p99 %v during the attack, want under %v", p99, honestP99)
	}

	// Past the header timeout (counted from each accept, which can lag
	// the dial on a busy machine) every dribbling connection is gone: a
	// read sees the server's close.
	time.Sleep(time.Until(attackStart.Add(readHeaderTimeout + closeGrace)))
	stop()
	<-dribbled
	var open atomic.Int32
	var reads sync.WaitGroup
	for _, c := range socks {
		reads.Go(func() {
			c.SetReadDeadline(time.Now().Add(closeGrace))
			_, err := io.ReadAll(c) // the server may answer 408 before closing
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open.Add(1)
			}
		})
	}
	reads.Wait()
	testkit.Summary(t, fmt.Sprintf("slowloris: %d dribbling sockets, %d still open after the header timeout; an honest client's p99 %v",
		slowSockets, open.Load(), p99.Round(time.Millisecond/10)))
	if open := open.Load(); open > 0 {
		t.Fatalf("%d of %d dribbling connections still open %v after the header timeout", open, slowSockets, time.Since(attackStart)-readHeaderTimeout)
	}
}

// raiseFileLimit raises the soft limit on open files to at least n, or
// fails the test saying why.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("this test needs %d open files; the hard limit is %d (raise it: ulimit -Hn)", n, lim.Max)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
}
