//go:build linux

package netpoll

import (
	"bytes"
	"io"
	"syscall"
	"testing"
)

// TestWriteNowNeverWaits: WriteNow writes what the socket takes, returns a
// short count and no error once its buffer is full, carries on where it
// stopped after the peer reads, and reports a closed socket.
func TestWriteNowNeverWaits(t *testing.T) {
	client, server := pair(t)
	rc, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("sotto"), 1<<14) // 80 KiB
	var sent []byte
	for short := false; !short; {
		n, err := WriteNow(rc, chunk)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, chunk[:n]...)
		short = n < len(chunk)
		if len(sent) > 64<<20 {
			t.Fatal("64 MiB written to a peer that reads nothing: WriteNow never stopped")
		}
	}
	// The peer reads it all, and the rest goes through.
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	rest := []byte("the rest")
	for len(rest) > 0 {
		n, err := WriteNow(rc, rest)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, rest[:n]...)
		rest = rest[n:]
	}
	server.Close()
	if b := <-got; !bytes.Equal(b, sent) {
		t.Fatalf("peer read %d bytes, %d were written", len(b), len(sent))
	}
	if _, err := WriteNow(rc, chunk); err == nil {
		t.Fatal("WriteNow on a closed socket: no error")
	}
}
