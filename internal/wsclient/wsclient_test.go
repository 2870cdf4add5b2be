package wsclient

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
)

// echoServer answers every request with OK (or NOT_FOUND for
// LookupUsername), then pushes QueueEmpty once.
func echoServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		pushed := false
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			req, err := wire.DecodeRequest(b)
			if err != nil {
				return
			}
			resp := wire.Respond(req.Id, nil)
			if req.GetLookupUsername() != nil {
				resp = wire.Error(req.Id, wirepb.Code_NOT_FOUND, "no such username")
			}
			out, _ := wire.Encode(resp)
			ws.Write(ctx, websocket.MessageBinary, out)
			if !pushed {
				out, _ = wire.Encode(wire.NewPush(&wirepb.QueueEmpty{}))
				ws.Write(ctx, websocket.MessageBinary, out)
				pushed = true
			}
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestDoPushesAndErrors(t *testing.T) {
	ctx := context.Background()
	c, err := Dial(ctx, echoServer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, &wirepb.GetChallenge{}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-c.Pushes():
		if p.GetQueueEmpty() == nil {
			t.Fatalf("push %v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no push")
	}
	_, err = c.Do(ctx, &wirepb.LookupUsername{Hash: make([]byte, 32)})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != wirepb.Code_NOT_FOUND || Code(err) != wirepb.Code_NOT_FOUND {
		t.Fatalf("error response: %v", err)
	}
	if Code(nil) != wirepb.Code_OK || Code(errors.New("x")) != wirepb.Code_INTERNAL {
		t.Fatal("Code")
	}
	// A request that breaks the protocol's bounds is refused before it is sent.
	if _, err := c.Do(ctx, &wirepb.LookupUsername{Hash: []byte("short")}); err == nil {
		t.Fatal("invalid request sent")
	}
	c.Close()
	<-c.Done()
	if _, err := c.Do(ctx, &wirepb.GetChallenge{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("request on a closed connection: %v", err)
	}
}

func TestPostDoesNotWait(t *testing.T) {
	url := echoServer(t)
	c, err := Dial(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 100 {
		if err := c.Post(context.Background(), &wirepb.GetChallenge{}); err != nil {
			t.Fatal(err)
		}
	}
	// The responses come and are dropped; a request after them still
	// gets its own.
	if _, err := c.Do(context.Background(), &wirepb.GetChallenge{}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	n := len(c.pending)
	c.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d requests still pending", n)
	}
}
