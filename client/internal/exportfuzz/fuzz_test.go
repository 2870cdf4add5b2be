// Package exportfuzz fuzzes the reader of Sotto exports and backups
// (client.CheckExport over client.TarSource). It is a package of its own
// so that its test binary does not link the client's SQLite store, whose
// size would make every fuzzing run crawl.
package exportfuzz

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/sotto-chat/sotto/client"
)

// FuzzReadExport feeds the export reader arbitrary archives, seeded with
// a version 1 export with keys, imported history and a file: it never
// panics, and the reading is the same whole as split into small reads.
func FuzzReadExport(f *testing.F) {
	seed, err := os.ReadFile("testdata/export-v1.tar")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := client.CheckExport(client.TarSource(bytes.NewReader(seed))); err != nil {
		f.Fatalf("the seed does not read: %v", err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		whole, err1 := client.CheckExport(client.TarSource(bytes.NewReader(b)))
		split, err2 := client.CheckExport(client.TarSource(&oneByte{b}))
		if (err1 == nil) != (err2 == nil) || whole != split {
			t.Fatalf("whole: %+v, %v; split: %+v, %v", whole, err1, split, err2)
		}
	})
}

// oneByte reads one byte at a time.
type oneByte struct{ b []byte }

func (o *oneByte) Read(p []byte) (int, error) {
	if len(o.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = o.b[0]
	o.b = o.b[1:]
	return 1, nil
}
