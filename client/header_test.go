package client_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sotto-chat/sotto/client"
)

// TestOptionsHeader: Options.Header goes with the WebSocket handshake.
func TestOptionsHeader(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Clone():
		default:
		}
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	h := http.Header{"User-Agent": {"HeaderTest/1.0"}, "X-Extra": {"yes"}}
	_, err := client.Create(testContext(t), client.Options{Server: srv.URL, Store: client.NewMemoryStore(), Header: h})
	if err == nil {
		t.Fatal("Create against a server that refuses the handshake succeeded")
	}
	select {
	case hdr := <-got:
		if hdr.Get("User-Agent") != "HeaderTest/1.0" || hdr.Get("X-Extra") != "yes" {
			t.Fatalf("the handshake carried %v", hdr)
		}
	default:
		t.Fatal("no handshake reached the server")
	}
}
