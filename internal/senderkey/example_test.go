package senderkey_test

import (
	"crypto/rand"
	"fmt"

	"github.com/sotto-chat/sotto/internal/senderkey"
)

func Example() {
	group, _ := senderkey.ParseDistributionID("d1d1d1d1-7000-11eb-b32a-33b8a8a487a6")

	// Alice makes her sending chain and sends the distribution message to
	// every member over their pairwise sessions.
	var alice senderkey.Record
	dm, err := alice.Create(rand.Reader, group)
	if err != nil {
		panic(err)
	}
	wire := dm.Marshal()

	// Bob keeps a record per (sender, distribution).
	received, err := senderkey.ParseDistributionMessage(wire)
	if err != nil {
		panic(err)
	}
	var bobsViewOfAlice senderkey.Record
	if err := bobsViewOfAlice.Process(received); err != nil {
		panic(err)
	}

	// Alice encrypts once for the whole group; the server fans out.
	msg, err := alice.Encrypt(rand.Reader, []byte("space camp?"))
	if err != nil {
		panic(err)
	}
	// Bob finds the record from the message's distribution id, then decrypts.
	m, err := senderkey.ParseMessage(msg)
	if err != nil {
		panic(err)
	}
	fmt.Println(m.DistributionID())
	pt, err := bobsViewOfAlice.Decrypt(msg)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", pt)
	// Output:
	// d1d1d1d1-7000-11eb-b32a-33b8a8a487a6
	// space camp?
}
