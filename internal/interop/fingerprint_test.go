package interop

import (
	"bytes"
	"context"
	"testing"

	"github.com/sotto-chat/sotto/internal/fingerprint"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/oracle"
	"github.com/sotto-chat/sotto/internal/testkit"
)

// TestLibsignalSafetyNumbers: the 60-digit and scannable safety numbers are
// identical to libsignal's for both versions and both sides, and each
// library accepts the other's scannable form.
func TestLibsignalSafetyNumbers(t *testing.T) {
	ctx := context.Background()
	o := oracle.Start(t)
	rand := testkit.Rand(t.Name())
	for i := range 8 {
		a, _ := keys.GenerateKeyPair(rand)
		b, _ := keys.GenerateKeyPair(rand)
		aID, bID := []byte(uuidFor("a", i)), []byte(uuidFor("b", i))
		for _, version := range []uint32{fingerprint.VersionPhoneNumber, fingerprint.VersionServiceID} {
			ours, err := fingerprint.New(version, fingerprint.Iterations, aID, a.Public, bID, b.Public)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := o.Fingerprint(ctx, oracle.FingerprintRequest{
				Iterations: fingerprint.Iterations, Version: int(version),
				LocalIdentifier: aID, LocalKey: a.Public.Bytes(), RemoteIdentifier: bID, RemoteKey: b.Public.Bytes(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if ours.Display() != theirs.DisplayString {
				t.Fatalf("display %s, libsignal %s", ours.Display(), theirs.DisplayString)
			}
			if !bytes.Equal(ours.Scannable(), theirs.Scannable) {
				t.Fatalf("scannable %x, libsignal %x", ours.Scannable(), theirs.Scannable)
			}
			// The other side's view, computed by libsignal, matches ours.
			other, err := o.Fingerprint(ctx, oracle.FingerprintRequest{
				Iterations: fingerprint.Iterations, Version: int(version),
				LocalIdentifier: bID, LocalKey: b.Public.Bytes(), RemoteIdentifier: aID, RemoteKey: a.Public.Bytes(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := ours.Compare(other.Scannable); err != nil || !ok {
				t.Fatalf("Sotto does not accept libsignal's scannable form: %v, %v", ok, err)
			}
			if ok, err := o.CompareScannable(ctx, other.Scannable, ours.Scannable()); err != nil || !ok {
				t.Fatalf("libsignal does not accept Sotto's scannable form: %v, %v", ok, err)
			}
		}
	}
}
