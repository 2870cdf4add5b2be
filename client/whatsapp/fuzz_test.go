package whatsapp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// addSharedSeeds adds the shared corpus's files with the given extension
// to a fuzz target's seeds (the committed seeds in testdata/fuzz are
// shorter pieces of them).
func addSharedSeeds(f *testing.F, ext string) {
	files, _ := filepath.Glob(filepath.Join(sharedCorpus, "*"+ext))
	if len(files) == 0 {
		f.Fatalf("no %s files in %s", ext, sharedCorpus)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParse checks that Parse never panics, that its errors are
// *ParseError values, that what it returns keeps the package's promises,
// and that reading the input a byte at a time changes nothing.
func FuzzParse(f *testing.F) {
	addSharedSeeds(f, ".txt")
	f.Fuzz(func(t *testing.T, data []byte) {
		chat, err := Parse(bytes.NewReader(data))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		checkChat(t, chat, bytes.Count(data, []byte("\n"))+1)
		split, err := Parse(iotest.OneByteReader(bytes.NewReader(data)))
		if err != nil || !reflect.DeepEqual(split.Messages, chat.Messages) {
			t.Fatalf("a byte at a time: %v, different messages", err)
		}
	})
}

// checkChat checks the invariants of a parsed chat of at most lines lines.
func checkChat(t *testing.T, chat *Chat, lines int) {
	t.Helper()
	if len(chat.Messages) == 0 {
		t.Fatal("no error and no message")
	}
	if chat.Format.Layout == "" || chat.Format.Order == "" || chat.Format.OrderSource == "" {
		t.Fatalf("incomplete format %+v", chat.Format)
	}
	prev := 0
	for i, m := range chat.Messages {
		if m.Line <= prev || m.Line > lines {
			t.Fatalf("message %d: line %d after %d (of %d)", i, m.Line, prev, lines)
		}
		prev = m.Line
		if !m.Kind.Valid() {
			t.Fatalf("message %d: kind %q", i, m.Kind)
		}
		if (m.Sender == "") != (m.Kind == KindSystem) {
			t.Fatalf("message %d: sender %q with kind %s", i, m.Sender, m.Kind)
		}
		if (m.Attachment != "") != (m.Kind == KindAttachment) {
			t.Fatalf("message %d: attachment %q with kind %s", i, m.Attachment, m.Kind)
		}
		if m.Kind == KindDeleted && m.Text != "" {
			t.Fatalf("message %d: deleted with text", i)
		}
		if y := m.Time.Year(); y < MinYear || y > 9999 || m.Time.Location().String() != "UTC" {
			t.Fatalf("message %d: time %v", i, m.Time)
		}
		if !utf8.ValidString(m.Text) || !utf8.ValidString(m.Sender) || strings.ContainsRune(m.Sender, '\n') {
			t.Fatalf("message %d: bad strings %q %q", i, m.Sender, m.Text)
		}
		if strings.ContainsFunc(m.Sender, isMark) {
			t.Fatalf("message %d: directional mark in sender %q", i, m.Sender)
		}
		if strings.Contains(m.Text, "\r\n") || strings.HasSuffix(m.Text, "\r") {
			t.Fatalf("message %d: CR at a line end in %q", i, m.Text)
		}
		if len(m.Sender) > MaxSenderBytes {
			t.Fatalf("message %d: sender of %d bytes", i, len(m.Sender))
		}
	}
}

// FuzzParseZip checks that ParseZip never panics, that a chat it accepts
// keeps the package's promises, and that its files read within their
// declared sizes.
func FuzzParseZip(f *testing.F) {
	addSharedSeeds(f, ".zip")
	f.Fuzz(func(t *testing.T, data []byte) {
		chat, err := ParseZip(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		checkChat(t, chat, len(data)+1)
		if chat.ChatFile == "" || chat.Files[chat.ChatFile] != nil {
			t.Fatalf("chat file %q", chat.ChatFile)
		}
		for name, file := range chat.Files {
			if !safeName(name) || file.Name != name {
				t.Fatalf("file %q named %q", name, file.Name)
			}
			if file.Size > 1<<20 {
				continue // a declared size is not worth reading here
			}
			rc, err := file.Open()
			if err != nil {
				continue
			}
			n, _ := io.Copy(io.Discard, rc)
			rc.Close()
			if n > file.Size {
				t.Fatalf("%s: read %d bytes of %d declared", name, n, file.Size)
			}
		}
	})
}
