package whatsapp

import (
	"strings"
)

// Directional formatting characters that WhatsApp puts into exports.
const (
	lrm = "\u200e" // LEFT-TO-RIGHT MARK: before iOS media lines and notices
	rlm = "\u200f" // RIGHT-TO-LEFT MARK: the same in right-to-left UI languages
)

// Values of shape.joiner below 0; values from 0 index dateTimeJoiners.
const (
	joinSpace = -2 // "27/03/2024 19:40"
	joinComma = -1 // "27/03/2024, 19:40"
)

// Values of shape.period.
const (
	periodNone   = 0
	periodBefore = 1 // "오후 7:40", "下午7:40"
	periodAfter  = 2 // "7:40 PM"
)

// shape is the layout of a header line, without its values: every header
// of one export has the same shape, and a line of another shape is text.
type shape struct {
	bracket     bool // iOS "[…] "; else Android " - "
	dateSep     byte // '/', '.' or '-'
	spaced      bool // a space after each date separator: "23. 10. 28."
	trailingSep bool // a separator after the last date field: "23. 10. 28."
	joiner      int8 // joinSpace, joinComma or an index into dateTimeJoiners
	period      int8 // periodNone, periodBefore or periodAfter
	timeSep     byte // ':' or '.'
	seconds     bool
	long        int8 // the date field with four digits: 0 or 2, or -1 for none
}

// header is a line that has the shape of a message header.
//
// It is kept small (offsets fit in int32 since MaxChatSize does): a file
// of short messages has one per line.
type header struct {
	line    int32    // 1-based line number
	off     int32    // offset of the line in the file
	bodyOff int32    // offset of the text after the header
	colon   int32    // offset in the body of the last ": " of its first line, or -1
	f       [3]int16 // the date's fields in file order
	hour    int8     // as written (12-hour clocks: 0 to 12)
	min     int8
	sec     int8
	pm      bool // a day-period marker for the afternoon
	upperAM bool // the marker is exactly "AM" or "PM" (en-US)
	shape   shape
}

// spaceAt returns the length in bytes of the space character at s[i]: a
// normal space, U+00A0 NO-BREAK SPACE or U+202F NARROW NO-BREAK SPACE, or 0.
func spaceAt(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	switch s[i] {
	case ' ':
		return 1
	case 0xC2:
		if i+1 < len(s) && s[i+1] == 0xA0 {
			return 2
		}
	case 0xE2:
		if i+2 < len(s) && s[i+1] == 0x80 && s[i+2] == 0xAF {
			return 3
		}
	}
	return 0
}

// digits reads a run of ASCII digits at s[i] and returns its value and
// length; a run longer than max is no number (length 0).
func digits(s string, i, max int) (v, n int) {
	for i+n < len(s) && s[i+n] >= '0' && s[i+n] <= '9' {
		if n == max {
			return 0, 0
		}
		v = v*10 + int(s[i+n]-'0')
		n++
	}
	return v, n
}

// matchPeriod matches a day-period marker at s[i] and returns its length
// in bytes (0 for none), whether it is the afternoon, and whether it is
// exactly "AM" or "PM". Of several matching markers the longest wins. The
// marker must not run on into a letter.
func matchPeriod(s string, i int) (n int, pm, upper bool) {
	for _, p := range dayPeriods {
		m := matchMarker(s, i, p.text)
		if m <= n {
			continue
		}
		if j := i + m; j < len(s) && isASCIILetter(s[j]) {
			continue
		}
		n, pm = m, p.pm
		upper = s[i:i+m] == "AM" || s[i:i+m] == "PM"
	}
	return n, pm, upper
}

// matchMarker returns the length of the match of pattern at s[i], or 0.
// A space in pattern matches any space that spaceAt knows; ASCII letters
// match ignoring case; other bytes must be equal.
func matchMarker(s string, i int, pattern string) int {
	start := i
	for k := 0; k < len(pattern); k++ {
		c := pattern[k]
		if c == ' ' {
			n := spaceAt(s, i)
			if n == 0 {
				return 0
			}
			i += n
			continue
		}
		if i >= len(s) {
			return 0
		}
		if s[i] != c && !(isASCIILetter(c) && s[i]|0x20 == c|0x20) {
			return 0
		}
		i++
	}
	return i - start
}

func isASCIILetter(c byte) bool {
	c |= 0x20
	return c >= 'a' && c <= 'z'
}

// mayStartHeader reports whether a line starting with byte c can be a
// header: a digit, '[' or the first byte of U+200E/U+200F. It lets the
// scanner skip most continuation lines at once.
func mayStartHeader(c byte) bool {
	return c >= '0' && c <= '9' || c == '[' || c == 0xE2
}

// scanHeader reads a header at the start of line (without its line
// ending). It checks the shape only; values are checked once the file's
// layout is known.
func scanHeader(line string) (h header, ok bool) {
	s := line
	i := 0
	for strings.HasPrefix(s[i:], lrm) || strings.HasPrefix(s[i:], rlm) {
		i += len(lrm)
	}
	if i < len(s) && s[i] == '[' {
		h.shape.bracket = true
		i++
	}

	// The date: three numbers with one separator, maybe spaced.
	var nd [3]int
	for k := 0; k < 3; k++ {
		if k > 0 {
			if i >= len(s) {
				return h, false
			}
			c := s[i]
			if k == 1 {
				if c != '/' && c != '.' && c != '-' {
					return h, false
				}
				h.shape.dateSep = c
			} else if c != h.shape.dateSep {
				return h, false
			}
			i++
			n := spaceAt(s, i)
			if k == 1 {
				h.shape.spaced = n > 0
			} else if (n > 0) != h.shape.spaced {
				return h, false
			}
			i += n
		}
		v, n := digits(s, i, 4)
		if n == 0 || n == 3 {
			return h, false
		}
		h.f[k], nd[k] = int16(v), n
		i += n
	}
	switch {
	case nd[0] <= 2 && nd[1] <= 2 && nd[2] <= 2:
		h.shape.long = -1
	case nd[0] == 4 && nd[1] <= 2 && nd[2] <= 2:
		h.shape.long = 0
	case nd[2] == 4 && nd[0] <= 2 && nd[1] <= 2:
		h.shape.long = 2
	default:
		return h, false
	}
	if h.shape.dateSep == '.' && i < len(s) && s[i] == '.' {
		h.shape.trailingSep = true
		i++
	}

	// Between date and time: ", ", " " or " word ".
	if i < len(s) && s[i] == ',' {
		i++
		h.shape.joiner = joinComma
	} else {
		h.shape.joiner = joinSpace
	}
	n := spaceAt(s, i)
	if n == 0 {
		return h, false
	}
	i += n
	if h.shape.joiner == joinSpace {
		for k, j := range dateTimeJoiners {
			if strings.HasPrefix(s[i:], j.text) {
				if n := spaceAt(s, i+len(j.text)); n > 0 {
					h.shape.joiner = int8(k)
					i += len(j.text) + n
					break
				}
			}
		}
	}

	// The time, with a day-period marker before or after it.
	if i < len(s) && (s[i] < '0' || s[i] > '9') {
		if n, pm, up := matchPeriod(s, i); n > 0 {
			h.shape.period = periodBefore
			h.pm, h.upperAM = pm, up
			i += n
			i += spaceAt(s, i)
		}
	}
	v, n := digits(s, i, 2)
	if n == 0 {
		return h, false
	}
	h.hour = int8(v)
	i += n
	if i >= len(s) || (s[i] != ':' && s[i] != '.') {
		return h, false
	}
	h.shape.timeSep = s[i]
	i++
	if v, n = digits(s, i, 2); n != 2 {
		return h, false
	}
	h.min = int8(v)
	i += n
	if i < len(s) && s[i] == h.shape.timeSep {
		if v, n = digits(s, i+1, 2); n != 2 {
			return h, false
		}
		h.sec = int8(v)
		h.shape.seconds = true
		i += 1 + n
	}
	if h.shape.period == periodNone {
		if sp := spaceAt(s, i); sp > 0 {
			if n, pm, up := matchPeriod(s, i+sp); n > 0 {
				h.shape.period = periodAfter
				h.pm, h.upperAM = pm, up
				i += sp + n
			}
		}
	}

	// The end: "] " on iOS, " - " on Android.
	if h.shape.bracket {
		if i >= len(s) || s[i] != ']' {
			return h, false
		}
		i++
		if i < len(s) && s[i] == ' ' {
			i++
		}
	} else {
		sp := spaceAt(s, i)
		if sp == 0 || i+sp >= len(s) || s[i+sp] != '-' {
			return h, false
		}
		i += sp + 1
		if i < len(s) {
			sp = spaceAt(s, i)
			if sp == 0 {
				return h, false
			}
			i += sp
		}
	}
	h.bodyOff = int32(i)
	return h, true
}

// layout writes the pattern of a shape in the given date order, for
// Format.Layout: "[D/M/YYYY, H:MM:SS]", "M/D/YY, h:MM a -".
func (sh shape) layout(order DateOrder) string {
	var b strings.Builder
	if sh.bracket {
		b.WriteByte('[')
	}
	year := "YY"
	if sh.long >= 0 {
		year = "YYYY"
	}
	for k, c := range string(order) {
		if k > 0 {
			b.WriteByte(sh.dateSep)
			if sh.spaced {
				b.WriteByte(' ')
			}
		}
		if c == 'Y' {
			b.WriteString(year)
		} else {
			b.WriteRune(c)
		}
	}
	if sh.trailingSep {
		b.WriteByte(sh.dateSep)
	}
	switch {
	case sh.joiner == joinComma:
		b.WriteString(", ")
	case sh.joiner == joinSpace:
		b.WriteByte(' ')
	default:
		b.WriteString(" " + dateTimeJoiners[sh.joiner].text + " ")
	}
	hour := "H"
	if sh.period != periodNone {
		hour = "h"
	}
	if sh.period == periodBefore {
		b.WriteString("a ")
	}
	b.WriteString(hour)
	b.WriteByte(sh.timeSep)
	b.WriteString("MM")
	if sh.seconds {
		b.WriteByte(sh.timeSep)
		b.WriteString("SS")
	}
	if sh.period == periodAfter {
		b.WriteString(" a")
	}
	if sh.bracket {
		b.WriteByte(']')
	} else {
		b.WriteString(" -")
	}
	return b.String()
}
