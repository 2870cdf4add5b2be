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
	"google.golang.org/protobuf/proto"

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

// TestStartBatchAndPushHandler: requests started together are answered
// each to its own callback, once, with its own status; a push handler
// takes pushes instead of Pushes.
func TestStartBatchAndPushHandler(t *testing.T) {
	ctx := context.Background()
	c, err := Dial(ctx, echoServer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	handled := make(chan *wirepb.Push, 1)
	c.SetPushHandler(func(p *wirepb.Push) { handled <- p })
	type outcome struct {
		i    int
		code wirepb.Code
	}
	got := make(chan outcome, 10)
	bodies := []proto.Message{&wirepb.LookupUsername{Hash: make([]byte, 32)}, &wirepb.GetChallenge{}, &wirepb.GetChallenge{}}
	dones := make([]func(*wirepb.Response, error), len(bodies))
	for i := range dones {
		dones[i] = func(resp *wirepb.Response, err error) {
			if resp == nil {
				t.Errorf("request %d: no response (%v)", i, err)
			}
			got <- outcome{i, Code(err)}
		}
	}
	if err := c.StartBatch(ctx, bodies, dones); err != nil {
		t.Fatal(err)
	}
	want := []wirepb.Code{wirepb.Code_NOT_FOUND, wirepb.Code_OK, wirepb.Code_OK}
	seen := map[int]bool{}
	for range want {
		select {
		case o := <-got:
			if seen[o.i] || o.code != want[o.i] {
				t.Fatalf("request %d: %v (seen before: %v), want %v once", o.i, o.code, seen[o.i], want[o.i])
			}
			seen[o.i] = true
		case <-time.After(5 * time.Second):
			t.Fatal("a started request was not answered")
		}
	}
	select {
	case p := <-handled:
		if p.GetQueueEmpty() == nil {
			t.Fatalf("push %v", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the push handler got no push")
	}
	if len(c.Pushes()) != 0 {
		t.Fatal("a push went to Pushes despite the handler")
	}
	select {
	case o := <-got:
		t.Fatalf("request %d answered twice", o.i)
	default:
	}
}

// TestStartedRequestsFailWithTheConnection: a started request that is never
// answered gets the connection's end; one started after it is refused and
// its callback never called.
func TestStartedRequestsFailWithTheConnection(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for { // read, never answer
			if _, _, err := ws.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	failed := make(chan error, 2)
	if err := c.Start(ctx, &wirepb.GetChallenge{}, func(_ *wirepb.Response, err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-c.Done()
	select {
	case err := <-failed:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("pending request ended with %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pending request's callback was not called")
	}
	err = c.Start(ctx, &wirepb.GetChallenge{}, func(*wirepb.Response, error) { t.Error("callback of a refused request") })
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Start on a closed connection: %v", err)
	}
}
