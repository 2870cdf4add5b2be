package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(2, 3, 0, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("burst event %d refused", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over the burst: %v, wait %v", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("keys share a bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("no refill")
	}
	now = now.Add(time.Hour)
	for range 3 {
		l.Allow("a")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("refill beyond the burst")
	}
}

func TestMemoryBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(1, 1, 100, func() time.Time { return now })
	for i := range 1000 {
		l.Allow(fmt.Sprint(i))
	}
	if l.Len() != 100 {
		t.Fatalf("%d keys held, want 100", l.Len())
	}
	// The most recent keys are the ones kept.
	if ok, _ := l.Allow("999"); ok {
		t.Fatal("recent key forgotten")
	}
}
