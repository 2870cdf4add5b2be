package interop

import (
	"testing"

	"github.com/sotto-chat/sotto/internal/oracle"
)

// sealedSeeds returns libsignal's sealed-sender messages as fuzz seeds.
func sealedSeeds(t *testing.T, o *oracle.Oracle, l *oracle.Party) []seed { return nil }
