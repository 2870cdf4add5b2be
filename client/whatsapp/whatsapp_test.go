package whatsapp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// sharedCorpus is the folder of sample exports shared by the project,
// relative to this package's directory.
const sharedCorpus = "../../../shared/testdata/whatsapp"

// want is one message of a NAME.expected.json.
type want struct {
	Time       string  `json:"time"`
	Sender     *string `json:"sender"`
	Kind       Kind    `json:"kind"`
	Text       string  `json:"text"`
	Attachment string  `json:"attachment,omitempty"`
	Edited     bool    `json:"edited,omitempty"`
}

// got converts a parsed message to the form of the expected files.
func got(m Message) want {
	w := want{
		Time:       m.Time.Format("2006-01-02T15:04:05"),
		Kind:       m.Kind,
		Text:       m.Text,
		Attachment: m.Attachment,
		Edited:     m.Edited,
	}
	if m.Kind != KindSystem {
		s := m.Sender
		w.Sender = &s
	}
	return w
}

// compare reports every difference between parsed messages and the
// expected ones, naming the message index, its line and the field.
func compare(t *testing.T, name string, msgs []Message, exp []want) {
	t.Helper()
	if len(msgs) != len(exp) {
		t.Errorf("%s: %d messages, want %d", name, len(msgs), len(exp))
	}
	for i := range min(len(msgs), len(exp)) {
		g, w := got(msgs[i]), exp[i]
		field := func(f string, gv, wv any) {
			t.Errorf("%s: message %d (line %d): %s = %q, want %q", name, i, msgs[i].Line, f, gv, wv)
		}
		if g.Time != w.Time {
			field("time", g.Time, w.Time)
		}
		if (g.Sender == nil) != (w.Sender == nil) || g.Sender != nil && *g.Sender != *w.Sender {
			field("sender", deref(g.Sender), deref(w.Sender))
		}
		if g.Kind != w.Kind {
			field("kind", g.Kind, w.Kind)
		}
		if g.Text != w.Text {
			field("text", g.Text, w.Text)
		}
		if g.Attachment != w.Attachment {
			field("attachment", g.Attachment, w.Attachment)
		}
		if g.Edited != w.Edited {
			field("edited", fmt.Sprint(g.Edited), fmt.Sprint(w.Edited))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// TestSharedCorpus parses every export of the shared corpus and compares
// the result with its NAME.expected.json, field by field.
func TestSharedCorpus(t *testing.T) {
	expected, err := filepath.Glob(filepath.Join(sharedCorpus, "*.expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(expected) == 0 {
		wd, _ := os.Getwd()
		t.Fatalf("no *.expected.json in %s (from %s): the shared corpus is missing", sharedCorpus, wd)
	}
	for _, exp := range expected {
		name := strings.TrimSuffix(filepath.Base(exp), ".expected.json")
		t.Run(name, func(t *testing.T) {
			var msgs []want
			raw, err := os.ReadFile(exp)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &msgs); err != nil {
				t.Fatal(err)
			}
			chat := parseCorpusFile(t, filepath.Join(sharedCorpus, name))
			t.Logf("format: %v", chat.Format)
			compare(t, name, chat.Messages, msgs)
			// Every attachment of a zip export is one of its files, and
			// every file is an attachment (the README's promise).
			if chat.Files != nil {
				refs := make(map[string]bool)
				for _, m := range chat.Messages {
					if m.Kind == KindAttachment {
						refs[m.Attachment] = true
						if chat.Files[m.Attachment] == nil {
							t.Errorf("attachment %q is not in the zip", m.Attachment)
						}
					}
				}
				for n := range chat.Files {
					if !refs[n] {
						t.Errorf("zip member %q is no message's attachment", n)
					}
				}
			}
		})
	}
}

// parseCorpusFile parses NAME.txt or NAME.zip.
func parseCorpusFile(t *testing.T, base string) *Chat {
	t.Helper()
	if data, err := os.ReadFile(base + ".txt"); err == nil {
		chat, err := Parse(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		// Feeding the reader a byte at a time changes nothing.
		split, err := Parse(iotest.OneByteReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		if len(split.Messages) != len(chat.Messages) {
			t.Errorf("one byte at a time: %d messages, want %d", len(split.Messages), len(chat.Messages))
		}
		return chat
	}
	data, err := os.ReadFile(base + ".zip")
	if err != nil {
		t.Fatal(err)
	}
	chat, err := ParseZip(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return chat
}

// TestSharedCorpusFormats pins what is inferred for each shared export.
func TestSharedCorpusFormats(t *testing.T) {
	tests := []struct {
		name   string
		layout string
		order  DateOrder
		source OrderSource
	}{
		{"android_en_US_12h_nnbsp", "M/D/YY, h:MM a -", MDY, OrderFromDates},
		{"android_en_GB_24h", "D/M/YYYY, H:MM -", DMY, OrderFromDates},
		{"android_de_DE", "D.M.YY, H:MM -", DMY, OrderFromDates},
		{"ios_en_US_media", "[M/D/YY, h:MM:SS a]", MDY, OrderFromDates},
		{"ios_en_GB_group", "[D/M/YYYY, H:MM:SS]", DMY, OrderFromDates},
		{"android_group_en_US_system", "M/D/YY, h:MM a -", MDY, OrderFromDates},
		{"android_en_GB_media", "D/M/YYYY, H:MM -", DMY, OrderFromDates},
		{"android_en_US_24h_multiline_rtl", "M/D/YY, H:MM -", MDY, OrderFromDates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := parseCorpusFile(t, filepath.Join(sharedCorpus, tt.name)).Format
			if f.Layout != tt.layout || f.Order != tt.order || f.OrderSource != tt.source {
				t.Errorf("format %v, want %s %s from %s", f, tt.layout, tt.order, tt.source)
			}
		})
	}
}
