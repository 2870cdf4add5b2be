package subpoena

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Limits of the searcher, each with its reason.
const (
	// minNeedle is the shortest byte string searched for: a shorter one
	// (a 4-byte IPv4 address, say) turns up by chance in megabytes of
	// ciphertext often enough to make the test flaky. Every canary,
	// key and id, and every encoding of them, is longer.
	minNeedle = 8
	// prefixLen is how many leading bytes of a needle index it; it must
	// not exceed minNeedle.
	prefixLen = 4
	// contextBytes is how much of the haystack on each side of a match
	// a finding quotes, so that a reader sees what held it.
	contextBytes = 80
	// maxShownFindings bounds the findings a failure prints (all are
	// counted): a leak in every log line would otherwise bury the rest.
	maxShownFindings = 200
)

// needleKind says what a match means.
type needleKind int

const (
	// secret: something the server must never hold (a canary, a key
	// that stays on clients, an IP address, a user agent). Every
	// match is a finding unless the needle's allow says otherwise.
	secret needleKind = iota
	// account: an account id. Alone it is allowed; two different ones
	// in one row or log line are a pair.
	account
)

// needle is one byte string searched for.
type needle struct {
	b    []byte
	what string // what was found, for the report: `canary "…" as hex`
	kind needleKind
	// id is the account's index (kind account).
	id int
	// digits: the match must not continue a number on either side (an
	// IP address as text: 127.0.0.1 is not in 127.0.0.12).
	digits bool
	// allow, if set, says whether the match at off in hay is one the
	// server may hold (its configured listen address, say).
	allow func(hay []byte, off int) bool
}

// form is one encoding of a value.
type form struct {
	name string
	b    []byte
}

// encodings returns v as a store or a log might hold it: raw, hex in
// lower and upper case, and base64 with the standard and URL alphabets,
// padded or not. A value inside a longer base64 text is encoded
// differently depending on its offset modulo 3, so for each of the three
// alignments the characters that depend on v alone are taken (those
// mixing in neighbouring bytes, or padding, are left off). Forms shorter
// than minNeedle and duplicates are dropped.
func encodings(v []byte) []form {
	out := []form{{"as is", v}}
	out = append(out, form{"as hex", []byte(hex.EncodeToString(v))},
		form{"as upper-case hex", []byte(strings.ToUpper(hex.EncodeToString(v)))})
	for _, enc := range []struct {
		name string
		e    *base64.Encoding
	}{{"base64", base64.RawStdEncoding}, {"base64url", base64.RawURLEncoding}} {
		for shift := range 3 {
			s := enc.e.EncodeToString(append(make([]byte, shift), v...))
			// Character k holds bits [6k, 6k+6); v's bits are
			// [8·shift, 8·(shift+len(v))).
			lo, hi := (8*shift+5)/6, 8*(shift+len(v))/6
			if hi <= lo {
				continue
			}
			out = append(out, form{fmt.Sprintf("as %s (alignment %d)", enc.name, shift), []byte(s[lo:hi])})
		}
	}
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(f form) bool {
		drop := len(f.b) < minNeedle || seen[string(f.b)]
		seen[string(f.b)] = true
		return drop
	})
}

// uuidForm returns a 16-byte id as a UUID string (8-4-4-4-12 hex).
func uuidForm(id []byte) string {
	h := hex.EncodeToString(id)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// matcher finds many needles in one pass over a haystack: needles are
// indexed by their first prefixLen bytes, with a bitmap of their first
// two bytes in front of the map.
type matcher struct {
	first2   []bool // 1<<16 entries
	byPrefix map[uint32][]*needle
	count    int
}

func newMatcher(ns []*needle) *matcher {
	m := &matcher{first2: make([]bool, 1<<16), byPrefix: map[uint32][]*needle{}}
	for _, n := range ns {
		if len(n.b) < minNeedle {
			panic(fmt.Sprintf("subpoena: needle %q is shorter than %d bytes", n.what, minNeedle))
		}
		m.first2[binary.LittleEndian.Uint16(n.b)] = true
		k := binary.LittleEndian.Uint32(n.b)
		m.byPrefix[k] = append(m.byPrefix[k], n)
		m.count++
	}
	return m
}

// scan calls hit for every match in hay.
func (m *matcher) scan(hay []byte, hit func(off int, n *needle)) {
	for i := 0; i+prefixLen <= len(hay); i++ {
		if !m.first2[binary.LittleEndian.Uint16(hay[i:])] {
			continue
		}
		for _, n := range m.byPrefix[binary.LittleEndian.Uint32(hay[i:])] {
			if !bytes.HasPrefix(hay[i:], n.b) {
				continue
			}
			if n.digits && (i > 0 && isDigit(hay[i-1]) || i+len(n.b) < len(hay) && isDigit(hay[i+len(n.b)])) {
				continue
			}
			hit(i, n)
		}
	}
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// cell is one searched value: a column of a row, a log line, a file.
type cell struct {
	name string // the column, or "" for a unit with one cell
	b    []byte
}

// unit is what one finding points into: a row, a log line, a file. Its
// account ids are gathered over all its cells.
type unit struct {
	where string // "sqlite table devices, row 3", "log line 12", "file sotto.db"
	cells []cell
	// pairs: two accounts in this unit are a finding unless pairOK
	// names the reason they may be together.
	pairs  bool
	pairOK string
}

// finding is something the server holds that it must not.
type finding struct {
	where, what string
}

func (f finding) String() string { return f.where + ": " + f.what }

// searcher holds the needles of one workload.
type searcher struct {
	m        *matcher
	accounts []string // names of the account ids, by needle id
}

// newSearcher builds the needles: every secret value in every encoding;
// every IP address as text (digit-bounded) and as an IPv4-mapped
// 16-byte address; every account id in every encoding and as a UUID.
func newSearcher(u *used) *searcher {
	var ns []*needle
	addSecret := func(what string, v []byte, allow func([]byte, int) bool) {
		for _, f := range encodings(v) {
			ns = append(ns, &needle{b: f.b, what: what + " " + f.name, kind: secret, allow: allow})
		}
	}
	for _, c := range u.canaries {
		addSecret(fmt.Sprintf("%s %q", c.what, c.value), []byte(c.value), nil)
	}
	for _, s := range u.secrets {
		addSecret(s.what, s.value, nil)
	}
	for _, ua := range u.agents {
		addSecret(fmt.Sprintf("user agent %q", ua), []byte(ua), nil)
	}
	for _, ip := range u.ips {
		for _, f := range encodings([]byte(ip)) {
			n := &needle{b: f.b, what: fmt.Sprintf("IP address %s %s", ip, f.name), kind: secret}
			if f.name == "as is" {
				// As text: whole numbers only, and the configured
				// addresses allowed.
				n.digits, n.allow = true, u.allowAddr(ip)
			}
			ns = append(ns, n)
		}
		if a, err := netip.ParseAddr(ip); err == nil {
			b16 := netip.AddrFrom16(a.As16()).AsSlice()
			ns = append(ns, &needle{b: b16, what: fmt.Sprintf("IP address %s as 16 bytes", ip), kind: secret})
		}
	}
	s := &searcher{}
	for i, a := range u.accounts {
		name := fmt.Sprintf("account %d (%s)", i, a.name)
		s.accounts = append(s.accounts, name)
		forms := encodings(a.id[:])
		forms = append(forms, form{"as a UUID", []byte(uuidForm(a.id[:]))},
			form{"as an upper-case UUID", []byte(strings.ToUpper(uuidForm(a.id[:])))})
		for _, f := range forms {
			ns = append(ns, &needle{b: f.b, what: name + " " + f.name, kind: account, id: i})
		}
	}
	s.m = newMatcher(ns)
	return s
}

// search returns the findings in units.
func (s *searcher) search(units []unit) []finding {
	var out []finding
	for _, u := range units {
		accounts := map[int]string{} // id → the column it was found in
		for _, c := range u.cells {
			s.m.scan(c.b, func(off int, n *needle) {
				switch n.kind {
				case secret:
					if n.allow != nil && n.allow(c.b, off) {
						return
					}
					where := u.where
					if c.name != "" {
						where += ", column " + c.name
					}
					lo, hi := max(0, off-contextBytes), min(len(c.b), off+len(n.b)+contextBytes)
					out = append(out, finding{fmt.Sprintf("%s, offset %d", where, off), fmt.Sprintf("%s in %q", n.what, c.b[lo:hi])})
				case account:
					if _, ok := accounts[n.id]; !ok {
						accounts[n.id] = c.name
					}
				}
			})
		}
		if !u.pairs || len(accounts) < 2 || u.pairOK != "" {
			continue
		}
		ids := make([]int, 0, len(accounts))
		for id := range accounts {
			ids = append(ids, id)
		}
		sort.Ints(ids)
		var names []string
		for _, id := range ids {
			n := s.accounts[id]
			if col := accounts[id]; col != "" {
				n += " in column " + col
			}
			names = append(names, n)
		}
		what := "two accounts together (a sender–recipient pair): " + strings.Join(names, ", ")
		if len(u.cells) == 1 {
			b := u.cells[0].b
			what += fmt.Sprintf(" in %q", b[:min(len(b), 4*contextBytes)])
		}
		out = append(out, finding{u.where, what})
	}
	return out
}

// TestEncodingsFindEmbeddedValues: a value inside longer text, encoded
// as a whole at any offset, is found in each encoding.
func TestEncodingsFindEmbeddedValues(t *testing.T) {
	v := []byte("canary 7f3a: the server must not hold this")
	u := &used{canaries: []canary{{"test canary", string(v)}}}
	s := newSearcher(u)
	for shift := range 6 {
		whole := append(append(bytes.Repeat([]byte{0xa5}, shift), v...), "and after"...)
		for _, tc := range []struct {
			name string
			hay  string
		}{
			{"raw", string(whole)},
			{"hex", hex.EncodeToString(whole)},
			{"HEX", strings.ToUpper(hex.EncodeToString(whole))},
			{"base64", base64.StdEncoding.EncodeToString(whole)},
			{"base64 raw", base64.RawStdEncoding.EncodeToString(whole)},
			{"base64url", base64.URLEncoding.EncodeToString(whole)},
			{"json", fmt.Sprintf(`{"msg":"x","v":%q}`, base64.StdEncoding.EncodeToString(whole))},
		} {
			got := s.search([]unit{{where: "test", cells: []cell{{b: []byte(tc.hay)}}}})
			if len(got) == 0 {
				t.Errorf("shift %d, %s: not found in %q", shift, tc.name, tc.hay)
			}
		}
	}
	if got := s.search([]unit{{where: "test", cells: []cell{{b: []byte("nothing to see here, canary 7f3b")}}}}); len(got) != 0 {
		t.Errorf("found %v in clean text", got)
	}
}

// TestPairsAndAddresses: two accounts in one unit are a pair in any
// encoding mix; one is not; an IP address is matched only whole, and an
// allowed occurrence is not a finding.
func TestPairsAndAddresses(t *testing.T) {
	a, b := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, [16]byte{0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f}
	u := &used{
		accounts:  []usedAccount{{name: "a", id: a}, {name: "b", id: b}},
		ips:       []string{"127.0.0.1", "203.0.113.77"},
		listen:    []string{"127.0.0.1:8080"},
		canaries:  nil,
		secrets:   nil,
		agents:    nil,
		usernames: nil,
	}
	s := newSearcher(u)
	one := func(cells ...string) unit {
		un := unit{where: "row", pairs: true}
		for i, c := range cells {
			un.cells = append(un.cells, cell{name: fmt.Sprint(i), b: []byte(c)})
		}
		return un
	}
	for _, tc := range []struct {
		name string
		u    unit
		want int
	}{
		{"one account, raw and hex", one(string(a[:]), hex.EncodeToString(a[:])), 0},
		{"raw and hex", one(string(a[:]), "to "+hex.EncodeToString(b[:])), 1},
		{"uuid and base64 in one line", one(`{"from":"` + uuidForm(a[:]) + `","to":"` + base64.StdEncoding.EncodeToString(append([]byte{9}, b[:]...)) + `"}`), 1},
		{"pair allowed", unit{where: "row", pairs: true, pairOK: "test", cells: []cell{{b: append(a[:], b[:]...)}}}, 0},
		{"pairs not checked", unit{where: "file", cells: []cell{{b: append(a[:], b[:]...)}}}, 0},
		{"listen address", one(`"addr":"127.0.0.1:8080"`), 0},
		{"a client address", one(`"peer":"127.0.0.1:53122"`), 1},
		{"a bare address", one(`source 127.0.0.1 limited`), 1},
		{"a longer address", one(`127.0.0.12 and 1127.0.0.1`), 0},
		{"forwarded address", one(`x-forwarded-for: 203.0.113.77`), 1},
		{"forwarded address in hex", one(hex.EncodeToString([]byte("203.0.113.77"))), 1},
		{"forwarded address as 16 bytes", one(string(netip.MustParseAddr("::ffff:203.0.113.77").AsSlice())), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.search([]unit{tc.u}); len(got) != tc.want {
				t.Errorf("%d findings, want %d: %v", len(got), tc.want, got)
			}
		})
	}
}
