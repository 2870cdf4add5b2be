package pow

import (
	"errors"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestIssueSolveRedeem(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	is := NewIssuer(12, c.now)
	seed, d := is.Issue()
	sol, ok := Solve(seed, d, nil)
	if !ok || !Check(seed, sol, d) {
		t.Fatal("no solution")
	}
	if err := is.Redeem(seed, sol); err != nil {
		t.Fatal(err)
	}
	if err := is.Redeem(seed, sol); !errors.Is(err, ErrUnknownSeed) {
		t.Fatalf("second redemption: %v", err)
	}
}

func TestWrongWorkKeepsSeed(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	is := NewIssuer(16, c.now)
	seed, d := is.Issue()
	bad := []byte{1}
	for Check(seed, bad, d) {
		bad[0]++
	}
	if err := is.Redeem(seed, bad); !errors.Is(err, ErrWrongWork) {
		t.Fatalf("wrong work: %v", err)
	}
	sol, _ := Solve(seed, d, nil)
	if err := is.Redeem(seed, sol); err != nil {
		t.Fatalf("a failed attempt must not burn the seed: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	is := NewIssuer(4, c.now)
	seed, d := is.Issue()
	sol, _ := Solve(seed, d, nil)
	c.t = c.t.Add(TTL)
	if err := is.Redeem(seed, sol); !errors.Is(err, ErrUnknownSeed) {
		t.Fatalf("expired seed: %v", err)
	}
	is.Issue()
	if is.Pending() != 1 {
		t.Fatalf("expired seeds kept: %d", is.Pending())
	}
}

func TestPendingBounded(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	is := NewIssuer(0, c.now)
	first, _ := is.Issue()
	for range MaxPending + 10 {
		is.Issue()
	}
	if is.Pending() != MaxPending {
		t.Fatalf("pending %d, want %d", is.Pending(), MaxPending)
	}
	if err := is.Redeem(first, nil); !errors.Is(err, ErrUnknownSeed) {
		t.Fatalf("oldest seed not dropped: %v", err)
	}
}

func TestCheckBounds(t *testing.T) {
	if Check([]byte("seed"), make([]byte, MaxSolutionSize+1), 0) {
		t.Fatal("oversize solution accepted")
	}
	if !Check([]byte("seed"), nil, 0) {
		t.Fatal("difficulty 0 must accept anything")
	}
	if Check([]byte("seed"), nil, 257) {
		t.Fatal("difficulty above 256 accepted")
	}
	stop := make(chan struct{})
	close(stop)
	if _, ok := Solve([]byte("seed"), 256, stop); ok {
		t.Fatal("Solve ignored stop")
	}
}

func BenchmarkSolve16(b *testing.B) {
	for b.Loop() {
		Solve([]byte(b.Name()+time.Now().String()), 16, nil)
	}
}
