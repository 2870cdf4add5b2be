package whatsapp

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Parse reads a chat text file (the .txt of an export) and returns its
// messages. It reads at most MaxChatSize bytes. Errors are *ParseError
// values wrapping ErrEmpty, ErrNotText, ErrNoHeader, ErrTextBeforeHeader,
// ErrBadTimestamp, ErrTooLarge or the reader's error.
func Parse(r io.Reader) (*Chat, error) {
	text, err := readChatText(r, 0)
	if errors.Is(err, ErrTooLarge) {
		return nil, &ParseError{Detail: fmt.Sprintf("the chat file is over %d MiB", MaxChatSize>>20), Err: ErrTooLarge}
	} else if err != nil {
		return nil, &ParseError{Detail: "reading the chat file", Err: err}
	}
	return parse(text)
}

// readChatText reads all of r, at most MaxChatSize bytes (else an error
// wrapping ErrTooLarge). sizeHint, if not 0, is the expected size.
//
// It reads into chunks of growing size and copies them once into the
// result: appending to one buffer would copy a 256 MiB file about five
// times over as the buffer grows.
func readChatText(r io.Reader, sizeHint int64) (string, error) {
	const firstChunk, maxChunk = 64 << 10, 16 << 20
	// A declared size can lie: it sets the first chunk but does not
	// allocate more than maxChunk up front.
	size := firstChunk
	if sizeHint > 0 {
		size = int(min(sizeHint+1, maxChunk))
	}
	var (
		chunks [][]byte
		total  int
	)
	r = io.LimitReader(r, MaxChatSize+1)
	for {
		buf := make([]byte, size)
		n, err := io.ReadFull(r, buf)
		chunks = append(chunks, buf[:n])
		total += n
		if total > MaxChatSize {
			return "", fmt.Errorf("the chat file is over %d MiB: %w", MaxChatSize>>20, ErrTooLarge)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", err
		}
		size = min(2*size, maxChunk)
	}
	if len(chunks) == 1 {
		return string(chunks[0]), nil
	}
	var b strings.Builder
	b.Grow(total)
	for _, c := range chunks {
		b.Write(c)
	}
	return b.String(), nil
}

// utf8BOM is the byte order mark that Windows editors put at the start of
// files they save.
const utf8BOM = "\ufeff"

// parse parses a whole chat file. The messages' strings share memory with
// text where they can.
func parse(text string) (*Chat, error) {
	text = strings.TrimPrefix(text, utf8BOM)
	if strings.TrimSpace(text) == "" {
		return nil, &ParseError{Err: ErrEmpty}
	}
	if err := checkText(text); err != nil {
		return nil, err
	}

	// Pass 1: every line that has the shape of a header.
	var (
		heads        []header
		firstContent int // first line with anything but spaces on it
		lineNo       int
	)
	for off := 0; off < len(text); {
		lineNo++
		end := strings.IndexByte(text[off:], '\n')
		next := len(text)
		if end < 0 {
			end = len(text)
		} else {
			end += off
			next = end + 1
		}
		line := strings.TrimRight(text[off:end], "\r")
		if firstContent == 0 && strings.TrimSpace(line) != "" {
			firstContent = lineNo
		}
		if line != "" && mayStartHeader(line[0]) {
			if h, ok := scanHeader(line); ok {
				h.line, h.off = int32(lineNo), int32(off)
				h.bodyOff += int32(off)
				heads = append(heads, h)
			}
		}
		off = next
		if len(heads) == 0 && lineNo >= MaxPreambleLines {
			break // not an export; no need to read on
		}
	}
	if len(heads) == 0 {
		return nil, &ParseError{Detail: fmt.Sprintf("none in the first %d lines", lineNo), Err: ErrNoHeader}
	}

	// The file's layout is the most common shape; lines of other shapes
	// are text.
	sh := commonShape(heads)
	kept := heads[:0]
	for _, h := range heads {
		if h.shape == sh {
			kept = append(kept, h)
		}
	}
	heads = kept
	if first := int(heads[0].line); first > MaxPreambleLines {
		return nil, &ParseError{Detail: fmt.Sprintf("none in the first %d lines (the first is on line %d)", MaxPreambleLines, first), Err: ErrNoHeader}
	} else if firstContent < first {
		return nil, &ParseError{Line: firstContent, Err: ErrTextBeforeHeader}
	}

	f := inferFormat(heads, sh)
	chat := &Chat{Format: f, Messages: make([]Message, len(heads))}
	ios := f.Platform == IOS

	// Pass 2: times and bodies, and the sender names that end in ": "
	// with nothing like a name after them (see splitSender).
	last := make(map[string]int32)
	for k := range heads {
		h := &heads[k]
		m := &chat.Messages[k]
		m.Line = int(h.line)
		t, ok := h.time(f.Order)
		if !ok {
			return nil, &ParseError{
				Line:   int(h.line),
				Detail: fmt.Sprintf("%q does not fit the layout %s", strings.TrimRight(text[h.off:h.bodyOff], " -"), f.Layout),
				Err:    ErrBadTimestamp,
			}
		}
		m.Time = t
		end := len(text)
		if k+1 < len(heads) {
			end = int(heads[k+1].off)
		}
		body := strings.TrimSuffix(text[h.bodyOff:end], "\n")
		if strings.IndexByte(body, '\r') >= 0 {
			body = dropCRs(body)
		}
		m.Text = body
		if ios && startsWithMark(body) {
			continue // a notice without an author
		}
		first, _, _ := strings.Cut(body, "\n")
		p := strings.LastIndex(first, ": ")
		h.colon = int32(p)
		if p > 0 && p <= MaxSenderBytes {
			last[first[:p]]++
		}
	}

	// Pass 3: senders and kinds.
	for k := range chat.Messages {
		m := &chat.Messages[k]
		body := m.Text
		m.Text = ""
		if ios && startsWithMark(body) {
			m.Kind, m.Text = KindSystem, stripMarks(body)
			continue
		}
		sender, rest, known := splitSender(body, int(heads[k].colon), last)
		sender = stripMarks(sender)
		if sender == "" || !known && opensQuote(sender) {
			m.Kind, m.Text = KindSystem, stripMarks(body)
			continue
		}
		classify(m, rest, ios)
		if m.Kind != KindSystem {
			m.Sender = sender
		}
	}
	return chat, nil
}

// dropCRs removes the carriage returns at the ends of lines.
func dropCRs(s string) string {
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		ls[i] = strings.TrimRight(l, "\r")
	}
	return strings.Join(ls, "\n")
}

// checkText refuses binary files and text that is not UTF-8.
func checkText(text string) error {
	if strings.HasPrefix(text, "\xff\xfe") || strings.HasPrefix(text, "\xfe\xff") {
		return &ParseError{Detail: "the file is UTF-16; WhatsApp writes UTF-8", Err: ErrNotText}
	}
	if i := strings.IndexByte(text, 0); i >= 0 {
		return &ParseError{Line: lineOf(text, i), Detail: "a NUL byte: binary data", Err: ErrNotText}
	}
	if !utf8.ValidString(text) {
		for i, r := range text {
			if r == utf8.RuneError {
				if _, n := utf8.DecodeRuneInString(text[i:]); n == 1 {
					return &ParseError{Line: lineOf(text, i), Detail: "invalid UTF-8", Err: ErrNotText}
				}
			}
		}
	}
	return nil
}

// lineOf returns the 1-based line number of byte offset i in text.
func lineOf(text string, i int) int {
	return strings.Count(text[:i], "\n") + 1
}

// commonShape returns the most common shape, the earliest of equals.
func commonShape(heads []header) shape {
	counts := make(map[shape]int)
	best, bestN := heads[0].shape, 0
	prev := heads[0].shape
	run := 0
	add := func(s shape, n int) {
		counts[s] += n
		if c := counts[s]; c > bestN || c == bestN && s == heads[0].shape {
			best, bestN = s, c
		}
	}
	// Runs of equal shapes are counted at once: the map is touched only
	// where the shape changes.
	for _, h := range heads {
		if h.shape != prev {
			add(prev, run)
			prev, run = h.shape, 0
		}
		run++
	}
	add(prev, run)
	return best
}

// inferFormat decides the date order and describes the layout.
func inferFormat(heads []header, sh shape) Format {
	f := Format{
		Platform:    Android,
		DateSep:     string(sh.dateSep),
		YearDigits:  2,
		Clock12:     sh.period != periodNone,
		PeriodFirst: sh.period == periodBefore,
		Seconds:     sh.seconds,
	}
	if sh.bracket {
		f.Platform = IOS
	}
	if sh.long >= 0 {
		f.YearDigits = 4
	}
	f.Order, f.OrderSource = inferOrder(heads, sh)
	f.Layout = sh.layout(f.Order)
	return f
}

// inferOrder decides the date order of a file. A four-digit year first
// means YMD. Otherwise each candidate order is scored by how many dates
// it makes impossible, then by how often it makes time run backwards from
// one message to the next; the best wins, and a tie falls to the default
// (see OrderDefault).
func inferOrder(heads []header, sh shape) (DateOrder, OrderSource) {
	if sh.long == 0 {
		return YMD, OrderFromYear
	}
	// "yy. M. d." with a trailing dot is the Korean short date; other
	// two-digit years come last.
	koreanStyle := sh.long < 0 && sh.spaced && sh.trailingSep
	orders := []DateOrder{DMY, MDY}
	def := DMY
	switch {
	case koreanStyle:
		orders = append(orders, YMD)
		def = YMD
	case sh.dateSep == '/' && heads[0].upperAM:
		def = MDY
	}
	type score struct{ bad, back int }
	scores := make([]score, len(orders))
	for k, o := range orders {
		var sc score
		prev := 0
		for i := range heads {
			y, m, d := heads[i].ymd(o)
			if !validDate(y, m, d) {
				sc.bad++
				continue
			}
			key := y*10000 + m*100 + d
			if key < prev {
				sc.back++
			}
			prev = key
		}
		scores[k] = sc
	}
	best := -1
	for k := range orders {
		if best < 0 || scores[k].bad < scores[best].bad ||
			scores[k].bad == scores[best].bad && scores[k].back < scores[best].back {
			best = k
		}
	}
	// How certain is it? Count rivals as good on each criterion.
	badTies, backTies := 0, 0
	for k := range orders {
		if scores[k].bad == scores[best].bad {
			badTies++
			if scores[k].back == scores[best].back {
				backTies++
			}
		}
	}
	switch {
	case badTies == 1:
		return orders[best], OrderFromDates
	case backTies == 1:
		return orders[best], OrderFromSequence
	}
	return def, OrderDefault
}

// ymd returns a header's year, month and day in the given order.
func (h *header) ymd(o DateOrder) (y, m, d int) {
	f0, f1, f2 := int(h.f[0]), int(h.f[1]), int(h.f[2])
	switch o {
	case DMY:
		d, m, y = f0, f1, f2
	case MDY:
		m, d, y = f0, f1, f2
	default:
		y, m, d = f0, f1, f2
	}
	if h.shape.long < 0 {
		y += 2000
	}
	return y, m, d
}

// time returns a header's time, or false if the date or time cannot be.
func (h *header) time(o DateOrder) (time.Time, bool) {
	y, m, d := h.ymd(o)
	if !validDate(y, m, d) {
		return time.Time{}, false
	}
	hour := int(h.hour)
	if h.shape.period != periodNone {
		if hour > 12 {
			return time.Time{}, false
		}
		// 12 AM is midnight and 12 PM noon; Japanese clocks count 0 to 11.
		hour %= 12
		if h.pm {
			hour += 12
		}
	} else if hour > 23 {
		return time.Time{}, false
	}
	if h.min > 59 || h.sec > 59 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(m), d, hour, int(h.min), int(h.sec), 0, time.UTC), true
}

// validDate reports whether y-m-d is a day of the Gregorian calendar
// from MinYear on.
func validDate(y, m, d int) bool {
	if y < MinYear || m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= daysIn(y, m)
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// splitSender splits "Name: text" into the name and the text. The name
// ends at a ": " on the first line, within MaxSenderBytes; when there are
// several, the first that is known as a name wins (known is true), else
// the first. sender is "" if there is no ": ".
//
// A prefix is known as a name when it stands, in some other message,
// before the last ": " of that message's first line (last counts those
// messages). This finds names that contain ": " ("Work: Alice: hi") as
// soon as they wrote two messages, yet does not take "location" for part
// of the name in "Ana: location: https://…".
//
// lastP is the offset of the last ": " of the first line, or -1.
func splitSender(body string, lastP int, last map[string]int32) (sender, rest string, known bool) {
	first, _, _ := strings.Cut(body, "\n")
	w := first[:min(len(first), MaxSenderBytes+len(": "))]
	fallback := -1
	for i := 0; ; {
		j := strings.Index(w[i:], ": ")
		if j < 0 {
			break
		}
		p := i + j
		i = p + 1
		if p == 0 {
			continue
		}
		if fallback < 0 {
			fallback = p
		}
		n := last[first[:p]]
		if p == lastP {
			n-- // this message's own vote
		}
		if n > 0 {
			return body[:p], body[p+2:], true
		}
	}
	if fallback < 0 {
		return "", "", false
	}
	return body[:fallback], body[fallback+2:], false
}

// opensQuote reports whether s opens a quotation that it does not close.
// A notice that quotes text with ": " in it (X changed the subject from
// "Plans: May" to …) would otherwise pass for a message from
// `X changed the subject from "Plans`; names do not open quotes.
func opensQuote(s string) bool {
	if strings.Count(s, `"`)%2 == 1 {
		return true
	}
	for _, q := range [...]struct{ open, close string }{
		{"“", "”"}, // English, Dutch, …
		{"„", "“"}, // German, Czech, …
		{"«", "»"}, // French, Spanish, Russian, …
		{"「", "」"}, // Japanese, Chinese
	} {
		if strings.Count(s, q.open) > strings.Count(s, q.close) {
			return true
		}
	}
	return false
}

// classify sets the kind, text and attachment of a message from its body
// (the text after "Sender: ").
func classify(m *Message, body string, ios bool) {
	// Every edited marker ends in '>'.
	for _, e := range editedSuffixes {
		if !strings.HasSuffix(body, ">") {
			break
		}
		if hasSuffixFold(body, e.text) {
			body = strings.TrimRight(body[:len(body)-len(e.text)], " "+lrm+rlm)
			m.Edited = true
			break
		}
	}
	trimmed := strings.TrimSpace(stripMarks(body))
	if equalFoldAny(strings.TrimSuffix(trimmed, "."), deletedBodies) {
		m.Kind = KindDeleted
		return
	}
	if ios {
		classifyIOS(m, body, trimmed)
	} else {
		classifyAndroid(m, body)
	}
}

func classifyAndroid(m *Message, body string) {
	first, rest, _ := strings.Cut(body, "\n")
	first = strings.TrimSpace(stripMarks(first))
	if strings.HasPrefix(first, "<") && equalFoldAny(first, mediaOmittedLines) {
		m.Kind, m.Text = KindMediaOmitted, strings.TrimSpace(stripMarks(rest))
		return
	}
	for _, a := range attachedSuffixes {
		if !strings.HasSuffix(first, ")") {
			break
		}
		if hasSuffixFold(first, a.text) {
			if name := strings.TrimSpace(first[:len(first)-len(a.text)]); name != "" {
				m.Kind, m.Attachment = KindAttachment, name
				m.Text = strings.TrimSpace(stripMarks(rest))
				return
			}
		}
	}
	m.Kind, m.Text = KindText, body
}

func classifyIOS(m *Message, body, trimmed string) {
	// "<attached: NAME>", after U+200E or at the start.
	for _, a := range attachedPrefixes {
		i := strings.Index(body, lrm+a.text)
		if i >= 0 {
			i += len(lrm)
		} else if strings.HasPrefix(body, a.text) {
			i = 0
		} else {
			continue
		}
		nameOff := i + len(a.text)
		j := strings.IndexByte(body[nameOff:], '>')
		if j <= 0 || strings.Contains(body[nameOff:nameOff+j], "\n") {
			continue
		}
		name := stripMarks(body[nameOff : nameOff+j])
		if name == "" {
			continue
		}
		m.Kind, m.Attachment = KindAttachment, name
		m.Text = strings.TrimSpace(stripMarks(body[:i] + body[nameOff+j+1:]))
		return
	}
	// "\u200eimage omitted", maybe after a document's title.
	for _, o := range mediaOmittedSuffixes {
		if hasSuffixFold(body, o.text) && strings.HasSuffix(body[:len(body)-len(o.text)], lrm) {
			m.Kind = KindMediaOmitted
			m.Text = strings.TrimSpace(stripMarks(body[:len(body)-len(o.text)-len(lrm)]))
			return
		}
		if strings.EqualFold(trimmed, o.text) || strings.EqualFold(trimmed, "<"+o.text+">") {
			m.Kind = KindMediaOmitted
			return
		}
	}
	if startsWithMark(body) {
		if isLocation(body) {
			m.Kind, m.Text = KindText, trimLeadingMarks(body)
			return
		}
		m.Kind, m.Text = KindSystem, stripMarks(body)
		return
	}
	m.Kind, m.Text = KindText, body
}

// isLocation reports whether a body that starts with U+200E is a
// location, which is text, rather than a notice.
func isLocation(body string) bool {
	s := trimLeadingMarks(body)
	for _, l := range locationPrefixes {
		if len(s) >= len(l.text) && strings.EqualFold(s[:len(l.text)], l.text) {
			return true
		}
	}
	return strings.Contains(s, mapsLink)
}

// equalFoldAny reports whether s equals one of the markers, ignoring case.
// Lengths are compared first (within a factor of 3, the most that case
// folding changes a UTF-8 length), which makes ordinary messages cheap.
func equalFoldAny(s string, table []marker) bool {
	for _, m := range table {
		if len(s) <= 3*len(m.text) && len(m.text) <= 3*len(s) && strings.EqualFold(s, m.text) {
			return true
		}
	}
	return false
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// startsWithMark reports whether s starts with U+200E or U+200F.
func startsWithMark(s string) bool {
	return strings.HasPrefix(s, lrm) || strings.HasPrefix(s, rlm)
}

func trimLeadingMarks(s string) string {
	for startsWithMark(s) {
		s = s[len(lrm):]
	}
	return s
}

// isMark reports whether r is one of the directional formatting
// characters that names and notices lose: U+200E, U+200F, U+202A–U+202E
// and U+2066–U+2069.
func isMark(r rune) bool {
	return r == '\u200e' || r == '\u200f' || r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// stripMarks removes the directional formatting characters from s.
func stripMarks(s string) string {
	// All of them are encoded as E2 80 xx or E2 81 xx.
	i := strings.IndexByte(s, 0xE2)
	if i < 0 {
		return s
	}
	has := false
	for _, r := range s[i:] {
		if isMark(r) {
			has = true
			break
		}
	}
	if !has {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isMark(r) {
			return -1
		}
		return r
	}, s)
}
