package interop

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/sotto-chat/sotto/internal/gcmsiv"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/oracle"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// TestLibsignalXEdDSAAndAgreement: signatures made by either library verify
// in the other (and fail with a changed message), and X25519 agreements
// match, for keys made on both sides.
func TestLibsignalXEdDSAAndAgreement(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	rand := testkit.Rand(t.Name())
	for i := range 50 {
		ours, _ := keys.GenerateKeyPair(rand)
		theirsRaw, err := o.KeyPair(ctx)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := keys.NewKeyPair(theirsRaw.Private)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(theirs.Public.Bytes(), theirsRaw.Public) {
			t.Fatal("libsignal's private key gives another public key in Sotto")
		}
		msg := []byte(fmt.Sprintf("message %d", i))
		sig, err := ours.Private.Sign(rand, msg)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := o.XEdDSAVerify(ctx, ours.Public.Bytes(), msg, sig[:]); err != nil || !ok {
			t.Fatalf("libsignal rejects Sotto's signature: %v", err)
		}
		if ok, _ := o.XEdDSAVerify(ctx, ours.Public.Bytes(), append(msg, '!'), sig[:]); ok {
			t.Fatal("libsignal accepts Sotto's signature for another message")
		}
		lsig, err := o.XEdDSASign(ctx, theirsRaw.Private, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !theirs.Public.Verify(lsig, msg) {
			t.Fatal("Sotto rejects libsignal's signature")
		}
		if theirs.Public.Verify(lsig, append(msg, '!')) {
			t.Fatal("Sotto accepts libsignal's signature for another message")
		}
		shared, err := o.Agree(ctx, theirsRaw.Private, ours.Public.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		mine, err := ours.Private.Agree(theirs.Public)
		if err != nil || !bytes.Equal(mine[:], shared) {
			t.Fatalf("agreement differs: %x vs %x (%v)", mine, shared, err)
		}
	}
}

// TestLibsignalAESGCMSIV: Sotto's AES-256-GCM-SIV gives libsignal's bytes
// for random inputs of many lengths, and each opens the other's output.
func TestLibsignalAESGCMSIV(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	rand := testkit.Rand(t.Name())
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 64, 255, 1024, 4097} {
		key, nonce := make([]byte, 32), make([]byte, 12)
		aad, pt := make([]byte, n%37), make([]byte, n)
		for _, b := range [][]byte{key, nonce, aad, pt} {
			rand.Read(b)
		}
		aead, err := gcmsiv.New(key)
		if err != nil {
			t.Fatal(err)
		}
		ours := aead.Seal(nil, nonce, pt, aad)
		theirs, err := o.AES256GCMSIVEncrypt(ctx, key, nonce, aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("%d bytes: Sotto %x, libsignal %x", n, ours, theirs)
		}
		back, err := o.AES256GCMSIVDecrypt(ctx, key, nonce, aad, ours)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("libsignal cannot open Sotto's ciphertext: %v", err)
		}
		ours[len(ours)-1] ^= 1
		if _, err := o.AES256GCMSIVDecrypt(ctx, key, nonce, aad, ours); err == nil {
			t.Fatal("libsignal opens a tampered ciphertext")
		}
	}
}
