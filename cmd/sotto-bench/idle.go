package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sotto-chat/sotto/internal/benchclient"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Shape of the idle scenario, each with its reason.
const (
	// connsPerSource is how many idle connections share a source address:
	// one address has about 28,000 ephemeral ports towards one server
	// port; 1,000 stays far from that.
	connsPerSource = 1000
	// linksPerSource is how many devices are linked over one anonymous
	// connection before the next comes from a fresh source address:
	// sottod's registration bucket holds 10 per source.
	linksPerSource = 8
	// linkWorkers and openWorkers bound the devices linked, and the
	// connections opened, at once.
	linkWorkers = 8
	openWorkers = 32
	// fdMargin is what the tool needs besides one descriptor per
	// connection (stdio, the linking connections, the runtime's).
	fdMargin = 64
	// rssSamples bounds how many readings a settled memory reading takes;
	// it stops early once two in a row agree within 0.5%.
	rssSamples  = 20
	rssInterval = 500 * time.Millisecond
	// drainWait bounds the wait for the server to see the setup
	// connections closed.
	drainWait = 10 * time.Second
)

// idle runs the idle scenario.
func (b *bench) idle(ctx context.Context) (*result, error) {
	o := b.opts
	need := uint64(o.Conns + fdMargin)
	have, err := raiseOpenFiles(need)
	if err != nil {
		return nil, err
	}
	if have < need {
		return nil, fmt.Errorf("%d connections need %d open files; this process may have %d (the hard limit, ulimit -Hn)", o.Conns, need, have)
	}
	pid := o.ServerPID
	if pid == 0 {
		if pid, err = b.findServer(); err != nil {
			return nil, err
		}
	}
	if lim, err := openFilesLimit(pid); err == nil && lim < need {
		b.progress("warning: the server (pid %d) may open only %d files, fewer than %d connections need", pid, lim, need)
	}
	accounts := (o.Conns + o.Devices - 1) / o.Devices
	res := &result{Conns: o.Conns, Accounts: accounts, ServerPID: pid}

	b.progress("registering %d accounts", accounts)
	primaries := make([]*benchclient.Device, accounts)
	primaryConns := make([]*wsclient.Conn, accounts)
	defer closeAll(primaryConns)
	err = parallel(ctx, accounts, setupWorkers, func(ctx context.Context, i int) error {
		d, err := benchclient.Register(ctx, b.dialer, b.source())
		if err != nil {
			return err
		}
		c, err := d.Connect(ctx, b.dialer)
		if err != nil {
			return err
		}
		primaries[i], primaryConns[i] = d, c
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Device j is device j%Devices+1 of account j/Devices; its connection
	// comes from source connBase + j/connsPerSource.
	connBase := int(b.next.Add(int64(o.Conns/connsPerSource+1))) - (o.Conns/connsPerSource + 1)
	connSource := func(j int) int { return connBase + j/connsPerSource }
	devices := make([]*benchclient.Device, o.Conns)
	var links []int
	for j := range devices {
		if j%o.Devices == 0 {
			devices[j] = primaries[j/o.Devices]
		} else {
			links = append(links, j)
		}
	}
	b.progress("linking %d devices", len(links))
	if err := b.link(ctx, links, primaries, primaryConns, devices, connSource); err != nil {
		return nil, err
	}
	closeAll(primaryConns)
	clear(primaryConns)
	if err := b.awaitServerConns(ctx, 0); err != nil {
		b.progress("warning: %v", err)
	}

	before, err := b.settledRSS(ctx, pid)
	if err != nil {
		return nil, err
	}
	res.RSSBeforeKB = ptr(before)
	b.progress("server RSS %d kB; opening %d authenticated connections", before, o.Conns)
	conns := make([]*wsclient.Conn, o.Conns)
	defer closeAll(conns)
	var opened atomic.Int64
	err = parallel(ctx, o.Conns, openWorkers, func(ctx context.Context, j int) error {
		d := devices[j]
		c, err := b.dialer.Dial(ctx, benchclient.Source(connSource(j)))
		if err != nil {
			return fmt.Errorf("connection %d: %w", j, err)
		}
		conns[j] = c
		if err := d.Authenticate(ctx, c); err != nil {
			return fmt.Errorf("connection %d: %w", j, err)
		}
		if n := opened.Add(1); n%5000 == 0 {
			b.progress("%d connections open", n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if m, err := b.dialer.Get(ctx, "/metrics"); err == nil {
		if v, ok := metric(m, "sotto_websocket_connections"); ok {
			res.ServerConns = ptr(v)
		}
		if v, ok := metric(m, "sotto_websocket_authenticated"); ok {
			res.ServerAuthed = ptr(v)
		}
	}
	after, err := b.settledRSS(ctx, pid)
	if err != nil {
		return nil, err
	}
	res.RSSAfterKB = ptr(after)
	res.RSSPerConnKB = ptr(float64(after-before) / float64(o.Conns))
	b.progress("server RSS %d kB with %d idle connections", after, o.Conns)
	return res, nil
}

// findServer returns the process listening on the server's port.
func (b *bench) findServer() (int, error) {
	u, err := url.Parse(b.dialer.URL())
	if err != nil {
		return 0, err
	}
	p := u.Port()
	if p == "" {
		p = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return 0, fmt.Errorf("server port: %w", err)
	}
	return findListener(port)
}

// link links the devices of indexes js (device j is device j%Devices+1 of
// account j/Devices), one account per worker at a time (sottod
// gives a new device the next free id, so concurrent links to one account
// would collide), linkWorkers accounts at once. A worker sends LinkDevice
// over an anonymous connection that it replaces every linksPerSource links.
func (b *bench) link(ctx context.Context, js []int, primaries []*benchclient.Device, primaryConns []*wsclient.Conn,
	devices []*benchclient.Device, connSource func(int) int) error {
	byAccount := make([][]int, len(primaries))
	for _, j := range js {
		a := j / b.opts.Devices
		byAccount[a] = append(byAccount[a], j)
	}
	var done atomic.Int64
	return parallel(ctx, len(primaries), linkWorkers, func(ctx context.Context, a int) error {
		var anon *wsclient.Conn
		defer func() {
			if anon != nil {
				anon.Close()
			}
		}()
		for k, j := range byAccount[a] {
			if k%linksPerSource == 0 {
				if anon != nil {
					anon.Close()
				}
				var err error
				if anon, err = b.dialer.Dial(ctx, b.source()); err != nil {
					return err
				}
			}
			d, err := primaries[a].Link(ctx, primaryConns[a], anon, benchclient.Source(connSource(j)))
			if err != nil {
				return fmt.Errorf("link device %d of account %d: %w", j%b.opts.Devices+1, a, err)
			}
			devices[j] = d
			if n := done.Add(1); n%5000 == 0 {
				b.progress("%d devices linked", n)
			}
		}
		return nil
	})
}

// awaitServerConns waits until the server's open-connection gauge is n.
func (b *bench) awaitServerConns(ctx context.Context, n int64) error {
	deadline := time.Now().Add(drainWait)
	var last int64 = -1
	for time.Now().Before(deadline) {
		m, err := b.dialer.Get(ctx, "/metrics")
		if err != nil {
			return err
		}
		if v, ok := metric(m, "sotto_websocket_connections"); ok {
			if v == n {
				return nil
			}
			last = v
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("server still counts %d connections, want %d", last, n)
}

// settledRSS waits -settle, then reads the server's RSS until two readings
// in a row agree within 0.5% (at most rssSamples readings).
func (b *bench) settledRSS(ctx context.Context, pid int) (int64, error) {
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(b.opts.Settle):
	}
	prev, err := rssKB(pid)
	if err != nil {
		return 0, err
	}
	for range rssSamples {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(rssInterval):
		}
		v, err := rssKB(pid)
		if err != nil {
			return 0, err
		}
		if d := v - prev; d*200 <= v && -d*200 <= v {
			return v, nil
		}
		prev = v
	}
	return prev, nil
}
