package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	r := New()
	c := r.Counter("sotto_envelopes_total", "Envelopes stored.")
	g := r.Gauge("sotto_connections", "Open connections.")
	r.GaugeFunc("sotto_pending", "Pending.", func() float64 { return 2.5 })
	h := r.Histogram("sotto_send_seconds", "Send latency.", []float64{0.001, 0.01})
	c.Add(3)
	g.Set(7)
	h.Observe(0.0005)
	h.Observe(0.005)
	h.Observe(1)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE sotto_envelopes_total counter\nsotto_envelopes_total 3\n",
		"sotto_connections 7\n",
		"sotto_pending 2.5\n",
		`sotto_send_seconds_bucket{le="0.001"} 1`,
		`sotto_send_seconds_bucket{le="0.01"} 2`,
		`sotto_send_seconds_bucket{le="+Inf"} 3`,
		"sotto_send_seconds_count 3",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q in\n%s", want, body)
		}
	}
	if strings.Index(body, "sotto_connections") > strings.Index(body, "sotto_envelopes_total") {
		t.Error("metrics not sorted")
	}
}

func TestBadNamesPanic(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("bad name accepted")
		}
	}()
	New().Counter("bad name", "")
}
