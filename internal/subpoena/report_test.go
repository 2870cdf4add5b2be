package subpoena

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/argon2"
)

// pairAllowed names the tables whose rows may hold two accounts, with
// the reason. None may: sealed sender keeps the sender out of every
// envelope, and no table pairs a sender with a recipient. A table that
// needs two accounts in one row must be argued for here, and in
// docs/what-the-server-stores.md, before this test passes again.
var pairAllowed = map[string]string{}

// Shapes the classifier recognizes, from internal/keys and the client
// package; a value of another shape is reported as opaque bytes.
const (
	ecKeyLen     = 33   // 0x05 ‖ Curve25519 u-coordinate
	ecKeyType    = 0x05 // keys.TypeDJB
	kemKeyLen    = 1569 // type ‖ Kyber-1024 or ML-KEM-1024 public key
	kyberType    = 0x08 // keys.Kyber1024
	mlkemType    = 0x0A // keys.MLKEM1024
	signatureLen = 64   // XEdDSA
	// The client's username hash (client/username.go): Argon2id with
	// this salt and cost. If they change, username_hash shows as 32
	// opaque bytes, which is still allowed.
	usernameSalt      = "sotto username v1"
	usernameArgonTime = 2
	usernameArgonMem  = 19 << 10
	usernameHashLen   = 32
	// timeWindow: an integer this close to now, read as seconds,
	// milliseconds, microseconds or nanoseconds since 1970, is a time
	// finer than a day. Days since 1970 (about 20,000) and the
	// workload's counters and ids are far from every such range.
	timeWindow = 2 * 24 * time.Hour
)

// timeText matches a date with a time of day in text.
var timeText = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}`)

// classifier names what a value is, knowing the workload.
type classifier struct {
	accounts       map[string]bool
	usernameHashes map[string]bool
	accessKeys     map[string]bool
	today          int64 // days since 1970
	retentionDays  int64
	now            time.Time
}

func newClassifier(u *used, retention time.Duration, now time.Time) *classifier {
	c := &classifier{accounts: map[string]bool{}, usernameHashes: map[string]bool{}, accessKeys: map[string]bool{},
		today: now.Unix() / 86400, retentionDays: int64(retention / (24 * time.Hour)), now: now}
	for _, a := range u.accounts {
		c.accounts[string(a.id[:])] = true
	}
	for _, n := range u.usernames {
		c.usernameHashes[string(argon2.IDKey([]byte(n), []byte(usernameSalt), usernameArgonTime, usernameArgonMem, 1, usernameHashLen))] = true
	}
	for _, k := range u.accessKeys {
		c.accessKeys[string(k)] = true
	}
	return c
}

// column is what one column holds.
type column struct {
	name   string
	nulls  int
	kinds  map[string]int // of byte and text values
	ints   []int64
	floats int
	other  map[string]int // values of other Go types
}

// describe summarizes a column for the report.
func (c *classifier) describe(col *column) string {
	var parts []string
	if len(col.ints) > 0 {
		lo, hi := slices.Min(col.ints), slices.Max(col.ints)
		if lo >= c.today-1 && hi <= c.today+c.retentionDays+1 {
			var days []string
			seen := map[int64]bool{}
			for _, v := range col.ints {
				if !seen[v] {
					seen[v] = true
					days = append(days, dayName(v-c.today))
				}
			}
			sort.Strings(days)
			parts = append(parts, "day ("+strings.Join(days, ", ")+")")
		} else if lo == hi {
			parts = append(parts, "number "+strconv.FormatInt(lo, 10))
		} else {
			parts = append(parts, fmt.Sprintf("number %d–%d", lo, hi))
		}
	}
	keys := make([]string, 0, len(col.kinds))
	for k := range col.kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts = append(parts, keys...)
	for k, n := range col.other {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
	}
	if col.floats > 0 {
		parts = append(parts, fmt.Sprintf("real number ×%d", col.floats))
	}
	if col.nulls > 0 {
		parts = append(parts, fmt.Sprintf("NULL ×%d", col.nulls))
	}
	if len(parts) == 0 {
		return "(no rows)"
	}
	return strings.Join(parts, "; ")
}

func dayName(offset int64) string {
	switch {
	case offset == 0:
		return "today"
	case offset > 0:
		return fmt.Sprintf("today+%d", offset)
	default:
		return fmt.Sprintf("today%d", offset)
	}
}

// kindOf names a byte value.
func (c *classifier) kindOf(b []byte) string {
	switch {
	case c.accounts[string(b)]:
		return "account id"
	case c.usernameHashes[string(b)]:
		return fmt.Sprintf("username hash (Argon2id, %d B)", len(b))
	case c.accessKeys[string(b)]:
		return fmt.Sprintf("unidentified access key (%d B)", len(b))
	case len(b) == ecKeyLen && b[0] == ecKeyType:
		return fmt.Sprintf("EC public key (%d B)", len(b))
	case len(b) == kemKeyLen && (b[0] == kyberType || b[0] == mlkemType):
		return fmt.Sprintf("KEM public key (%s B)", thousands(len(b)))
	case len(b) == signatureLen:
		return fmt.Sprintf("signature (%d B)", len(b))
	}
	return "opaque bytes"
}

// classify reads a table's columns, and returns the findings of times
// finer than a day.
func (c *classifier) classify(mode string, t table) ([]*column, []finding) {
	cols := make([]*column, len(t.columns))
	for i, n := range t.columns {
		cols[i] = &column{name: n, kinds: map[string]int{}, other: map[string]int{}}
	}
	opaque := make([][2]int, len(cols)) // byte length range of opaque values
	var out []finding
	for r, row := range t.rows {
		where := func(i int) string {
			return fmt.Sprintf("%s table %s, row %d, column %s", mode, t.name, r+1, t.columns[i])
		}
		for i, v := range row {
			col := cols[i]
			switch v := v.(type) {
			case nil:
				col.nulls++
			case []byte:
				k := c.kindOf(v)
				if k == "opaque bytes" {
					if col.kinds[k] == 0 || len(v) < opaque[i][0] {
						opaque[i][0] = len(v)
					}
					opaque[i][1] = max(opaque[i][1], len(v))
				}
				col.kinds[k]++
			case string:
				col.kinds["text"]++
				if timeText.MatchString(v) {
					out = append(out, finding{where(i), fmt.Sprintf("a time of day in text: %q", v)})
				}
			case int64, int32, int16, int8, int:
				n := reflectInt(v)
				col.ints = append(col.ints, n)
				if s := c.timeScale(n); s != "" {
					out = append(out, finding{where(i), fmt.Sprintf("a time: %d, read as %s since 1970", n, s)})
				}
			case float64, float32:
				col.floats++
				f := reflectFloat(v)
				if s := c.timeScale(int64(math.Round(f))); s != "" {
					out = append(out, finding{where(i), fmt.Sprintf("a time: %v, read as %s since 1970", f, s)})
				}
			case time.Time:
				col.other["time"]++
				out = append(out, finding{where(i), fmt.Sprintf("a time: %v", v)})
			default:
				col.other[fmt.Sprintf("%T", v)]++
			}
		}
	}
	// Fold the opaque byte counts into one kind with their size range.
	for i, col := range cols {
		if n := col.kinds["opaque bytes"]; n > 0 {
			delete(col.kinds, "opaque bytes")
			size := thousands(opaque[i][0])
			if opaque[i][1] != opaque[i][0] {
				size += "–" + thousands(opaque[i][1])
			}
			col.kinds["opaque bytes ("+size+" B)"] = n
		}
	}
	return cols, out
}

func reflectInt(v any) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int16:
		return int64(v)
	case int8:
		return int64(v)
	case int:
		return int64(v)
	}
	panic(fmt.Sprintf("not an integer: %T", v))
}

func reflectFloat(v any) float64 {
	if f, ok := v.(float32); ok {
		return float64(f)
	}
	return v.(float64)
}

// timeScale says in which unit n reads as a time near now, or "".
func (c *classifier) timeScale(n int64) string {
	lo, hi := c.now.Add(-timeWindow), c.now.Add(timeWindow)
	for _, s := range []struct {
		name string
		f    func(time.Time) int64
	}{
		{"seconds", time.Time.Unix},
		{"milliseconds", time.Time.UnixMilli},
		{"microseconds", time.Time.UnixMicro},
		{"nanoseconds", time.Time.UnixNano},
	} {
		if n >= s.f(lo) && n <= s.f(hi) {
			return s.name
		}
	}
	return ""
}

// thousands formats n with commas.
func thousands(n int) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// report writes what the server holds, table by table, and the findings.
func report(h *holding, c *classifier, findings []finding, elapsed time.Duration) (string, []finding) {
	var b strings.Builder
	fmt.Fprintf(&b, "subpoena (%s): what the server holds after the workload\n\n", h.mode)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "table\trows\tcolumn\tholds")
	var times []finding
	for _, ts := range [][]table{h.tables, h.queue} {
		for _, t := range ts {
			cols, tf := c.classify(h.mode, t)
			times = append(times, tf...)
			if len(t.rows) == 0 {
				fmt.Fprintf(tw, "%s\t0\t\tno rows (columns %s)\n", t.name, strings.Join(t.columns, ", "))
				continue
			}
			for i, col := range cols {
				name, rows := "", ""
				if i == 0 {
					name, rows = t.name, thousands(len(t.rows))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, rows, col.name, c.describe(col))
			}
		}
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nfiles (raw bytes searched; \"running\" while sottod ran, \"stopped\" after, where they differ):\n")
	width := 0
	for _, f := range h.files {
		width = max(width, len(f.name))
	}
	for _, f := range h.files {
		fmt.Fprintf(&b, "  %-*s %11s B\n", width, f.name, thousands(len(f.data)))
	}
	levels := map[string]int{}
	for _, l := range h.logs {
		var rec struct{ Level string }
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Level == "" {
			rec.Level = "not JSON"
		}
		levels[rec.Level]++
	}
	var ls []string
	for _, lv := range []string{"DEBUG", "INFO", "WARN", "ERROR", "not JSON"} {
		if levels[lv] > 0 {
			ls = append(ls, fmt.Sprintf("%s %d", lv, levels[lv]))
		}
	}
	fmt.Fprintf(&b, "\nlog: %d lines (%s)\n", len(h.logs), strings.Join(ls, ", "))
	fmt.Fprintf(&b, "/metrics: %d lines\n", len(h.metrics))
	for _, f := range h.config {
		fmt.Fprintf(&b, "configuration: %s (%s B)\n", f.name, thousands(len(f.data)))
	}
	all := append(append([]finding(nil), findings...), times...)
	fmt.Fprintf(&b, "\nsubpoena (%s): %d tables, %s rows, %d findings (%.1f s)\n", h.mode, len(h.tables), thousands(h.rowCount()), len(all), elapsed.Seconds())
	return b.String(), all
}

// docPath is the documentation the database must match.
const docPath = "../../docs/what-the-server-stores.md"

// doc is what docs/what-the-server-stores.md names: each database table
// (a "## name" section with a table whose first header is Column, whose
// rows name columns in backquotes) and the data directory's files (a
// table whose first header is Path).
type doc struct {
	tables map[string]map[string]bool
	paths  []string
}

var backquoted = regexp.MustCompile("`([^`]+)`")

// parseDoc reads the documentation's structure.
func parseDoc(text string) (*doc, error) {
	d := &doc{tables: map[string]map[string]bool{}}
	var heading string
	ls := strings.Split(text, "\n")
	cells := func(l string) []string {
		l = strings.TrimSpace(l)
		l = strings.TrimPrefix(strings.TrimSuffix(l, "|"), "|")
		out := strings.Split(l, "|")
		for i := range out {
			out[i] = strings.TrimSpace(out[i])
		}
		return out
	}
	isSep := regexp.MustCompile(`^\|[\s:|-]+\|$`)
	for i := 0; i < len(ls); i++ {
		l := ls[i]
		if h, ok := strings.CutPrefix(l, "## "); ok {
			heading = strings.Trim(strings.TrimSpace(h), "`")
			continue
		}
		if !strings.HasPrefix(l, "|") || i+1 >= len(ls) || !isSep.MatchString(strings.TrimSpace(ls[i+1])) {
			continue
		}
		header := cells(l)[0]
		i += 2
		var first []string
		for ; i < len(ls) && strings.HasPrefix(ls[i], "|"); i++ {
			first = append(first, cells(ls[i])[0])
		}
		switch header {
		case "Column":
			if !regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(heading) {
				return nil, fmt.Errorf("a Column table under %q: the heading must be the table's name", heading)
			}
			if d.tables[heading] != nil {
				return nil, fmt.Errorf("table %s is described twice", heading)
			}
			cols := map[string]bool{}
			for _, c := range first {
				ms := backquoted.FindAllStringSubmatch(c, -1)
				if len(ms) == 0 {
					return nil, fmt.Errorf("table %s: a row names no column in backquotes: %q", heading, c)
				}
				for _, m := range ms {
					cols[m[1]] = true
				}
			}
			d.tables[heading] = cols
		case "Path":
			for _, c := range first {
				for _, m := range backquoted.FindAllStringSubmatch(c, -1) {
					d.paths = append(d.paths, m[1])
				}
			}
		}
	}
	if len(d.tables) == 0 {
		return nil, fmt.Errorf("no table described (a \"## name\" section with a Column table)")
	}
	return d, nil
}

// pathPattern turns a documented path into a regular expression: <id>
// is 32 lower-case hex digits, * any name (no slash).
func pathPattern(p string) *regexp.Regexp {
	q := regexp.QuoteMeta(p)
	q = strings.ReplaceAll(q, "<id>", "[0-9a-f]{32}")
	q = strings.ReplaceAll(q, `\*`, "[^/]+")
	return regexp.MustCompile("^" + q + "$")
}

// checkDoc reports every difference between the documentation and what
// the server holds: tables and columns in one and not the other, and data
// directory files no documented path matches. SQLite's own tables
// (sqlite_*) are the engine's, not sottod's.
func checkDoc(t *testing.T, h *holding) {
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDoc(string(b))
	if err != nil {
		t.Fatalf("docs/what-the-server-stores.md: %v", err)
	}
	have := map[string]bool{}
	for _, tb := range h.tables {
		if strings.HasPrefix(tb.name, "sqlite_") {
			continue
		}
		have[tb.name] = true
		cols, ok := d.tables[tb.name]
		if !ok {
			t.Errorf("%s: table %s is not in docs/what-the-server-stores.md", h.mode, tb.name)
			continue
		}
		for _, c := range tb.columns {
			if !cols[c] {
				t.Errorf("%s: column %s.%s is not in docs/what-the-server-stores.md", h.mode, tb.name, c)
			}
		}
		for c := range cols {
			if !slices.Contains(tb.columns, c) {
				t.Errorf("%s: docs/what-the-server-stores.md names column %s.%s, which does not exist", h.mode, tb.name, c)
			}
		}
	}
	for name := range d.tables {
		if !have[name] {
			t.Errorf("%s: docs/what-the-server-stores.md names table %s, which does not exist", h.mode, name)
		}
	}
	var pats []*regexp.Regexp
	for _, p := range d.paths {
		pats = append(pats, pathPattern(p))
	}
	for _, f := range h.dataFiles {
		if !slices.ContainsFunc(pats, func(re *regexp.Regexp) bool { return re.MatchString(f) }) {
			t.Errorf("%s: data directory file %s matches no path in docs/what-the-server-stores.md", h.mode, f)
		}
	}
}

// TestParseDoc: the documentation's structure is read as checkDoc needs
// it, and a malformed one is refused.
func TestParseDoc(t *testing.T) {
	d, err := parseDoc("## accounts\n\n| Column | Why | Deleted |\n|---|---|---|\n| `id` | x | y |\n| `a`, `b` | x | y |\n\n" +
		"## The data directory\n\n| Path | What |\n|---|---|\n| `sotto.db`, `mailboxes/*` | x |\n| `attachments/<id>` | x |\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.tables["accounts"]; len(got) != 3 || !got["id"] || !got["a"] || !got["b"] {
		t.Errorf("accounts: %v", got)
	}
	if len(d.paths) != 3 {
		t.Errorf("paths %v", d.paths)
	}
	for p, want := range map[string]bool{"mailboxes/000001.log": true, "mailboxes/x/y": false, "attachments/" + strings.Repeat("ab", 16): true, "attachments/partial": false} {
		match := slices.ContainsFunc(d.paths, func(s string) bool { return pathPattern(s).MatchString(p) })
		if match != want {
			t.Errorf("%s matched: %v, want %v", p, match, want)
		}
	}
	for _, bad := range []string{"## two tables\n| Column | x |\n|---|---|\n| `a` | x |\n", "## t\n| Column | x |\n|---|---|\n| a | x |\n", "no tables"} {
		if _, err := parseDoc(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	// The real one parses.
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseDoc(string(b)); err != nil {
		t.Errorf("docs/what-the-server-stores.md: %v", err)
	}
}

// TestClassifyFindsTimes: a column holding times finer than a day, in any
// unit or as text, is a finding; days and small numbers are not.
func TestClassifyFindsTimes(t *testing.T) {
	now := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	c := newClassifier(&used{}, 30*24*time.Hour, now)
	today := now.Unix() / 86400
	tb := table{name: "t", columns: []string{"day", "n", "s", "ms", "text", "ts"}, rows: [][]any{
		{today, int64(7), now.Unix() - 3600, now.UnixMilli(), "2026-12-03 15:59:01", now},
		{today + 30, int64(4098), now.Unix(), now.UnixMilli() + 1, "no time here", nil},
	}}
	cols, found := c.classify("test", tb)
	if got := c.describe(cols[0]); got != "day (today, today+30)" {
		t.Errorf("day column: %q", got)
	}
	if got := c.describe(cols[1]); got != "number 7–4098" {
		t.Errorf("number column: %q", got)
	}
	want := map[string]int{"s": 2, "ms": 2, "text": 1, "ts": 1}
	got := map[string]int{}
	for _, f := range found {
		got[f.where[strings.LastIndex(f.where, " ")+1:]]++
	}
	for col, n := range want {
		if got[col] != n {
			t.Errorf("column %s: %d time findings, want %d (all: %v)", col, got[col], n, found)
		}
	}
	if len(found) != 6 {
		t.Errorf("%d findings, want 6: %v", len(found), found)
	}
}
