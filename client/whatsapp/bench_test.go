package whatsapp

import (
	"strings"
	"testing"

	"github.com/sotto-chat/sotto/client/whatsapp/whatsapptest"
)

// BenchmarkParse100k parses a synthetic export of 100,000 messages.
func BenchmarkParse100k(b *testing.B) {
	const n = 100_000
	text := whatsapptest.Synthetic(n)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		chat, err := Parse(strings.NewReader(text))
		if err != nil {
			b.Fatal(err)
		}
		if len(chat.Messages) != n {
			b.Fatalf("%d messages, want %d", len(chat.Messages), n)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestSyntheticExport checks the benchmark's input parses as intended.
func TestSyntheticExport(t *testing.T) {
	chat, err := Parse(strings.NewReader(whatsapptest.Synthetic(2000)))
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Messages) != 2000 || chat.Format.Order != MDY {
		t.Fatalf("%d messages, format %v", len(chat.Messages), chat.Format)
	}
	kinds := make(map[Kind]int)
	for _, m := range chat.Messages {
		kinds[m.Kind]++
	}
	for _, k := range []Kind{KindText, KindSystem, KindAttachment, KindMediaOmitted, KindDeleted} {
		if kinds[k] == 0 {
			t.Errorf("no %s message: %v", k, kinds)
		}
	}
}
