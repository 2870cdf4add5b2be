package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/whatsapp"
)

// Imported history: `sotto import whatsapp FILE` brings a WhatsApp chat
// export into the profile's encrypted store, and `sotto history` shows
// it.

// minImportPrefix is the shortest start of an import id that `sotto
// history` takes: four hex digits tell a person's imports apart.
const minImportPrefix = 4

// importCmd is `sotto import whatsapp FILE` or `sotto import sotto DIR`.
func (c *cli) importCmd(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "whatsapp":
			return c.importWhatsApp(ctx, args[1:])
		case "sotto":
			return c.importSotto(ctx, args[1:])
		}
	}
	return usageError{"want whatsapp FILE, or sotto DIR"}
}

// mapFlags collects repeated --map NAME=@contact flags.
type mapFlags []string

func (m *mapFlags) String() string     { return strings.Join(*m, ", ") }
func (m *mapFlags) Set(s string) error { *m = append(*m, s); return nil }

// parseInterleaved parses flags that may stand before, between or after
// the positional arguments (flag stops at the first of those).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (c *cli) importWhatsApp(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("import whatsapp", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	me := fs.String("me", "", `the sender that is you, or "none" (default: guessed from the file name)`)
	title := fs.String("title", "", "the conversation's title (default: from the file name)")
	yes := fs.Bool("yes", false, "ask nothing: flags and defaults decide")
	var maps mapFlags
	fs.Var(&maps, "map", `"WhatsApp Name=@contact": the Sotto contact a sender is (repeatable)`)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{`want FILE (the .txt or .zip of WhatsApp's "Export chat")`}
	}
	path := pos[0]
	meSet := false
	fs.Visit(func(f *flag.Flag) { meSet = meSet || f.Name == "me" })

	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return errorf("%s is a directory: give the chat's .txt in it, or the .zip WhatsApp made", path)
	}
	chat, err := whatsapp.ParseFile(path)
	if err != nil {
		return whatsappError(path, err)
	}
	defer chat.Close()
	senders, counts := client.WhatsAppSenders(chat)
	_, guess := client.WhatsAppDefaults(path, chat)

	contacts := map[string]client.AccountID{}
	for _, m := range maps {
		// At the last "=": a name may hold one, a contact never does.
		i := strings.LastIndex(m, "=")
		if i < 0 {
			return usageError{fmt.Sprintf("--map %q: want \"WhatsApp Name=@contact\"", m)}
		}
		name, who := strings.TrimSpace(m[:i]), strings.TrimSpace(m[i+1:])
		if name == "" || who == "" {
			return usageError{fmt.Sprintf("--map %q: want \"WhatsApp Name=@contact\"", m)}
		}
		if !slices.Contains(senders, name) {
			return errorf("no sender named %q in %s: its senders are %s", name, path, quoteList(senders))
		}
		a, err := c.target(ctx, cl, who)
		if err != nil {
			return err
		}
		contacts[name] = a
	}
	choice := guess
	switch {
	case *me == "none":
		choice = ""
	case *me != "":
		if !slices.Contains(senders, *me) {
			return errorf("no sender named %q in %s: its senders are %s", *me, path, quoteList(senders))
		}
		choice = *me
	}
	if c.interactive && !*yes && !c.json {
		if choice, err = c.askImport(ctx, cl, senders, counts, choice, meSet, contacts, len(maps) > 0); err != nil {
			return err
		}
	}
	delete(contacts, choice)

	bar := c.progress("importing")
	res, err := cl.ImportWhatsApp(ctx, chat, client.WhatsAppImport{FileName: path, Title: *title, Me: choice, Contacts: contacts, Progress: bar.update})
	bar.finish()
	if err != nil {
		return errorf("nothing was imported: %v", err)
	}
	imp := res.Import
	if c.json {
		out := map[string]any{"import": imp.ID.String(), "title": imp.Title, "format": imp.Format, "senders": imp.Senders,
			"me": imp.Me, "added": res.Added, "duplicates": res.Duplicates, "files": res.Files,
			"missing_files": res.MissingFiles, "too_large": res.TooLarge, "with": ""}
		if imp.With != (client.AccountID{}) {
			out["with"] = imp.With.String()
		}
		return c.printJSON(out)
	}
	fmt.Fprintf(c.stdout, "imported %q from WhatsApp (%s): %d new messages, %d files", imp.Title, imp.Format, res.Added, res.Files)
	if res.Duplicates > 0 {
		fmt.Fprintf(c.stdout, "; %d already imported, skipped", res.Duplicates)
	}
	fmt.Fprintln(c.stdout)
	if res.MissingFiles > 0 {
		fmt.Fprintf(c.stdout, "%d attached files are not in the export (export the chat with media, as a .zip, to bring them)\n", res.MissingFiles)
	}
	if res.TooLarge > 0 {
		fmt.Fprintf(c.stdout, "%d files over %d GiB were left out (their messages are kept)\n", res.TooLarge, client.MaxImportedFile>>30)
	}
	if imp.Me != "" {
		fmt.Fprintf(c.stdout, "you are %q", imp.Me)
	} else {
		fmt.Fprint(c.stdout, "none of the senders is you (--me NAME says who is)")
	}
	if imp.With != (client.AccountID{}) {
		fmt.Fprintf(c.stdout, "; it comes before your conversation with %s", c.who(ctx, cl, imp.With))
	}
	fmt.Fprintf(c.stdout, "\nread it with: sotto history %s\n", imp.ID.String()[:8])
	return nil
}

// askImport asks, on the terminal, which sender is "me" (unless --me
// said) and which contact each other sender is (unless --map said).
// Enter takes the default; the end of input takes every default.
func (c *cli) askImport(ctx context.Context, cl *client.Client, senders []string, counts map[string]int, me string, meSet bool,
	contacts map[string]client.AccountID, mapped bool) (string, error) {
	in := bufio.NewReader(c.stdin)
	ask := func(q string) (string, bool) {
		fmt.Fprint(c.stderr, q)
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintln(c.stderr)
			return "", false
		}
		return strings.TrimSpace(line), true
	}
	if !meSet {
		fmt.Fprintln(c.stderr, "The export's senders:")
		def := 0
		for i, s := range senders {
			fmt.Fprintf(c.stderr, "  %d. %s (%d messages)\n", i+1, s, counts[s])
			if s == me {
				def = i + 1
			}
		}
		for {
			a, ok := ask(fmt.Sprintf("Which one is you? (number, 0 for none; Enter: %d) ", def))
			if !ok || a == "" {
				break
			}
			n, err := strconv.Atoi(a)
			if err != nil || n < 0 || n > len(senders) {
				fmt.Fprintf(c.stderr, "  a number from 0 to %d, please\n", len(senders))
				continue
			}
			me = ""
			if n > 0 {
				me = senders[n-1]
			}
			break
		}
	}
	if mapped {
		return me, nil
	}
	for _, s := range senders {
		if s == me {
			continue
		}
		for {
			a, ok := ask(fmt.Sprintf("Which Sotto contact is %q? (@name or account id; Enter: none, keep the name) ", s))
			if !ok {
				return me, nil
			}
			if a == "" {
				break
			}
			id, err := c.target(ctx, cl, a)
			if err != nil {
				fmt.Fprintf(c.stderr, "  %v\n", err)
				continue
			}
			contacts[s] = id
			break
		}
	}
	return me, nil
}

// whatsappError says in a sentence why a file is not an export that can
// be imported.
func whatsappError(path string, err error) error {
	line := ""
	var pe *whatsapp.ParseError
	if errors.As(err, &pe) && pe.Line > 0 {
		line = fmt.Sprintf("line %d: ", pe.Line)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errorf("there is no file %s", path)
	case errors.Is(err, whatsapp.ErrEmpty):
		return errorf("%s is empty: it is not a WhatsApp chat export", path)
	case errors.Is(err, whatsapp.ErrNotText):
		return errorf(`%s is not a text file in UTF-8 (is it binary, or UTF-16?): give the .txt or .zip that WhatsApp's "Export chat" made`, path)
	case errors.Is(err, whatsapp.ErrNoHeader):
		return errorf("%s is not a WhatsApp chat export: none of its first lines starts like a WhatsApp message (date, time, sender)", path)
	case errors.Is(err, whatsapp.ErrTextBeforeHeader):
		return errorf("%s: %stext stands before the first message: was the export edited? remove the lines before the first message", path, line)
	case errors.Is(err, whatsapp.ErrBadTimestamp):
		return errorf("%s: %sa message has a date or time that cannot be (%v)", path, line, pe.Detail)
	case errors.Is(err, whatsapp.ErrTooLarge):
		return errorf("%s is too large to import (%v)", path, err)
	case errors.Is(err, whatsapp.ErrUnsafeZip):
		return errorf("%s is not safe to read, and no WhatsApp export looks like it (%v)", path, err)
	case errors.Is(err, whatsapp.ErrNoChatFile):
		return errorf("%s holds no chat text file: is it a WhatsApp export?", path)
	case errors.Is(err, whatsapp.ErrAmbiguousChatFile):
		return errorf("%s holds several text files and none is clearly the chat (%v)", path, err)
	case errors.Is(err, whatsapp.ErrNotZip):
		return errorf("%s starts like a zip but cannot be read as one: is it complete? (%v)", path, err)
	}
	return errorf("cannot read %s as a WhatsApp export: %v", path, err)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// history lists the imported conversations, or shows one (by the start
// of its id, or as the history before a contact's conversation,
// followed by that conversation).
func (c *cli) history(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	files := fs.String("files", "", "also write the conversation's stored files into this directory")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError{"want nothing, IMPORT (the start of its id) or @NAME"}
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	if len(pos) == 0 {
		if *files != "" {
			return usageError{"--files needs IMPORT or @NAME"}
		}
		return c.listImports(ctx, cl)
	}
	w := bufio.NewWriter(c.stdout)
	defer w.Flush()
	var msgs []client.ImportedMessage
	var live []client.Message
	if strings.HasPrefix(pos[0], "@") || len(pos[0]) == 2*len(client.AccountID{}) && !c.isImport(ctx, cl, pos[0]) {
		who, err := c.target(ctx, cl, pos[0])
		if err != nil {
			return err
		}
		if msgs, err = cl.ImportedWith(ctx, who); err != nil {
			return err
		}
		if live, err = cl.Messages(ctx, who); err != nil {
			return err
		}
	} else {
		imp, err := c.findImport(ctx, cl, pos[0])
		if err != nil {
			return err
		}
		if msgs, err = cl.ImportedMessages(ctx, imp.ID); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		c.printImported(ctx, w, cl, m)
	}
	for _, m := range live {
		c.printMessage(ctx, w, cl, m)
	}
	if *files != "" {
		return c.writeFiles(ctx, cl, msgs, *files)
	}
	return nil
}

func (c *cli) isImport(ctx context.Context, cl *client.Client, s string) bool {
	_, err := c.findImport(ctx, cl, s)
	return err == nil
}

// findImport finds an import by the start of its id (at least
// minImportPrefix hex digits) or its exact title.
func (c *cli) findImport(ctx context.Context, cl *client.Client, s string) (client.Import, error) {
	imps, err := cl.Imports(ctx)
	if err != nil {
		return client.Import{}, err
	}
	var found []client.Import
	for _, imp := range imps {
		if (len(s) >= minImportPrefix && strings.HasPrefix(imp.ID.String(), strings.ToLower(s))) || imp.Title == s {
			found = append(found, imp)
		}
	}
	switch len(found) {
	case 0:
		return client.Import{}, errorf("no imported conversation %q: `sotto history` lists them", s)
	case 1:
		return found[0], nil
	}
	return client.Import{}, errorf("%q names %d imported conversations: give more of the id (`sotto history` lists them)", s, len(found))
}

func (c *cli) listImports(ctx context.Context, cl *client.Client) error {
	imps, err := cl.Imports(ctx)
	if err != nil {
		return err
	}
	if c.json {
		out := []map[string]any{}
		for _, imp := range imps {
			j := map[string]any{"import": imp.ID.String(), "source": imp.Source, "title": imp.Title, "format": imp.Format,
				"senders": imp.Senders, "me": imp.Me, "messages": imp.Messages, "files": imp.Files,
				"imported_at": imp.ImportedAt.UTC().Format(time.RFC3339), "with": ""}
			if imp.With != (client.AccountID{}) {
				j["with"] = imp.With.String()
			}
			out = append(out, j)
		}
		return c.printJSON(out)
	}
	if len(imps) == 0 {
		fmt.Fprintln(c.stdout, "no imported conversations: bring one with `sotto import whatsapp FILE`")
		return nil
	}
	for _, imp := range imps {
		fmt.Fprintf(c.stdout, "%s  %s (%s, %d messages, %d files", imp.ID.String()[:8], imp.Title, imp.Source, imp.Messages, imp.Files)
		if imp.With != (client.AccountID{}) {
			fmt.Fprintf(c.stdout, "; before your conversation with %s", c.who(ctx, cl, imp.With))
		}
		fmt.Fprintln(c.stdout, ")")
	}
	return nil
}

// printImported prints an imported message as recv prints a message,
// or as a JSON line of type "imported".
func (c *cli) printImported(ctx context.Context, w io.Writer, cl *client.Client, m client.ImportedMessage) {
	if c.json {
		j := map[string]any{"type": "imported", "import": m.Import.String(), "id": m.ID.String(),
			"time": m.Time.Format("2006-01-02T15:04:05"), "sender": m.Sender, "me": m.Me, "contact": "",
			"kind": string(m.Kind), "text": m.Text, "attachment": m.Attachment, "has_file": m.HasFile,
			"file_size": m.FileSize, "edited": m.Edited}
		if m.Contact != (client.AccountID{}) {
			j["contact"] = m.Contact.String()
		}
		b, _ := json.Marshal(j)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "%s %s\n", m.Time.Format("2006-01-02 15:04"), importedLine(m, func(a client.AccountID) string { return c.who(ctx, cl, a) }))
}

// importedLine is an imported message as text, without its time:
// "who: text", with WhatsApp's markers as words.
func importedLine(m client.ImportedMessage, who func(client.AccountID) string) string {
	if m.Kind == client.ImportedSystem {
		return "· " + m.Text
	}
	name := m.Sender
	switch {
	case m.Me:
		name = "me"
	case m.Contact != (client.AccountID{}):
		name = who(m.Contact)
	}
	text := m.Text
	switch m.Kind {
	case client.ImportedAttachment:
		file := "[file " + m.Attachment
		if m.HasFile {
			file += fmt.Sprintf(", %s]", size(m.FileSize))
		} else {
			file += ", not in the export]"
		}
		text = strings.TrimSpace(file + " " + text)
	case client.ImportedMediaOmitted:
		text = strings.TrimSpace("[media not exported] " + text)
	case client.ImportedDeleted:
		text = "[deleted]"
	}
	if m.Edited {
		text += " (edited)"
	}
	return name + ": " + text
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// writeFiles writes the stored files of imported messages into dir, each
// under a name made safe for any file system, never over an existing
// file.
func (c *cli) writeFiles(ctx context.Context, cl *client.Client, msgs []client.ImportedMessage, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	n := 0
	for _, m := range msgs {
		if !m.HasFile {
			continue
		}
		name := safeFileName(m.Attachment, m.ID.String()[:8])
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			name = m.ID.String()[:8] + "-" + name
			f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
		if err != nil {
			return err
		}
		if err := cl.WriteImportedFile(ctx, m, f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		n++
	}
	fmt.Fprintf(c.stderr, "sotto: wrote %d files into %s\n", n, dir)
	return nil
}

// safeFileName keeps letters, digits and ._- of a name from an export
// (which anyone could have written) and never returns a path; fallback
// if nothing is left.
func safeFileName(name, fallback string) string {
	var b strings.Builder
	for _, r := range filepath.Base(strings.ReplaceAll(name, "\\", "/")) {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('_')
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if s == "" {
		return fallback
	}
	return s
}
