package client_test

import (
	"testing"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/internal/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) client.Store { return client.NewMemoryStore() })
}
