package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// Progress bars for long imports, exports, backups and restores: drawn on
// standard error when it is a terminal (and --json is off), nothing
// otherwise.

// Bar drawing, each with its reason.
const (
	// barWidth is the bar's length in cells: it fits an 80-column
	// terminal with its label and counts.
	barWidth = 30
	// barEvery bounds how often the bar is redrawn: smooth to the eye,
	// and a 100,000-message import does not spend its time drawing.
	barEvery = 100 * time.Millisecond
)

// isTerminal reports whether f is an *os.File on a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// progressBar draws "label [#####.....]  45% 45000/100000" on one line.
type progressBar struct {
	w     io.Writer // nil: draw nothing
	label string
	drawn time.Time
	shown bool
}

// progress returns a bar for a long operation, drawn only on a terminal.
func (c *cli) progress(label string) *progressBar {
	p := &progressBar{label: label}
	if c.stderrTerminal && !c.json {
		p.w = c.stderr
	}
	return p
}

// update is a client progress callback: done of total.
func (p *progressBar) update(done, total int) {
	if p.w == nil || total <= 0 {
		return
	}
	now := time.Now()
	if done < total && now.Sub(p.drawn) < barEvery {
		return
	}
	p.drawn, p.shown = now, true
	done = min(max(done, 0), total)
	full := barWidth * done / total
	fmt.Fprintf(p.w, "\r%s [%s%s] %3d%% %d/%d", p.label, strings.Repeat("#", full), strings.Repeat(".", barWidth-full),
		100*done/total, done, total)
}

// finish clears the bar's line.
func (p *progressBar) finish() {
	if p.w != nil && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
