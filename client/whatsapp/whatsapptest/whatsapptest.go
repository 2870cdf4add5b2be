// Package whatsapptest makes synthetic WhatsApp exports for tests and
// benchmarks of the parser and of the client's import.
package whatsapptest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Synthetic builds an Android en-US export of n messages: texts of
// mixed lengths, some of several lines (one starting with a date), media,
// attachments, edits, deletions and group notices, over about two years.
func Synthetic(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	senders := []string{"Dana Whitfield", "Luis Ortega", "Mei Tanaka", "Coach Ray - Trails", "+1 415 555 0100", "Chris Doyle"}
	words := strings.Fields("the trail was muddy but the view from the ridge made up for it 🥾 see you at seven bring water and a headlamp ok 👍 lol")
	var b strings.Builder
	b.Grow(n * 80)
	t := time.Date(2022, 6, 2, 19, 18, 0, 0, time.UTC)
	for i := range n {
		t = t.Add(time.Duration(r.IntN(900)) * time.Second)
		h := t.Hour() % 12
		if h == 0 {
			h = 12
		}
		ampm := "AM"
		if t.Hour() >= 12 {
			ampm = "PM"
		}
		fmt.Fprintf(&b, "%d/%d/%02d, %d:%02d\u202f%s - ", int(t.Month()), t.Day(), t.Year()%100, h, t.Minute(), ampm)
		who := senders[r.IntN(len(senders))]
		switch k := r.IntN(100); {
		case k < 3:
			fmt.Fprintf(&b, "%s added %s\n", who, senders[r.IntN(len(senders))])
		case k < 8:
			fmt.Fprintf(&b, "%s: <Media omitted>\n", who)
		case k < 11:
			fmt.Fprintf(&b, "%s: IMG-%s-WA%04d.jpg (file attached)\ncaption %d\n", who, t.Format("20060102"), i%10000, i)
		case k < 13:
			fmt.Fprintf(&b, "%s: This message was deleted\n", who)
		case k < 23:
			fmt.Fprintf(&b, "%s: Plan:\n3/14/24 finish reading\n\n- bring snacks %d\n", who, i)
		default:
			fmt.Fprintf(&b, "%s: ", who)
			for w := range 1 + r.IntN(25) {
				if w > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(words[r.IntN(len(words))])
			}
			if k > 97 {
				b.WriteString(" <This message was edited>")
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}
