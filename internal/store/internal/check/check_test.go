package check

import (
	"errors"
	"testing"

	"github.com/sotto-chat/sotto/internal/store"
)

func TestAppendGroupsAndSorts(t *testing.T) {
	a := store.AccountID{1}
	b := store.AccountID{2}
	envs := []*store.Envelope{
		{Account: b, Device: 1, Content: []byte("1")},
		{Account: a, Device: 2, Content: []byte("2")},
		{Account: b, Device: 1, Content: []byte("3")},
		{Account: a, Device: 1, Content: []byte("4")},
	}
	mbs, err := Append(envs)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		a    store.AccountID
		d    store.DeviceID
		envs string
	}{{a, 1, "4"}, {a, 2, "2"}, {b, 1, "13"}}
	if len(mbs) != len(want) {
		t.Fatalf("got %d mailboxes, want %d", len(mbs), len(want))
	}
	for i, w := range want {
		var got string
		for _, e := range mbs[i].Envs {
			got += string(e.Content)
		}
		if mbs[i].Account != w.a || mbs[i].Device != w.d || got != w.envs {
			t.Errorf("mailbox %d = %x/%d %q, want %x/%d %q", i, mbs[i].Account, mbs[i].Device, got, w.a, w.d, w.envs)
		}
	}
}

func TestAppendRejects(t *testing.T) {
	tests := []struct {
		name string
		envs []*store.Envelope
	}{
		{"nil", []*store.Envelope{nil}},
		{"empty", []*store.Envelope{{Device: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Append(tt.envs); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestPreKeys(t *testing.T) {
	k := []byte{1}
	if err := PreKeys([]store.PreKey{{ID: 1, Key: k}, {ID: 1, Key: k}}, nil); !errors.Is(err, store.ErrExists) {
		t.Errorf("repeated EC id: %v", err)
	}
	kem := store.SignedPreKey{ID: 1, Key: k, Signature: k}
	if err := PreKeys(nil, []store.SignedPreKey{kem, kem}); !errors.Is(err, store.ErrExists) {
		t.Errorf("repeated KEM id: %v", err)
	}
	if err := PreKeys([]store.PreKey{{ID: 1, Key: k}}, []store.SignedPreKey{kem}); err != nil {
		t.Errorf("same id in both kinds: %v", err)
	}
	if err := PreKeys(nil, []store.SignedPreKey{{ID: 2, Key: k}}); err == nil {
		t.Error("KEM prekey without signature accepted")
	}
}

func TestLimits(t *testing.T) {
	if err := Limits(store.DefaultLimits()); err != nil {
		t.Error(err)
	}
	if err := Limits(store.Limits{}); err == nil {
		t.Error("zero limits accepted")
	}
}
