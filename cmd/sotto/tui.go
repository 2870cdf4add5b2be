package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/sotto-chat/sotto/client"
)

// The chat screen: contacts on the left with unread counts, the selected
// conversation on the right with delivery marks and typing, a compose
// line below. Network work runs in commands, never in Update, so the
// screen never waits on the server.

// Screen timings, each with its reason.
const (
	// typingEvery: while a person types, a typing indicator goes out at
	// most this often (others show it for typingShown).
	typingEvery = 3 * time.Second
	typingShown = 5 * time.Second
	// listWidth is the contact column: an @username and a count.
	listWidth = 26
	// sendTimeout bounds one send from the screen; a message that does
	// not make it stays queued in the outbox.
	sendTimeout = 30 * time.Second
	// approveTimeout bounds a device-link approval from the screen, as
	// `sotto link approve` bounds it.
	approveTimeout = commandTimeout
	// wheelLines is how far one notch of the mouse wheel scrolls.
	wheelLines = 3
	// shownImported bounds the imported history shown before a
	// conversation (every line is wrapped again on each redraw); `sotto
	// history @name` prints all of it.
	shownImported = 500
)

// chat is the screen's model.
type chat struct {
	ctx    context.Context
	cl     *client.Client
	events <-chan client.Event // the client's; nil in tests, which feed events themselves

	contacts []client.Contact
	profiles map[client.AccountID]string
	sel      int
	msgs     map[client.AccountID][]client.Message
	imported map[client.AccountID][]client.ImportedMessage // history imported from elsewhere, before msgs
	// imports are imported conversations of no one contact (groups,
	// unmapped chats), listed after the contacts, read-only; sel counts
	// on into them. importMsgs holds the one opened.
	imports    []client.Import
	importMsgs map[client.ImportID][]client.ImportedMessage
	unread     map[client.AccountID]int
	typing     map[client.AccountID]time.Time
	input      textinput.Model
	scroll     int // lines scrolled up from the newest
	status     string
	problem    string
	// overlay is a full screen shown instead of the chats (the safety
	// number, the contact code) until a key is pressed, else "".
	overlay string
	// linking: the compose line takes the link a new device shows, and
	// Enter approves it (ctrl+l).
	linking bool
	width   int
	height  int
	typedAt time.Time
}

// Messages of the screen.
type (
	eventMsg  struct{ e client.Event }
	sentMsg   struct{ err error }
	loadedMsg struct {
		contacts []client.Contact
		profiles map[client.AccountID]string // profile names, where shared
		imports  []client.Import             // those of no one contact
	}
	importMsg struct {
		id   client.ImportID
		msgs []client.ImportedMessage
	}
	historyMsg struct {
		with     client.AccountID
		msgs     []client.Message
		imported []client.ImportedMessage
		loaded   bool // imported was loaded (it is, once per contact)
	}
	overlayMsg  struct{ screen string }
	approvedMsg struct{ err error }
)

// Hints in the compose line.
const (
	composeHint = "write a message; Enter sends, Tab or ↑↓ choose a chat, PgUp/PgDn scroll, ctrl+s safety number, ctrl+o your code, ctrl+l link a device, Esc quits"
	linkHint    = "paste the link `sotto link` shows on the new device; Enter approves, Esc cancels"
)

func newChat(ctx context.Context, cl *client.Client) chat {
	in := textinput.New()
	in.Placeholder = composeHint
	st := in.Styles()
	st.Cursor.Blink = false // a steady cursor: no redraw twice a second
	in.SetStyles(st)
	in.Focus()
	return chat{ctx: ctx, cl: cl, events: cl.Events(), msgs: map[client.AccountID][]client.Message{},
		imported: map[client.AccountID][]client.ImportedMessage{}, unread: map[client.AccountID]int{},
		typing: map[client.AccountID]time.Time{}, input: in, status: "connecting…", width: 80, height: 24}
}

func (m chat) Init() tea.Cmd { return tea.Batch(m.waitEvent(), m.loadContacts()) }

// waitEvent delivers the client's next event to Update.
func (m chat) waitEvent() tea.Cmd {
	if m.events == nil {
		return nil
	}
	events := m.events
	return func() tea.Msg {
		select {
		case e := <-events:
			return eventMsg{e}
		case <-m.ctx.Done():
			return tea.Quit()
		}
	}
}

func (m chat) loadContacts() tea.Cmd {
	return func() tea.Msg {
		cs, _ := m.cl.Contacts(m.ctx)
		names := map[client.AccountID]string{}
		for _, ct := range cs {
			// A profile is readable where the contact shared its key;
			// one that is not, or that fails, leaves the name as it is.
			if p, err := m.cl.ProfileOf(m.ctx, ct.Account); err == nil && p.Name != "" {
				names[ct.Account] = p.Name
			}
		}
		var imports []client.Import
		all, _ := m.cl.Imports(m.ctx)
		for _, imp := range all {
			if imp.With == (client.AccountID{}) {
				imports = append(imports, imp)
			}
		}
		return loadedMsg{cs, names, imports}
	}
}

func (m chat) loadHistory(with client.AccountID) tea.Cmd {
	// Decided here, in Update's goroutine, which owns the map.
	_, have := m.imported[with]
	have = have || m.imported == nil
	return func() tea.Msg {
		msgs, _ := m.cl.Messages(m.ctx, with)
		if have {
			return historyMsg{with: with, msgs: msgs}
		}
		// Imported history does not change while the screen is open
		// (it can be long: read once, not on every message).
		imported, _ := m.cl.ImportedWith(m.ctx, with)
		return historyMsg{with, msgs, imported, true}
	}
}

// currentImport is the imported conversation selected, if one is.
func (m chat) currentImport() (client.Import, bool) {
	i := m.sel - len(m.contacts)
	if i < 0 || i >= len(m.imports) {
		return client.Import{}, false
	}
	return m.imports[i], true
}

func (m chat) loadImport(id client.ImportID) tea.Cmd {
	return func() tea.Msg {
		msgs, _ := m.cl.ImportedMessages(m.ctx, id)
		return importMsg{id, msgs}
	}
}

func (m chat) current() (client.Contact, bool) {
	if m.sel < 0 || m.sel >= len(m.contacts) {
		return client.Contact{}, false
	}
	return m.contacts[m.sel], true
}

func (m chat) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.input.SetWidth(max(10, m.width-listWidth-4))
		return m, nil
	case loadedMsg:
		m.contacts, m.profiles, m.imports = msg.contacts, msg.profiles, msg.imports
		if ct, ok := m.current(); ok {
			return m, m.loadHistory(ct.Account)
		}
		if imp, ok := m.currentImport(); ok {
			return m, m.loadImport(imp.ID)
		}
		return m, nil
	case importMsg:
		if m.importMsgs == nil {
			m.importMsgs = map[client.ImportID][]client.ImportedMessage{}
		}
		m.importMsgs[msg.id] = msg.msgs
		return m, nil
	case historyMsg:
		m.msgs[msg.with] = msg.msgs
		if msg.loaded {
			m.imported[msg.with] = msg.imported
		}
		return m, m.markRead(msg.with)
	case overlayMsg:
		m.overlay = msg.screen
		return m, nil
	case approvedMsg:
		m.problem = ""
		if msg.err != nil {
			m.problem = "the device was not linked: " + msg.err.Error()
		} else {
			m.status = "approved: the new device joins the account"
		}
		return m, nil
	case tea.MouseWheelMsg:
		switch msg.Button {
		case tea.MouseWheelUp:
			m.scroll = m.clampScroll(m.scroll + wheelLines)
		case tea.MouseWheelDown:
			m.scroll = m.clampScroll(m.scroll - wheelLines)
		}
		return m, nil
	case sentMsg:
		m.problem = ""
		if msg.err != nil {
			m.problem = msg.err.Error()
		}
		if ct, ok := m.current(); ok {
			return m, m.loadHistory(ct.Account)
		}
		return m, nil
	case eventMsg:
		return m.event(msg.e)
	case tea.KeyPressMsg:
		return m.key(msg)
	case tea.PasteMsg: // a pasted message or link goes to the compose line
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return m, cmd
	}
	return m, nil
}

func (m chat) event(e client.Event) (tea.Model, tea.Cmd) {
	next := m.waitEvent()
	switch e := e.(type) {
	case client.ConnectedEvent:
		m.status = "connected"
	case client.DisconnectedEvent:
		m.status = "offline: messages you write are queued"
	case client.MessageEvent:
		with := e.Message.With
		delete(m.typing, with)
		known := false
		for _, ct := range m.contacts {
			known = known || ct.Account == with
		}
		if !known {
			return m, tea.Batch(next, m.loadContacts())
		}
		if ct, ok := m.current(); ok && ct.Account == with {
			return m, tea.Batch(next, m.loadHistory(with))
		}
		if !e.Message.Outgoing {
			m.unread[with]++
		}
	case client.ReceiptEvent, client.StatusEvent:
		if ct, ok := m.current(); ok {
			return m, tea.Batch(next, m.loadHistory(ct.Account))
		}
	case client.TypingEvent:
		if e.Typing {
			m.typing[e.With] = time.Now()
		} else {
			delete(m.typing, e.With)
		}
	case client.IdentityChangedEvent:
		m.problem = fmt.Sprintf("the safety number with %s changed: verify it (sotto verify)", m.nameOf(e.With))
	case client.UndecryptableEvent:
		m.problem = "a message could not be decrypted and was dropped"
	}
	return m, next
}

func (m chat) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	if m.overlay != "" { // any key closes a full-screen overlay
		m.overlay = ""
		if k.String() != "ctrl+c" {
			return m, nil
		}
	}
	if m.linking {
		return m.linkKey(k)
	}
	page := max(1, m.bodyHeight()/2)
	switch k.String() {
	case "esc", "ctrl+c":
		return m, tea.Quit
	case "ctrl+s":
		if ct, ok := m.current(); ok {
			return m, m.safetyScreen(ct.Account)
		}
		return m, nil
	case "ctrl+o":
		return m, m.codeScreen()
	case "ctrl+l":
		m.linking = true
		m.input.Reset()
		m.input.Placeholder = linkHint
		return m, nil
	case "tab", "down":
		return m.selectContact(m.sel + 1)
	case "shift+tab", "up":
		return m.selectContact(m.sel - 1)
	case "pgup":
		m.scroll = m.clampScroll(m.scroll + page)
		return m, nil
	case "pgdown":
		m.scroll = m.clampScroll(m.scroll - page)
		return m, nil
	case "home":
		m.scroll = m.clampScroll(len(m.conversationLines()))
		return m, nil
	case "end":
		m.scroll = 0
		return m, nil
	case "enter":
		text := strings.TrimSpace(m.input.Value())
		ct, ok := m.current()
		if _, imported := m.currentImport(); imported && text != "" {
			m.problem = "an imported conversation is read-only: choose a contact to write"
			return m, nil
		}
		if text == "" || !ok {
			return m, nil
		}
		m.input.Reset()
		m.scroll = 0
		return m, m.send(ct.Account, text)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	if ct, ok := m.current(); ok && time.Since(m.typedAt) > typingEvery && m.input.Value() != "" {
		m.typedAt = time.Now()
		cl, ctx := m.cl, m.ctx
		return m, tea.Batch(cmd, func() tea.Msg {
			_ = cl.SendTyping(ctx, ct.Account, true) // a courtesy: failures do not matter
			return nil
		})
	}
	return m, cmd
}

// linkKey handles a key while the compose line takes a device link.
func (m chat) linkKey(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "ctrl+c":
		return m, tea.Quit
	case "esc":
		m.linking = false
		m.input.Reset()
		m.input.Placeholder = composeHint
		return m, nil
	case "enter":
		link := strings.TrimSpace(m.input.Value())
		if link == "" {
			return m, nil
		}
		m.linking = false
		m.input.Reset()
		m.input.Placeholder = composeHint
		m.status = "approving the new device…"
		cl, ctx := m.cl, m.ctx
		return m, func() tea.Msg {
			ctx, cancel := context.WithTimeout(ctx, approveTimeout)
			defer cancel()
			return approvedMsg{cl.ApproveLink(ctx, link)}
		}
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return m, cmd
}

// codeScreen shows this account's contact link as a QR, for someone
// next to you to add you (`sotto add` with the link, or a phone's camera).
func (m chat) codeScreen() tea.Cmd {
	cl, ctx := m.cl, m.ctx
	return func() tea.Msg {
		link, err := cl.ContactLink(ctx)
		if err != nil {
			return overlayMsg{fmt.Sprintf("no contact code: %v\n\n(any key returns)", err)}
		}
		return overlayMsg{fmt.Sprintf("your contact code: whoever scans it, or runs `sotto add` with the link, can write to you\n\n%s\n%s\n\n(any key returns)", qr(link), link)}
	}
}

func (m chat) selectContact(i int) (tea.Model, tea.Cmd) {
	n := len(m.contacts) + len(m.imports)
	if n == 0 {
		return m, nil
	}
	m.sel = (i + n) % n
	m.scroll = 0
	if imp, ok := m.currentImport(); ok {
		return m, m.loadImport(imp.ID)
	}
	ct := m.contacts[m.sel]
	delete(m.unread, ct.Account)
	return m, m.loadHistory(ct.Account)
}

// safetyScreen shows the safety number of a chat with its code as a QR,
// for comparing with the other side's screen.
func (m chat) safetyScreen(with client.AccountID) tea.Cmd {
	cl, ctx, name := m.cl, m.ctx, m.nameOf(with)
	return func() tea.Msg {
		number, code, err := cl.SafetyNumber(ctx, with)
		if err != nil {
			return overlayMsg{fmt.Sprintf("no safety number with %s yet: exchange a message first\n\n(any key returns)", name)}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "safety number with %s\n\n", name)
		for i := 0; i+5 <= len(number); i += 5 {
			b.WriteString(number[i : i+5])
			if (i/5)%4 == 3 {
				b.WriteString("\n")
			} else {
				b.WriteString(" ")
			}
		}
		shown := base64.RawURLEncoding.EncodeToString(code)
		fmt.Fprintf(&b, "\n%s\ncompare it with theirs, or: sotto verify <you> --code %s\n\n(any key returns)", qr(shown), shown)
		return overlayMsg{b.String()}
	}
}

// send sends in a command: the screen goes on while it travels.
func (m chat) send(to client.AccountID, text string) tea.Cmd {
	cl, ctx := m.cl, m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, sendTimeout)
		defer cancel()
		_, err := cl.SendText(ctx, to, text)
		if err != nil && !errors.Is(err, client.ErrQueued) {
			return sentMsg{err}
		}
		return sentMsg{}
	}
}

// markRead marks what the open conversation shows as read.
func (m chat) markRead(with client.AccountID) tea.Cmd {
	var ids []client.MessageID
	for _, msg := range m.msgs[with] {
		if !msg.Outgoing && msg.Status != client.StatusRead {
			ids = append(ids, msg.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	cl, ctx := m.cl, m.ctx
	return func() tea.Msg {
		_ = cl.MarkRead(ctx, with, ids...) // receipts are a courtesy
		return nil
	}
}

// nameOf is how the screen names an account: its @username if it was
// added by one, else the name in its profile, else the start of its id.
func (m chat) nameOf(a client.AccountID) string {
	for _, ct := range m.contacts {
		if ct.Account == a && ct.Name != "" {
			return "@" + ct.Name
		}
	}
	if n := m.profiles[a]; n != "" {
		return n
	}
	return a.String()[:8]
}

var (
	selectedStyle = lipgloss.NewStyle().Bold(true).Reverse(true)
	dimStyle      = lipgloss.NewStyle().Faint(true)
	problemStyle  = lipgloss.NewStyle().Bold(true)
)

func (m chat) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeCellMotion // the wheel scrolls the conversation
	v.WindowTitle = "sotto"
	return v
}

// render draws the screen as plain lines (styles aside), so that tests
// can read it.
func (m chat) render() string {
	if m.overlay != "" {
		return m.overlay
	}
	bodyHeight := m.bodyHeight()
	var left []string
	left = append(left, "chats")
	if len(m.contacts)+len(m.imports) == 0 {
		left = append(left, dimStyle.Render("none yet: sotto add @name"))
	}
	for i, ct := range m.contacts {
		line := m.nameOf(ct.Account)
		if n := m.unread[ct.Account]; n > 0 {
			line += fmt.Sprintf(" (%d)", n)
		}
		line = truncate(line, listWidth-2)
		if i == m.sel {
			line = selectedStyle.Render(line)
		}
		left = append(left, line)
	}
	for i, imp := range m.imports {
		line := truncate("⤓ "+imp.Title, listWidth-2)
		if len(m.contacts)+i == m.sel {
			line = selectedStyle.Render(line)
		} else {
			line = dimStyle.Render(line)
		}
		left = append(left, line)
	}
	var right []string
	title := ""
	if ct, ok := m.current(); ok {
		title = m.nameOf(ct.Account)
	} else if imp, ok := m.currentImport(); ok {
		title = imp.Title + dimStyle.Render(fmt.Sprintf("  imported from %s, read-only", imp.Source))
	}
	if title != "" {
		lines := m.conversationLines()
		scroll := m.clampScroll(m.scroll)
		end := max(0, len(lines)-scroll)
		start := max(0, end-(bodyHeight-1))
		if start > 0 {
			title += dimStyle.Render(fmt.Sprintf("  ↑ %d more lines", start))
		}
		if scroll > 0 {
			title += dimStyle.Render(fmt.Sprintf("  ↓ %d newer (End)", scroll))
		}
		right = append(right, title)
		right = append(right, lines[start:end]...)
	}
	var b strings.Builder
	status := "sotto · " + m.status
	if m.problem != "" {
		status += " · " + problemStyle.Render(m.problem)
	}
	b.WriteString(status + "\n")
	for i := range bodyHeight {
		l, r := "", ""
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		b.WriteString(pad(l, listWidth) + "│ " + r + "\n")
	}
	b.WriteString(strings.Repeat("─", max(10, m.width)) + "\n")
	b.WriteString(m.input.View())
	return b.String()
}

// bodyHeight is how many lines the chats and the conversation get.
func (m chat) bodyHeight() int { return max(3, m.height-3) }

// conversationLines is the open conversation as screen lines, each
// message wrapped to the width of its pane.
func (m chat) conversationLines() []string {
	width := max(10, m.width-listWidth-2)
	var lines []string
	if imp, ok := m.currentImport(); ok {
		for _, msg := range m.importMsgs[imp.ID] {
			text := msg.Time.Format("2006-01-02 15:04") + " " + importedLine(msg, m.nameOf)
			lines = append(lines, strings.Split(lipgloss.Wrap(text, width, " "), "\n")...)
		}
		return lines
	}
	ct, ok := m.current()
	if !ok {
		return nil
	}
	if imp := m.imported[ct.Account]; len(imp) > 0 {
		if len(imp) > shownImported {
			lines = append(lines, dimStyle.Render(fmt.Sprintf("… %d earlier imported messages: sotto history %s", len(imp)-shownImported, m.nameOf(ct.Account))))
			imp = imp[len(imp)-shownImported:]
		}
		for _, msg := range imp {
			text := msg.Time.Format("2006-01-02 15:04") + " " + importedLine(msg, m.nameOf)
			for _, l := range strings.Split(lipgloss.Wrap(text, width, " "), "\n") {
				lines = append(lines, dimStyle.Render(l))
			}
		}
		lines = append(lines, dimStyle.Render("── imported history above; your Sotto conversation below ──"))
	}
	for _, msg := range m.msgs[ct.Account] {
		who := m.nameOf(ct.Account)
		if msg.Outgoing {
			who = "me"
		}
		text := fmt.Sprintf("%s %s: %s%s", msg.SentAt.Local().Format("15:04"), who, msg.Text, mark(msg))
		lines = append(lines, strings.Split(lipgloss.Wrap(text, width, " "), "\n")...)
	}
	if t, ok := m.typing[ct.Account]; ok && time.Since(t) < typingShown {
		lines = append(lines, dimStyle.Render(m.nameOf(ct.Account)+" is typing…"))
	}
	return lines
}

// clampScroll bounds a scroll position: from the newest line (0) up to
// where the oldest line is at the top.
func (m chat) clampScroll(scroll int) int {
	most := max(0, len(m.conversationLines())-(m.bodyHeight()-1))
	return min(max(0, scroll), most)
}

// mark shows how far an outgoing message got.
func mark(m client.Message) string {
	if !m.Outgoing {
		return ""
	}
	switch m.Status {
	case client.StatusQueued:
		return " ⧗"
	case client.StatusSent:
		return " ✓"
	case client.StatusDelivered:
		return " ✓✓"
	case client.StatusRead:
		return " ✓✓ read"
	case client.StatusFailed:
		return " ✗ not sent"
	}
	return ""
}

func truncate(s string, n int) string {
	if lipgloss.Width(s) <= n {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && lipgloss.Width(string(r))+1 > n {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

func pad(s string, n int) string {
	if w := lipgloss.Width(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}

// runChat opens the chat screen.
func (c *cli) runChat(ctx context.Context) error {
	cl, ctx, stop, err := c.openRunning(ctx)
	if err != nil {
		return err
	}
	defer stop()
	_, err = tea.NewProgram(newChat(ctx, cl), tea.WithContext(ctx)).Run()
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
