package testkit

import (
	"fmt"
	"os"
	"testing"
)

// SummaryEnv names the file that collects the proof suite's figures:
// scripts/test sets it and prints its lines at the end of the run.
const SummaryEnv = "SOTTO_SUMMARY_FILE"

// Summary appends one line of figures ("crash test: lost = 0, …") to the
// file named by SummaryEnv, if set.
func Summary(t testing.TB, line string) {
	t.Helper()
	path := os.Getenv(SummaryEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Errorf("summary file: %v", err)
		return
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, line); err != nil {
		t.Errorf("summary file: %v", err)
	}
}
