package server

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
)

// redacted replaces an address in a log record.
const redacted = "[addr]"

// redactor is a slog.Handler in front of the server's own. It replaces
// every IP address, with or without a port, in a record's message and in
// its string, error and net.Addr attributes with "[addr]", except the
// server's configured addresses (its listen address, its PostgreSQL
// servers), so that no client's address reaches the log (DESIGN.md, P4)
// whichever component wrote the line: net/http logs TLS handshake
// failures "from" the client's address and port, and a *net.OpError
// names both ends of a connection. Attributes of other types are passed
// on as they are. It is safe for concurrent use.
type redactor struct {
	next slog.Handler
	keep *atomic.Pointer[[]string] // shared with the handlers derived by WithAttrs and WithGroup
}

// newRedactor wraps next, keeping the addresses in keep (host:port, as
// net.JoinHostPort writes them).
func newRedactor(next slog.Handler, keep []string) *redactor {
	r := &redactor{next: next, keep: &atomic.Pointer[[]string]{}}
	r.keep.Store(&keep)
	return r
}

// Keep adds addresses to those left in the log.
func (r *redactor) Keep(addrs ...string) {
	for {
		old := r.keep.Load()
		k := append(slices.Clone(*old), addrs...)
		if r.keep.CompareAndSwap(old, &k) {
			return
		}
	}
}

func (r *redactor) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r *redactor) Handle(ctx context.Context, rec slog.Record) error {
	keep := *r.keep.Load()
	out := slog.NewRecord(rec.Time, rec.Level, redactAddrs(rec.Message, keep), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a, keep))
		return true
	})
	return r.next.Handle(ctx, out)
}

func (r *redactor) WithAttrs(as []slog.Attr) slog.Handler {
	keep := *r.keep.Load()
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a, keep)
	}
	return &redactor{next: r.next.WithAttrs(red), keep: r.keep}
}

func (r *redactor) WithGroup(name string) slog.Handler {
	return &redactor{next: r.next.WithGroup(name), keep: r.keep}
}

func redactAttr(a slog.Attr, keep []string) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redactAddrs(v.String(), keep))
	case slog.KindGroup:
		g := v.Group()
		red := make([]slog.Attr, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga, keep)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, redactAddrs(x.Error(), keep))
		case net.Addr:
			return slog.String(a.Key, redactAddrs(x.String(), keep))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// addrChars are the characters an IP address and port are written with
// (IPv6 in brackets); a maximal run of them is a candidate.
var (
	addrRun = regexp.MustCompile(`[0-9A-Fa-f.:\[\]]+`)
	ipv4    = regexp.MustCompile(`\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?`)
)

// redactAddrs replaces the IP addresses in s, with their ports, except
// those in keep.
func redactAddrs(s string, keep []string) string {
	if !strings.ContainsAny(s, ".:") {
		return s
	}
	return addrRun.ReplaceAllStringFunc(s, func(run string) string {
		// A run may end in punctuation ("from 1.2.3.4:5: EOF").
		core := strings.TrimRight(run, ".:")
		tail := run[len(core):]
		if isAddr(core) {
			if slices.Contains(keep, core) {
				return run
			}
			return redacted + tail
		}
		// An IPv4 address inside a longer run ("1.2.3.4:5->6.7.8.9:10"
		// is two runs already; this is for hex-looking neighbours).
		return ipv4.ReplaceAllStringFunc(run, func(m string) string {
			host := m
			if h, _, err := net.SplitHostPort(m); err == nil {
				host = h
			}
			if _, err := netip.ParseAddr(host); err != nil || slices.Contains(keep, m) {
				return m
			}
			return redacted
		})
	})
}

// isAddr reports whether s is an IP address, an IP address and port, or
// a bracketed IPv6 address.
func isAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return true
	}
	return false
}

// postgresAddrs returns the host:port addresses of a postgres:// URL (a
// URL may list several hosts), for the redactor to keep; nil for
// anything else.
func postgresAddrs(u string) []string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") || p.Host == "" {
		return nil
	}
	var out []string
	for h := range strings.SplitSeq(p.Host, ",") {
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), "5432")
		}
		out = append(out, h)
	}
	return out
}
