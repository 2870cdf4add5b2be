// Package metrics exposes sottod's counters in the Prometheus text format
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// It has no labels at all: a metric is one number for the whole server, so
// /metrics can never carry an account, a device or an address — the
// subpoena test searches it like the database.
package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

var nameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// Registry holds a server's metrics. The zero value is not usable; call New.
type Registry struct {
	mu    sync.Mutex
	items map[string]item
}

type item struct {
	help, kind string
	write      func(w io.Writer, name string)
}

// New returns an empty registry.
func New() *Registry { return &Registry{items: map[string]item{}} }

func (r *Registry) add(name, help, kind string, write func(io.Writer, string)) {
	if !nameRE.MatchString(name) {
		panic("metrics: bad metric name " + name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.items[name]; dup {
		panic("metrics: duplicate metric " + name)
	}
	r.items[name] = item{help: help, kind: kind, write: write}
}

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Counter registers and returns a counter.
func (r *Registry) Counter(name, help string) *Counter {
	c := new(Counter)
	r.add(name, help, "counter", func(w io.Writer, n string) { fmt.Fprintf(w, "%s %d\n", n, c.Value()) })
	return c
}

// Gauge is a value that goes up and down.
type Gauge struct{ v atomic.Int64 }

// Add adds n (which may be negative).
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Set sets the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Value returns the value.
func (g *Gauge) Value() int64 { return g.v.Load() }

// Gauge registers and returns a gauge.
func (r *Registry) Gauge(name, help string) *Gauge {
	g := new(Gauge)
	r.add(name, help, "gauge", func(w io.Writer, n string) { fmt.Fprintf(w, "%s %d\n", n, g.Value()) })
	return g
}

// GaugeFunc registers a gauge read from f at each scrape.
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	r.add(name, help, "gauge", func(w io.Writer, n string) { fmt.Fprintf(w, "%s %s\n", n, formatFloat(f())) })
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // one per bound, plus +Inf
	sum    atomic.Uint64   // float64 bits
	n      atomic.Uint64
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i].Add(1)
	h.n.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Histogram registers a histogram with the given upper bounds (sorted).
func (r *Registry) Histogram(name, help string, bounds []float64) *Histogram {
	if !sort.Float64sAreSorted(bounds) {
		panic("metrics: histogram bounds must be sorted")
	}
	h := &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
	r.add(name, help, "histogram", func(w io.Writer, n string) {
		var cum uint64
		for i, b := range h.bounds {
			cum += h.counts[i].Load()
			fmt.Fprintf(w, "%s_bucket{le=%q} %d\n", n, formatFloat(b), cum)
		}
		cum += h.counts[len(h.bounds)].Load()
		fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n", n, cum)
		fmt.Fprintf(w, "%s_sum %s\n%s_count %d\n", n, formatFloat(math.Float64frombits(h.sum.Load())), n, h.n.Load())
	})
	return h
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Write writes every metric in the text exposition format, sorted by name.
func (r *Registry) Write(w io.Writer) {
	r.mu.Lock()
	names := make([]string, 0, len(r.items))
	for n := range r.items {
		names = append(names, n)
	}
	items := r.items
	r.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		it := items[n]
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", n, it.help, n, it.kind)
		it.write(w, n)
	}
}

// ServeHTTP serves /metrics.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	r.Write(w)
}
