package relay

import (
	"sync"
	"testing"
	"time"
)

func (p *workers) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

func TestWorkersReuseTrimAndClose(t *testing.T) {
	var p workers
	defer p.close()
	// Ten tasks at once: ten workers, all idle afterwards.
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 10 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	waitIdle(t, &p, 10)
	p.trim() // nothing was idle for a whole period yet: starts the count
	waitIdle(t, &p, 10)

	// Sequential tasks reuse the same (top) worker: none is started.
	for range 100 {
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
		waitIdle(t, &p, 10)
	}

	// A trim ends only the workers no task reached since the previous
	// trim: nine never left the bottom of the stack.
	p.trim()
	if n := p.idleCount(); n != 1 {
		t.Fatalf("%d idle after trim, want 1 (the one reused)", n)
	}
	p.trim() // the last one stayed idle a whole period
	if n := p.idleCount(); n != 0 {
		t.Fatalf("%d idle after a second trim, want 0", n)
	}

	// After close, tasks still run, on goroutines that then end.
	p.close()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	if n := p.idleCount(); n != 0 {
		t.Fatalf("%d idle after close", n)
	}
}

func TestWorkersIdleBounded(t *testing.T) {
	var p workers
	defer p.close()
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range maxIdleWorkers + 50 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	waitIdle(t, &p, maxIdleWorkers)
}

// waitIdle waits until exactly n workers are idle.
func waitIdle(t *testing.T, p *workers, n int) {
	t.Helper()
	for i := 0; ; i++ {
		if p.idleCount() == n {
			return
		}
		if i == 10_000 {
			t.Fatalf("%d idle workers, want %d", p.idleCount(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
