package client

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/client/whatsapp"
	"github.com/sotto-chat/sotto/internal/keys"
)

// offlineClient is a client with an account in a MemoryStore, made
// without a server (for the reader's tests and fuzzing).
func offlineClient(t testing.TB) *Client {
	t.Helper()
	st := NewMemoryStore()
	c, err := newClient(Options{Server: "http://127.0.0.1:1", Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if c.identity, err = keys.GenerateKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if c.auth, err = keys.GenerateKeyPair(rand.Reader); err != nil {
		t.Fatal(err)
	}
	c.account, c.device, c.profileKey = AccountID{1, 2, 3}, 1, bytes.Repeat([]byte{5}, 32)
	id, _ := c.identity.MarshalBinary()
	auth, _ := c.auth.MarshalBinary()
	rec := &accountRecord{Server: "http://127.0.0.1:1", Account: c.account[:], Device: 1, RegistrationID: 7, Identity: id, Auth: auth,
		ProfileKey: c.profileKey, TrustRoot: c.identity.Public.Bytes(), Username: "amy"}
	bob := AccountID{9}
	msgs := []Message{
		{ID: MessageID{1}, With: bob, Outgoing: true, FromDevice: 1, Text: "hi Bob", SentAt: time.UnixMilli(1_700_000_000_000),
			ReceivedAt: time.Unix(0, 1_700_000_000_000_123_456), Status: StatusRead},
		{ID: MessageID{2}, With: bob, FromDevice: 3, Text: "hi Amy\nhow are you?", SentAt: time.UnixMilli(1_700_000_001_000),
			ReceivedAt: time.Unix(0, 1_700_000_002_000_000_001), Status: StatusReceived},
	}
	writes := []Write{{keyAccount, marshalJSON(rec)},
		{contactKey(bob), marshalJSON(&contactRecord{Account: bob[:], Name: "bob", ProfileKey: bytes.Repeat([]byte{6}, 32), Accepted: true})}}
	for i := range msgs {
		writes = append(writes, Write{messageKey(&msgs[i]), marshalJSON(recordOf(&msgs[i]))}, Write{seenKey(bob, msgs[i].ID), []byte(messageKey(&msgs[i]))})
	}
	if err := st.Apply(context.Background(), writes); err != nil {
		t.Fatal(err)
	}
	return c
}

// seedExport is a small export with keys, imported history and a file,
// as a tar.
func seedExport(t testing.TB) []byte {
	t.Helper()
	c := offlineClient(t)
	ctx := context.Background()
	var zb bytes.Buffer
	zipWith(t, &zb, "WhatsApp Chat with Bob.txt", "1/2/25, 9:00\u202fAM - Bob: IMG-1.jpg (file attached)\nlook\n"+
		"1/2/25, 9:01\u202fAM - Amy: nice <This message was edited>\n1/2/25, 9:02\u202fAM - Bob added Cy\n", "IMG-1.jpg", "jpeg bytes")
	chat, err := whatsapp.ParseZip(bytes.NewReader(zb.Bytes()), int64(zb.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportWhatsApp(ctx, chat, WhatsAppImport{Me: "Amy", Contacts: map[string]AccountID{"Bob": {9}}}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	sink := NewTarSink(&b)
	if _, err := c.Export(ctx, sink, ExportOptions{IncludeKeys: true, Profile: &Profile{Name: "Amy"}}); err != nil {
		t.Fatal(err)
	}
	sink.Close()
	return b.Bytes()
}

// readTar reads an export from tar bytes into an empty store.
func readTar(b []byte) (*exportContents, *MemoryStore, error) {
	st := NewMemoryStore()
	m, err := loadMergeState(context.Background(), st, AccountID{})
	if err != nil {
		return nil, nil, err
	}
	var got *exportContents
	err = applyStream(context.Background(), st, func(put func(Write) error) error {
		var err error
		got, err = readExport(TarSource(bytes.NewReader(b)), m, put, nil)
		return err
	})
	return got, st, err
}

// exportFixture is a version 1 export (the seed of FuzzReadExport in
// client/internal/exportfuzz): every reader must keep reading it.
// -update writes it again.
const exportFixture = "internal/exportfuzz/testdata/export-v1.tar"

var update = flag.Bool("update", false, "write "+exportFixture+" again")

func TestExportFixture(t *testing.T) {
	if *update {
		if err := os.WriteFile(exportFixture, seedExport(t), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(exportFixture)
	if err != nil {
		t.Fatal(err)
	}
	res, err := CheckExport(TarSource(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("the version 1 fixture no longer reads: %v", err)
	}
	if res.Contacts != 1 || res.Messages != 2 || res.Imports != 1 || res.Imported != 3 || res.Files != 1 {
		t.Fatalf("the fixture reads as %+v", res)
	}
	got, _, err := readTar(b)
	if err != nil || got.keys == nil || got.account.Username != "amy" {
		t.Fatalf("into a store: %+v, %v", got, err)
	}
}

// TestReadExportPrefixes: no strict prefix of an export's archive reads,
// and no archive with one byte changed.
func TestReadExportPrefixes(t *testing.T) {
	seed := seedExport(t)
	if _, _, err := readTar(seed); err != nil {
		t.Fatalf("the whole archive: %v", err)
	}
	for n := 0; n < len(seed); n += 1 + n/50 {
		if _, _, err := readTar(seed[:n]); err == nil {
			t.Fatalf("a prefix of %d of %d bytes reads", n, len(seed))
		}
	}
	// A changed byte in a file's content is caught by its checksum (a
	// changed byte in a tar header is caught by the tar's own checks).
	for _, marker := range []string{"hi Bob", "jpeg bytes", `"username"`, `"identity"`} {
		b := bytes.Clone(seed)
		i := bytes.Index(b, []byte(marker))
		if i < 0 {
			t.Fatalf("no %q in the archive", marker)
		}
		b[i+1] ^= 0x01
		_, _, err := readTar(b)
		if !errors.Is(err, ErrNotExport) {
			t.Errorf("%q changed: %v", marker, err)
		}
	}
	// An export of a newer version is refused as such.
	newer := bytes.Replace(seed, []byte(`"version": 1`), []byte(`"version": 9`), 1)
	if _, _, err := readTar(newer); !errors.Is(err, ErrExportVersion) {
		t.Errorf("version 9: %v", err)
	}
	if !strings.Contains(string(seed), `"name": "Amy"`) {
		t.Error("the profile is not in the export")
	}
}

// zipWith writes a zip of name/content pairs to w.
func zipWith(t testing.TB, w io.Writer, pairs ...string) {
	t.Helper()
	zw := zip.NewWriter(w)
	for i := 0; i+1 < len(pairs); i += 2 {
		fw, err := zw.Create(pairs[i])
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte(pairs[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}
