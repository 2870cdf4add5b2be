package whatsapp

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseErrors(t *testing.T) {
	prose := strings.Repeat("Dear diary, today nothing happened.\n", MaxPreambleLines)
	tests := []struct {
		name string
		in   string
		err  error
		line int
	}{
		{"empty", "", ErrEmpty, 0},
		{"only a BOM and blank lines", "\ufeff\n\r\n  \n", ErrEmpty, 0},
		{"binary", "PK\x03\x04\x14\x00\x00\x00\x08\x00", ErrNotText, 1},
		{"UTF-16", "\xff\xfe2\x000\x00/\x00", ErrNotText, 0},
		{"invalid UTF-8", "1/2/24, 9:00 - A: ok\n1/2/24, 9:01 - A: caf\xe9\n", ErrNotText, 2},
		{"prose", "Dear diary,\ntoday nothing happened.\n", ErrNoHeader, 0},
		{"a header too late", prose + "27/03/2024, 19:40 - A: x\n", ErrNoHeader, 0},
		{"text before the first header", "exported by me\n27/03/2024, 19:40 - A: x\n", ErrTextBeforeHeader, 1},
		{
			"month 13 once the order is known",
			"2/27/24, 21:00 - A: x\n2/28/24, 21:00 - A: y\n13/13/24, 21:00 - A: z\n",
			ErrBadTimestamp, 3,
		},
		{"hour 25", "27/03/2024, 19:40 - A: x\n27/03/2024, 25:40 - A: y\n", ErrBadTimestamp, 2},
		{"minute 60", "27/03/2024, 19:40 - A: x\n27/03/2024, 19:60 - A: y\n", ErrBadTimestamp, 2},
		{"31 February", "27/03/2024, 19:40 - A: x\n31/02/2024, 19:40 - A: y\n", ErrBadTimestamp, 2},
		{"29 February of a common year", "27/03/2023, 19:40 - A: x\n29/02/2023, 19:40 - A: y\n", ErrBadTimestamp, 2},
		{"13 PM", "10/28/23, 9:14 AM - A: x\n10/28/23, 13:14 PM - A: y\n", ErrBadTimestamp, 2},
		{"day 0", "27/03/2024, 19:40 - A: x\n00/03/2024, 19:40 - A: y\n", ErrBadTimestamp, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chat, err := Parse(strings.NewReader(tt.in))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Parse = %v, %v; want %v", chat, err, tt.err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not a *ParseError", err)
			}
			if pe.Line != tt.line {
				t.Errorf("line %d, want %d (%v)", pe.Line, tt.line, err)
			}
			t.Log(err)
		})
	}
}

func TestParseErrorsNeverQuoteText(t *testing.T) {
	_, err := Parse(strings.NewReader("27/03/2024, 19:40 - A: x\n31/02/2024, 19:40 - A: secret plans\n"))
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "31/02/2024, 19:40") || !strings.Contains(err.Error(), "D/M/YYYY, H:MM -") {
		t.Errorf("err = %v, want the timestamp and the layout", err)
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Parse(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

func TestParseTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates MaxChatSize")
	}
	r := &repeatReader{line: strings.Repeat("27/03/2024, 19:40 - A: x\n", 1<<14), left: MaxChatSize + 1}
	_, err := Parse(r)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// repeatReader returns line over and over, left bytes in all.
type repeatReader struct {
	line string
	left int
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.left > 0 {
		c := copy(p[n:min(len(p), n+r.left)], r.line[r.off:])
		r.off = (r.off + c) % len(r.line)
		n += c
		r.left -= c
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
