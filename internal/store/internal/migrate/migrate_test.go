package migrate

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
		want  []int
		fail  bool
	}{
		{name: "ordered", files: fstest.MapFS{
			"m/0002_b.sql": {Data: []byte("B")},
			"m/0001_a.sql": {Data: []byte("A")},
		}, want: []int{1, 2}},
		{name: "gap", files: fstest.MapFS{
			"m/0001_a.sql": {Data: []byte("A")},
			"m/0003_c.sql": {Data: []byte("C")},
		}, fail: true},
		{name: "duplicate", files: fstest.MapFS{
			"m/0001_a.sql": {Data: []byte("A")},
			"m/0001_b.sql": {Data: []byte("B")},
		}, fail: true},
		{name: "bad name", files: fstest.MapFS{"m/1_a.sql": {Data: []byte("A")}}, fail: true},
		{name: "not sql", files: fstest.MapFS{"m/0001_a.txt": {Data: []byte("A")}}, fail: true},
		{name: "zero", files: fstest.MapFS{"m/0000_a.sql": {Data: []byte("A")}}, fail: true},
		{name: "empty", files: fstest.MapFS{"m/": {Mode: 0o755 | 1<<31}}, fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := Load(tt.files, "m")
			if tt.fail {
				if err == nil {
					t.Fatalf("Load = %v, want an error", ms)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != len(tt.want) {
				t.Fatalf("got %d migrations, want %d", len(ms), len(tt.want))
			}
			for i, m := range ms {
				if m.Version != tt.want[i] {
					t.Errorf("migration %d: version %d, want %d", i, m.Version, tt.want[i])
				}
			}
		})
	}
}

func TestPending(t *testing.T) {
	ms := []Migration{{Version: 1}, {Version: 2}, {Version: 3}}
	for cur, want := range []int{3, 2, 1, 0} {
		p, err := Pending(ms, cur)
		if err != nil || len(p) != want {
			t.Errorf("Pending(%d) = %d, %v; want %d", cur, len(p), err, want)
		}
	}
	if _, err := Pending(ms, 4); err == nil {
		t.Error("Pending(newer) did not fail")
	}
}
