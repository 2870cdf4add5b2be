package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/whatsapp"
	"github.com/sotto-chat/sotto/internal/testserver"
)

// drive hands msg to the model and runs the commands it returns (network
// work: sends, loads) until none is left, as the program would.
func drive(t *testing.T, m chat, msg tea.Msg) chat {
	t.Helper()
	queue := []tea.Msg{msg}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		if b, ok := next.(tea.BatchMsg); ok {
			for _, c := range b {
				if c != nil {
					queue = append(queue, c())
				}
			}
			continue
		}
		if next == nil {
			continue
		}
		model, cmd := m.Update(next)
		m = model.(chat)
		if cmd != nil {
			queue = append(queue, cmd())
		}
	}
	return m
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]`)

// screen is what the chat shows, without its styles.
func screen(m chat) string { return ansi.ReplaceAllString(m.render(), "") }

// running is a client with Run going.
func running(t *testing.T, url string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := client.Create(ctx, client.Options{Server: url, Store: client.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; c.Close() })
	return c
}

// nextEvent returns c's next event of type T.
func nextEvent[T client.Event](t *testing.T, c *client.Client) T {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-c.Events():
			if v, ok := e.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T", zero)
		}
	}
}

func typeText(t *testing.T, m chat, s string) chat {
	for _, r := range s {
		m = drive(t, m, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	return m
}

// TestChatScreen drives the chat screen through a real sottod: choose a
// chat, write, see the reply, receipts, typing and unread counts.
func TestChatScreen(t *testing.T) {
	url := testserver.Start(t)
	ctx := context.Background()
	alice, bob, carol := running(t, url), running(t, url), running(t, url)
	for c, name := range map[*client.Client]string{bob: "bob_t", carol: "carol_t"} {
		if err := c.SetUsername(ctx, name); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.AddContact(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	m := newChat(ctx, alice)
	m.events = nil // the test hands the screen its events
	m = drive(t, m, tea.WindowSizeMsg{Width: 100, Height: 16})
	m = drive(t, m, m.loadContacts()())
	shown := screen(m)
	for _, want := range []string{"chats", "@bob_t", "@carol_t", "rite a message"} {
		if !strings.Contains(shown, want) {
			t.Fatalf("screen lacks %q:\n%s", want, shown)
		}
	}

	// Alice writes to Bob (the first chat), Enter sends.
	m = typeText(t, m, "hello Bob")
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyEnter})
	if s := screen(m); !strings.Contains(s, "me: hello Bob ✓") {
		t.Fatalf("after sending:\n%s", s)
	}
	// Bob saw Alice type (on her first key), then her message.
	if e := nextEvent[client.TypingEvent](t, bob); !e.Typing || e.With != alice.Account() {
		t.Fatalf("Bob's typing event %+v", e)
	}
	if got := nextEvent[client.MessageEvent](t, bob); got.Message.Text != "hello Bob" {
		t.Fatalf("Bob got %q", got.Message.Text)
	}

	// Bob answers: it shows in the open chat.
	if _, err := bob.SendText(ctx, alice.Account(), "hi Alice"); err != nil {
		t.Fatal(err)
	}
	m = drive(t, m, eventMsg{nextEvent[client.MessageEvent](t, alice)})
	if s := screen(m); !strings.Contains(s, "@bob_t: hi Alice") {
		t.Fatalf("after Bob's answer:\n%s", s)
	}
	// Now that Bob wrote to her, he tells Alice when he types, and his
	// receipts mark her messages.
	if err := bob.SendTyping(ctx, alice.Account(), true); err != nil {
		t.Fatal(err)
	}
	m = drive(t, m, eventMsg{nextEvent[client.TypingEvent](t, alice)})
	if s := screen(m); !strings.Contains(s, "@bob_t is typing…") {
		t.Fatalf("typing not shown:\n%s", s)
	}
	m = typeText(t, m, "good to see you")
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyEnter})
	m = drive(t, m, eventMsg{nextEvent[client.ReceiptEvent](t, alice)})
	if s := screen(m); !strings.Contains(s, "me: good to see you ✓✓") {
		t.Fatalf("no delivery mark:\n%s", s)
	}

	// ctrl+s shows the safety number (the same as Bob's) with its QR;
	// any key returns.
	m = drive(t, m, tea.KeyPressMsg{Code: 's', Mod: tea.ModCtrl})
	number, _, err := bob.SafetyNumber(ctx, alice.Account())
	if err != nil {
		t.Fatal(err)
	}
	if s := screen(m); !strings.Contains(strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "\n", ""), number) || !strings.Contains(s, "█") {
		t.Fatalf("safety screen:\n%s", s)
	}
	m = drive(t, m, tea.KeyPressMsg{Code: 'x', Text: "x"})
	if s := screen(m); !strings.Contains(s, "chats") {
		t.Fatalf("after leaving the safety screen:\n%s", s)
	}

	// Carol writes while Bob's chat is open: an unread count.
	if _, err := carol.SendText(ctx, alice.Account(), "psst"); err != nil {
		t.Fatal(err)
	}
	m = drive(t, m, eventMsg{nextEvent[client.MessageEvent](t, alice)})
	if s := screen(m); !strings.Contains(s, "@carol_t (1)") {
		t.Fatalf("no unread count:\n%s", s)
	}
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyTab})
	if s := screen(m); !strings.Contains(s, "@carol_t: psst") || strings.Contains(s, "(1)") {
		t.Fatalf("Carol's chat:\n%s", s)
	}

	// Someone Alice never added writes: the chat appears, named by the
	// profile the stranger shared with the message.
	dave := running(t, url)
	if err := dave.SetProfile(ctx, client.Profile{Name: "Dave Bowman"}); err != nil {
		t.Fatal(err)
	}
	if _, err := dave.SendText(ctx, alice.Account(), "open the pod bay doors"); err != nil {
		t.Fatal(err)
	}
	m = drive(t, m, eventMsg{nextEvent[client.MessageEvent](t, alice)})
	if s := screen(m); !strings.Contains(s, "Dave Bowman") {
		t.Fatalf("a stranger's chat:\n%s", s)
	}
}

// TestChatScreenScrolls: long messages wrap to the pane, PgUp/PgDn, Home
// and End and the mouse wheel scroll within the conversation, and the
// title says what lies above and below.
func TestChatScreenScrolls(t *testing.T) {
	url := testserver.Start(t)
	ctx := context.Background()
	alice, bob := running(t, url), running(t, url)
	if err := bob.SetUsername(ctx, "bob_s"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact(ctx, "bob_s"); err != nil {
		t.Fatal(err)
	}
	const n = 30
	for i := range n {
		if _, err := alice.SendText(ctx, bob.Account(), fmt.Sprintf("message %02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("word ", 40) + "END"
	if _, err := alice.SendText(ctx, bob.Account(), long); err != nil {
		t.Fatal(err)
	}
	m := newChat(ctx, alice)
	m.events = nil
	m = drive(t, m, tea.WindowSizeMsg{Width: 80, Height: 16})
	m = drive(t, m, m.loadContacts()())

	s := screen(m)
	if !strings.Contains(s, "END") || strings.Contains(s, "message 00") || !strings.Contains(s, "more lines") {
		t.Fatalf("the newest lines, wrapped, with what is above:\n%s", s)
	}
	for _, line := range strings.Split(s, "\n") {
		if w := lipgloss.Width(line); w > 80 {
			t.Fatalf("a line of %d columns on an 80-column screen: %q", w, line)
		}
	}

	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyHome})
	if s := screen(m); !strings.Contains(s, "message 00") || strings.Contains(s, "END") || !strings.Contains(s, "newer (End)") {
		t.Fatalf("after Home:\n%s", s)
	}
	// Scrolling up past the oldest line stays at the oldest line: one
	// PgDn then moves.
	for range 5 {
		m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyPgUp})
	}
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyPgDown})
	if s := screen(m); strings.Contains(s, "message 00") {
		t.Fatalf("PgDn after scrolling past the top did not move:\n%s", s)
	}
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyEnd})
	m = drive(t, m, tea.MouseWheelMsg{Button: tea.MouseWheelUp})
	if s := screen(m); strings.Contains(s, "END") {
		t.Fatalf("the wheel did not scroll up:\n%s", s)
	}
	m = drive(t, m, tea.MouseWheelMsg{Button: tea.MouseWheelDown})
	if s := screen(m); !strings.Contains(s, "END") {
		t.Fatalf("the wheel did not scroll back:\n%s", s)
	}
}

// TestChatScreenCodeAndLink: ctrl+o shows the account's contact link as
// a QR that another account can add; ctrl+l approves a new device from
// the link it shows, and the new device then belongs to the account.
func TestChatScreenCodeAndLink(t *testing.T) {
	url := testserver.Start(t)
	ctx := context.Background()
	alice, bob := running(t, url), running(t, url)
	m := newChat(ctx, alice)
	m.events = nil
	m = drive(t, m, tea.WindowSizeMsg{Width: 100, Height: 40})
	m = drive(t, m, m.loadContacts()())

	m = drive(t, m, tea.KeyPressMsg{Code: 'o', Mod: tea.ModCtrl})
	s := screen(m)
	link := regexp.MustCompile(`sotto://contact\?\S+`).FindString(s)
	if link == "" || !strings.Contains(s, "█") {
		t.Fatalf("contact code screen:\n%s", s)
	}
	if ct, err := bob.AddContactLink(ctx, link); err != nil || ct.Account != alice.Account() {
		t.Fatalf("adding the shown link: %v, %v", ct.Account, err)
	}
	m = drive(t, m, tea.KeyPressMsg{Code: 'x', Text: "x"})

	// A new device asks to join; its link is pasted into the screen.
	req, err := client.NewLinkRequest(ctx, client.Options{Server: url, Store: client.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	joined := make(chan *client.Client, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		c, err := req.Wait(wctx)
		if err != nil {
			t.Error(err)
		}
		joined <- c
	}()
	m = drive(t, m, tea.KeyPressMsg{Code: 'l', Mod: tea.ModCtrl})
	if s := screen(m); !strings.Contains(s, "sotto link") {
		t.Fatalf("ctrl+l does not ask for the link:\n%s", s)
	}
	m = drive(t, m, tea.PasteMsg{Content: req.URI()})
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyEnter})
	if s := screen(m); !strings.Contains(s, "approved") {
		t.Fatalf("after approving:\n%s", s)
	}
	laptop := <-joined
	if laptop == nil {
		t.FailNow()
	}
	defer laptop.Close()
	if laptop.Account() != alice.Account() || laptop.Device() == alice.Device() {
		t.Fatalf("the new device is %v/%d, the account %v/%d", laptop.Account(), laptop.Device(), alice.Account(), alice.Device())
	}

	// A link that is not one is refused with a sentence, and the screen
	// goes on.
	m = drive(t, m, tea.KeyPressMsg{Code: 'l', Mod: tea.ModCtrl})
	m = typeText(t, m, "not a link")
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyEnter})
	if s := screen(m); !strings.Contains(s, "not linked") {
		t.Fatalf("a bad link:\n%s", s)
	}
}

// TestChatScreenImportedHistory: a WhatsApp chat imported for a contact
// shows, dimmed, before the Sotto conversation with them.
func TestChatScreenImportedHistory(t *testing.T) {
	url := testserver.Start(t)
	ctx := context.Background()
	alice, jordan := running(t, url), running(t, url)
	if err := jordan.SetUsername(ctx, "jordan_t"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddContact(ctx, "jordan_t"); err != nil {
		t.Fatal(err)
	}
	chat, err := whatsapp.Parse(strings.NewReader("10/28/23, 9:14 AM - Jordan Reyes: hey! is the bike still for sale?\n" +
		"10/28/23, 9:20 AM - Sam Patel: Yes it is\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ImportWhatsApp(ctx, chat, client.WhatsAppImport{Me: "Sam Patel",
		Contacts: map[string]client.AccountID{"Jordan Reyes": jordan.Account()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendText(ctx, jordan.Account(), "hello from Sotto"); err != nil {
		t.Fatal(err)
	}
	m := newChat(ctx, alice)
	m.events = nil
	m = drive(t, m, tea.WindowSizeMsg{Width: 120, Height: 16})
	m = drive(t, m, m.loadContacts()())
	s := screen(m)
	i1 := strings.Index(s, "2023-10-28 09:14 @jordan_t: hey! is the bike still for sale?")
	i2 := strings.Index(s, "2023-10-28 09:20 me: Yes it is")
	i3 := strings.Index(s, "imported history above")
	i4 := strings.Index(s, "me: hello from Sotto")
	if i1 < 0 || i2 < i1 || i3 < i2 || i4 < i3 {
		t.Fatalf("the imported history is not shown before the conversation:\n%s", s)
	}

	// A chat of no one contact (a group) is listed after the contacts,
	// and opens read-only.
	group, err := whatsapp.Parse(strings.NewReader("6/2/22, 7:18 PM - Dana: who is in for Saturday?\n6/2/22, 7:19 PM - Luis: me\n6/2/22, 7:20 PM - Mei: me too\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ImportWhatsApp(ctx, group, client.WhatsAppImport{Title: "Trail club"}); err != nil {
		t.Fatal(err)
	}
	m = drive(t, m, m.loadContacts()())
	if s := screen(m); !strings.Contains(s, "⤓ Trail club") {
		t.Fatalf("the group is not listed:\n%s", s)
	}
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyTab})
	s = screen(m)
	if !strings.Contains(s, "Trail club  imported from whatsapp, read-only") || !strings.Contains(s, "2022-06-02 19:19 Luis: me") {
		t.Fatalf("the group does not open:\n%s", s)
	}
	m = typeText(t, m, "hi")
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyEnter})
	if s := screen(m); !strings.Contains(s, "an imported conversation is read-only") {
		t.Fatalf("writing to an imported conversation:\n%s", s)
	}
	m = drive(t, m, tea.KeyPressMsg{Code: tea.KeyTab})
	if s := screen(m); !strings.Contains(s, "me: hello from Sotto") {
		t.Fatalf("Tab does not come back to the contact:\n%s", s)
	}
}
