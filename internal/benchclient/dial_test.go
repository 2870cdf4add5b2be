package benchclient

import (
	"errors"
	"testing"
)

func TestNewDialer(t *testing.T) {
	tests := []struct {
		name, server string
		want         string // the WebSocket URL; "" for an error
		err          error
	}{
		{"ws", "ws://127.0.0.1:8080", "ws://127.0.0.1:8080/v1/websocket", nil},
		{"http", "http://127.0.0.1:8080/", "ws://127.0.0.1:8080/v1/websocket", nil},
		{"https", "https://127.0.0.5:8443", "wss://127.0.0.5:8443/v1/websocket", nil},
		{"path kept", "ws://127.0.0.1:8080/other", "ws://127.0.0.1:8080/other", nil},
		{"localhost", "ws://localhost:8080", "ws://localhost:8080/v1/websocket", nil},
		{"not loopback", "ws://192.0.2.1:8080", "", ErrNotLoopback},
		{"IPv6 loopback", "ws://[::1]:8080", "", ErrNotLoopback}, // sources are 127.0.0.0/8
		{"name", "ws://example.com", "", ErrNotLoopback},
		{"scheme", "ftp://127.0.0.1", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewDialer(tt.server)
			if tt.want == "" {
				if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) {
					t.Fatalf("NewDialer(%q) = %v, %v; want error %v", tt.server, d, err, tt.err)
				}
				return
			}
			if err != nil || d.URL() != tt.want {
				t.Fatalf("NewDialer(%q): %v, %v; want %s", tt.server, d, err, tt.want)
			}
		})
	}
}

func TestSource(t *testing.T) {
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 252, 253, 254, 255, 254*256 - 1, 254 * 256, 1 << 20, MaxSources - 1} {
		a := Source(i)
		b := a.As4()
		if b[0] != 127 || b[3] == 0 || b[3] == 255 || a.String() == "127.0.0.1" || seen[a.String()] {
			t.Errorf("Source(%d) = %v", i, a)
		}
		seen[a.String()] = true
	}
	if got := Source(0).String(); got != "127.0.0.2" {
		t.Errorf("Source(0) = %s, want 127.0.0.2", got)
	}
}
