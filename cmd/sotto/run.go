package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/client/sqlitestore"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed; the message says what to do
	exitUsage = 2 // the command line is wrong
)

// Timeouts, each with its reason.
const (
	// commandTimeout bounds a one-shot command (init solves a proof of
	// work, which takes seconds).
	commandTimeout = 2 * time.Minute
	// recvQuiet: recv waits this long for the server to say the mailbox
	// is drained before giving up on more.
	recvQuiet = 30 * time.Second
	// linkWait is how long `sotto link` waits for the approval: the
	// server keeps a provisioning address about as long.
	linkWait = 10 * time.Minute
	// maxStdinText bounds a message read from standard input (the
	// protocol's limit for one text).
	maxStdinText = 64 << 10
)

const usage = `usage: sotto [--home DIR] [--json] [--passphrase-file FILE] [COMMAND [ARGS]]

Without a command, sotto opens the chat screen. Commands:
  init --server URL [--username NAME] [--contacts-only]
                                        create an account on a server
  whoami                                show this account, device and contact link
  username [NAME | --delete]            show, set or delete your username
  add @NAME|LINK                        add a contact by username or contact link
  contacts                              list your contacts
  send @NAME|ACCOUNT [TEXT...]          send TEXT, or standard input
  recv                                  print what arrived, then exit
  listen                                print messages as they arrive
  verify @NAME|ACCOUNT [--confirm | --code CODE]
                                        show the safety number and code; --confirm marks it
                                        compared by eye, --code checks the other side's code
  block @NAME|ACCOUNT, unblock @NAME|ACCOUNT
  link --server URL                     make this a new device of an account: shows a link
  link approve LINK                     (on a device of the account) approve a new device
  devices [remove ID]                   list the account's devices, or remove one
  profile [--name NAME | @NAME|ACCOUNT] show or set your profile name, or show a contact's
  import whatsapp FILE [--me NAME|none] [--map "WhatsApp Name=@NAME"]... [--title T] [--yes]
                                        import a WhatsApp chat export (.txt or .zip with media)
  history [IMPORT | @NAME] [--files DIR] list imported conversations, or show one (with --files,
                                        write its files); @NAME: the history before that chat
  export DIR [--include-keys]           write all your data into DIR (docs/export-format.md)
  import sotto DIR                      read an export of your account back (into a new --home
                                        with keys: restore the account, as restore does)
  backup FILE [--recipient AGE_KEY]...  write an encrypted backup of everything, keys included
                                        (passphrase: asked, or --backup-passphrase-file FILE)
  restore FILE [--identity FILE] [--server URL] [--keep-old-device]
                                        bring the account back from a backup into a new --home
`

// cli is one invocation.
type cli struct {
	home           string
	json           bool
	passphraseFile string
	// interactive: standard input is a terminal, so a command may ask
	// (otherwise flags and defaults decide); stderrTerminal: progress
	// bars are drawn.
	interactive    bool
	stderrTerminal bool
	stdin          io.Reader
	stdout         io.Writer
	stderr         io.Writer
}

// userError is a failure the user can act on: printed as it is.
type userError struct{ msg string }

func (e userError) Error() string { return e.msg }

func errorf(format string, args ...any) error { return userError{fmt.Sprintf(format, args...)} }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sotto", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, interactive: isTerminal(stdin), stderrTerminal: isTerminal(stderr)}
	fs.StringVar(&c.home, "home", "", "the profile's directory (default $SOTTO_HOME, or ~/.sotto)")
	fs.BoolVar(&c.json, "json", false, "print JSON")
	fs.StringVar(&c.passphraseFile, "passphrase-file", os.Getenv("SOTTO_PASSPHRASE_FILE"),
		"encrypt the profile with the passphrase in this file instead of a key file in the home directory")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if c.home == "" {
		c.home = defaultHome()
	}
	if fs.NArg() == 0 {
		if err := c.runChat(ctx); err != nil {
			fmt.Fprintf(stderr, "sotto: %v\n", err)
			return exitError
		}
		return exitOK
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if cmd == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	commands := map[string]func(context.Context, []string) error{
		"init": c.init, "whoami": c.whoami, "username": c.username, "add": c.add,
		"contacts": c.contacts, "send": c.send, "recv": c.recv, "listen": c.listen,
		"verify": c.verify, "block": c.block(true), "unblock": c.block(false),
		"link": c.link, "devices": c.devices, "profile": c.profile,
		"import": c.importCmd, "history": c.history, "export": c.export, "backup": c.backup, "restore": c.restore,
	}
	f, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "sotto: no command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	err := f(ctx, rest)
	var ue userError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp), errors.As(err, new(usageError)):
		if errors.As(err, new(usageError)) {
			fmt.Fprintf(stderr, "sotto %s: %v\n", cmd, err)
		}
		return exitUsage
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "sotto: %v\n", ue.msg)
	default:
		fmt.Fprintf(stderr, "sotto: %s\n", plain(err))
	}
	return exitError
}

// plain says what a failure from the client or the server means for the
// person at the keyboard, and what to do; the technical detail follows.
func plain(err error) string {
	var se *wsclient.StatusError
	switch {
	case errors.Is(err, client.ErrUnapprovedDevice):
		return "the server lists a device of that account which the account never approved, so nothing was sent; the server may be compromised (" + err.Error() + ")"
	case errors.As(err, &se):
		switch se.Code {
		case wirepb.Code_FORBIDDEN:
			return "that account accepts messages only from its contacts: ask them for their contact link (sotto whoami shows theirs), then `sotto add LINK`"
		case wirepb.Code_MAILBOX_FULL:
			return "their mailbox on the server is full: they need to come online before more can be sent"
		case wirepb.Code_RATE_LIMITED:
			return fmt.Sprintf("the server asks to slow down: try again in %d s", (se.Status.GetRetryAfterMs()+999)/1000)
		case wirepb.Code_UNAVAILABLE:
			return "the server is unavailable just now: try again shortly"
		}
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, new(*net.DNSError)):
		return "cannot reach the server: is it running, and is the address right? (" + err.Error() + ")"
	}
	return err.Error()
}

// usageError is a wrong command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func defaultHome() string {
	if h := os.Getenv("SOTTO_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".sotto")
	}
	return ".sotto"
}

// openStore opens the profile's encrypted store, creating the directory
// and key when create is set.
func (c *cli) openStore(ctx context.Context, create bool) (*sqlitestore.Store, error) {
	db := filepath.Join(c.home, "store.db")
	if !create {
		if _, err := os.Stat(db); errors.Is(err, os.ErrNotExist) {
			return nil, errorf("no Sotto profile in %s: create one with `sotto init --server URL`", c.home)
		}
	}
	if err := os.MkdirAll(c.home, 0o700); err != nil {
		return nil, err
	}
	var key []byte
	var err error
	if c.passphraseFile != "" {
		b, rerr := os.ReadFile(c.passphraseFile)
		if rerr != nil {
			return nil, errorf("cannot read the passphrase file: %v", rerr)
		}
		key, err = sqlitestore.KeyFromPassphrase(strings.TrimRight(string(b), "\r\n"), filepath.Join(c.home, "salt"))
	} else {
		key, err = sqlitestore.KeyFromFile(filepath.Join(c.home, "key"))
	}
	if err != nil {
		return nil, err
	}
	st, err := sqlitestore.Open(ctx, db, key)
	if err != nil && !create {
		return nil, errorf("cannot open the profile in %s: wrong key or passphrase? (%v)", c.home, err)
	}
	return st, err
}

// open opens the profile's client.
func (c *cli) open(ctx context.Context) (*client.Client, func(), error) {
	st, err := c.openStore(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	cl, err := client.Open(ctx, client.Options{Store: st})
	if errors.Is(err, client.ErrNoAccount) {
		st.Close()
		return nil, nil, errorf("no account in %s: create one with `sotto init --server URL`", c.home)
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return cl, func() { cl.Close(); st.Close() }, nil
}

func (c *cli) init(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	server := fs.String("server", "", "the server's URL, e.g. http://127.0.0.1:8080")
	username := fs.String("username", "", "a username to set")
	contactsOnly := fs.Bool("contacts-only", false, "accept messages only from contacts (who have your contact link or got a message from you)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" || fs.NArg() > 0 {
		return usageError{"want --server URL (and at most --username NAME)"}
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	st, err := c.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	cl, err := client.Create(ctx, client.Options{Server: *server, Store: st, ContactsOnly: *contactsOnly})
	if err != nil {
		if errors.Is(err, client.ErrAccountExists) {
			return errorf("%s already holds an account: use another --home", c.home)
		}
		return err
	}
	defer cl.Close()
	if *username != "" {
		if err := cl.SetUsername(ctx, *username); err != nil {
			if errors.Is(err, client.ErrUsernameTaken) {
				return errorf("the account is made, but @%s is taken: choose another with `sotto username NAME`", strings.TrimPrefix(*username, "@"))
			}
			return err
		}
	}
	return c.printAccount(ctx, cl)
}

func (c *cli) printAccount(ctx context.Context, cl *client.Client) error {
	name, err := cl.Username(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"account": cl.Account().String(), "device": cl.Device(), "username": name})
	}
	fmt.Fprintf(c.stdout, "account %s, device %d", cl.Account(), cl.Device())
	if name != "" {
		fmt.Fprintf(c.stdout, ", @%s", name)
	}
	fmt.Fprintln(c.stdout)
	return nil
}

func (c *cli) whoami(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return usageError{"takes no arguments"}
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	link, err := cl.ContactLink(ctx)
	if err != nil {
		return err
	}
	name, err := cl.Username(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"account": cl.Account().String(), "device": cl.Device(), "username": name, "contact_link": link})
	}
	if err := c.printAccount(ctx, cl); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "contact link (share it with people you know): %s\n", link)
	return nil
}

func (c *cli) username(ctx context.Context, args []string) error {
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	switch {
	case len(args) == 0:
	case len(args) == 1 && args[0] == "--delete":
		if err := cl.DeleteUsername(ctx); err != nil {
			return err
		}
	case len(args) == 1:
		err := cl.SetUsername(ctx, args[0])
		if errors.Is(err, client.ErrUsernameTaken) {
			return errorf("@%s is taken: choose another", strings.TrimPrefix(args[0], "@"))
		}
		if err != nil {
			return err
		}
	default:
		return usageError{"want NAME or --delete"}
	}
	return c.printAccount(ctx, cl)
}

func (c *cli) add(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return usageError{"want @NAME or a contact link"}
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var ct client.Contact
	if strings.HasPrefix(args[0], "sotto://") {
		ct, err = cl.AddContactLink(ctx, args[0])
	} else {
		ct, err = cl.AddContact(ctx, args[0])
	}
	if errors.Is(err, client.ErrNoSuchUser) {
		return errorf("nobody has the username %s: check the spelling (usernames match exactly)", args[0])
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(contactJSON(ct))
	}
	fmt.Fprintf(c.stdout, "added %s\n", displayName(ct))
	return nil
}

func contactJSON(ct client.Contact) map[string]any {
	return map[string]any{"account": ct.Account.String(), "name": ct.Name}
}

func (c *cli) contacts(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return usageError{"takes no arguments"}
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	cs, err := cl.Contacts(ctx)
	if err != nil {
		return err
	}
	if c.json {
		out := []map[string]any{}
		for _, ct := range cs {
			out = append(out, contactJSON(ct))
		}
		return c.printJSON(out)
	}
	for _, ct := range cs {
		fmt.Fprintln(c.stdout, displayName(ct))
	}
	return nil
}

// qr renders text as a QR code in terminal half-blocks, with a blank
// line after it; "" if it does not fit a QR code.
func qr(text string) string {
	q, err := qrcode.New(text, qrcode.Low)
	if err != nil {
		return ""
	}
	return q.ToSmallString(false) + "\n"
}

func displayName(ct client.Contact) string {
	if ct.Name != "" {
		return "@" + ct.Name + " (" + ct.Account.String() + ")"
	}
	return ct.Account.String()
}

// target resolves @NAME (a contact) or an account id.
func (c *cli) target(ctx context.Context, cl *client.Client, s string) (client.AccountID, error) {
	if strings.HasPrefix(s, "@") {
		ct, err := cl.ContactByName(ctx, s)
		if errors.Is(err, client.ErrNoContact) {
			return client.AccountID{}, errorf("no contact named %s: add them with `sotto add %s`", s, s)
		}
		return ct.Account, err
	}
	id, err := client.ParseAccountID(s)
	if err != nil {
		return id, errorf("%q is neither @NAME nor an account id (32 hex digits)", s)
	}
	return id, nil
}

func (c *cli) send(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"want @NAME|ACCOUNT [TEXT...]"}
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	to, err := c.target(ctx, cl, args[0])
	if err != nil {
		return err
	}
	text := strings.Join(args[1:], " ")
	if len(args) == 1 || (len(args) == 2 && args[1] == "-") {
		b, err := io.ReadAll(io.LimitReader(c.stdin, maxStdinText+1))
		if err != nil {
			return err
		}
		if len(b) > maxStdinText {
			return errorf("the message is over %d KiB: send long texts as a file", maxStdinText>>10)
		}
		text = strings.TrimRight(string(b), "\n")
	}
	if strings.TrimSpace(text) == "" {
		return errorf("nothing to send: give TEXT, or pipe it in")
	}
	m, err := cl.SendText(ctx, to, text)
	switch {
	case errors.Is(err, client.ErrIdentityChanged):
		return errorf("the safety number of %s changed since you verified it: compare it again with `sotto verify %s`, then send", args[0], args[0])
	case errors.Is(err, client.ErrBlocked):
		return errorf("you blocked %s: `sotto unblock %s` to send", args[0], args[0])
	}
	if errors.Is(err, client.ErrQueued) {
		// Kept: it goes out on the next send, recv or listen.
		fmt.Fprintln(c.stderr, "sotto: the server is unreachable; the message is queued and goes out with your next send, recv or listen")
		err = nil
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(c.messageJSON(ctx, cl, m))
	}
	return nil
}

// recv prints what waited for this device, then exits.
func (c *cli) recv(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return usageError{"takes no arguments"}
	}
	return c.receive(ctx, true)
}

// listen prints messages as they arrive, until interrupted.
func (c *cli) listen(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return usageError{"takes no arguments"}
	}
	return c.receive(ctx, false)
}

// openRunning opens the profile's client and keeps it connected (Run)
// until stop, which also closes it; ctx is stop's.
func (c *cli) openRunning(ctx context.Context) (cl *client.Client, runCtx context.Context, stop func(), err error) {
	cl, done, err := c.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- cl.Run(runCtx) }()
	return cl, runCtx, func() { cancel(); <-runErr; done() }, nil
}

func (c *cli) receive(ctx context.Context, untilDrained bool) error {
	cl, ctx, stop, err := c.openRunning(ctx)
	if err != nil {
		return err
	}
	defer stop()
	var quiet <-chan time.Time
	if untilDrained {
		quiet = time.After(recvQuiet)
	}
	w := bufio.NewWriter(c.stdout)
	defer w.Flush()
	for {
		select {
		case <-ctx.Done():
			return nil // interrupted: a normal end for listen
		case <-quiet:
			return errorf("the server did not answer within %v: is it running?", recvQuiet)
		case e := <-cl.Events():
			switch e := e.(type) {
			case client.MessageEvent:
				c.printMessage(ctx, w, cl, e.Message)
				if !untilDrained {
					w.Flush()
				}
			case client.UndecryptableEvent:
				fmt.Fprintf(c.stderr, "sotto: a message could not be decrypted and was dropped (%v)\n", e.Err)
			case client.ReceiptEvent, client.TypingEvent, client.IdentityChangedEvent:
				// listen reports these too: as JSON lines for programs, as
				// a line of text for people.
				if !untilDrained {
					c.printEvent(ctx, w, cl, e)
					w.Flush()
				}
			case client.DrainedEvent:
				if untilDrained {
					return nil
				}
			case client.DisconnectedEvent:
				if untilDrained {
					return errorf("cannot reach the server (%v): try again when it is up", e.Err)
				}
				fmt.Fprintf(c.stderr, "sotto: disconnected (%v); reconnecting\n", e.Err)
			}
		}
	}
}

func (c *cli) verify(ctx context.Context, args []string) error {
	confirm := len(args) == 2 && args[1] == "--confirm"
	scanned := ""
	if len(args) == 3 && args[1] == "--code" {
		scanned = args[2]
	}
	if len(args) != 1 && !confirm && scanned == "" {
		return usageError{"want @NAME|ACCOUNT [--confirm | --code CODE]"}
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	who, err := c.target(ctx, cl, args[0])
	if err != nil {
		return err
	}
	number, code, err := cl.SafetyNumber(ctx, who)
	if errors.Is(err, client.ErrNoSafetyNumber) {
		return errorf("no safety number with %s yet: exchange a message first", args[0])
	}
	if err != nil {
		return err
	}
	if scanned != "" {
		theirs, err := base64.RawURLEncoding.DecodeString(scanned)
		if err != nil {
			return errorf("that code is not one `sotto verify` shows")
		}
		if err := cl.Verify(ctx, who, theirs); err != nil {
			return errorf("the codes differ: this conversation is not with the key %s has; do not trust it", args[0])
		}
	}
	if confirm {
		if err := cl.MarkVerified(ctx, who); err != nil {
			return err
		}
	}
	verified, err := cl.Verified(ctx, who)
	if err != nil {
		return err
	}
	shown := base64.RawURLEncoding.EncodeToString(code)
	if c.json {
		return c.printJSON(map[string]any{"account": who.String(), "safety_number": number, "code": shown, "verified": verified})
	}
	var groups []string
	for i := 0; i+5 <= len(number); i += 5 {
		groups = append(groups, number[i:i+5])
	}
	fmt.Fprintf(c.stdout, "safety number with %s:\n", args[0])
	for i := 0; i < len(groups); i += 4 {
		fmt.Fprintf(c.stdout, "  %s\n", strings.Join(groups[i:min(i+4, len(groups))], " "))
	}
	if verified {
		fmt.Fprintln(c.stdout, "verified")
		return nil
	}
	fmt.Fprintf(c.stdout, "%sor their side runs: sotto verify <you> --code %s\n", qr(shown), shown)
	fmt.Fprintf(c.stdout, "not verified: compare it with theirs, then `sotto verify %s --confirm`\n", args[0])
	return nil
}

// link makes this profile a new device of an account (it shows a link
// and waits), or with "approve LINK" approves one from a device of it.
func (c *cli) link(ctx context.Context, args []string) error {
	if len(args) == 2 && args[0] == "approve" {
		cl, done, err := c.open(ctx)
		if err != nil {
			return err
		}
		defer done()
		ctx, cancel := context.WithTimeout(ctx, commandTimeout)
		defer cancel()
		if err := cl.ApproveLink(ctx, args[1]); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]any{"approved": true})
		}
		fmt.Fprintln(c.stdout, "approved: the new device joins the account")
		return nil
	}
	fs := flag.NewFlagSet("link", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	server := fs.String("server", "", "the account's server URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *server == "" || fs.NArg() > 0 {
		return usageError{"want --server URL, or approve LINK"}
	}
	st, err := c.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	req, err := client.NewLinkRequest(ctx, client.Options{Server: *server, Store: st})
	if err != nil {
		if errors.Is(err, client.ErrAccountExists) {
			return errorf("%s already holds an account: link into another --home", c.home)
		}
		return err
	}
	defer req.Close()
	if c.json {
		if err := c.printJSON(map[string]any{"link": req.URI()}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.stdout, "%son a device of the account, run:\n\n  sotto link approve '%s'\n\nwaiting for the approval…\n", qr(req.URI()), req.URI())
	}
	if f, ok := c.stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	ctx, cancel := context.WithTimeout(ctx, linkWait)
	defer cancel()
	cl, err := req.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return errorf("no approval within %v: run `sotto link` again", linkWait)
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	return c.printAccount(ctx, cl)
}

func (c *cli) devices(ctx context.Context, args []string) error {
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	switch {
	case len(args) == 2 && args[0] == "remove":
		id, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil {
			return usageError{"want remove ID (a device number)"}
		}
		if err := cl.RemoveDevice(ctx, client.DeviceID(id)); err != nil {
			return err
		}
	case len(args) != 0:
		return usageError{"want no arguments, or remove ID"}
	}
	ds, err := cl.Devices(ctx)
	if err != nil {
		return err
	}
	if c.json {
		out := []map[string]any{}
		for _, d := range ds {
			out = append(out, map[string]any{"id": d.ID, "this": d.This,
				"created": d.Created.Format(time.DateOnly), "last_seen": d.LastSeen.Format(time.DateOnly)})
		}
		return c.printJSON(out)
	}
	for _, d := range ds {
		this := ""
		if d.This {
			this = " (this device)"
		}
		fmt.Fprintf(c.stdout, "device %d%s: added %s, last seen %s\n", d.ID, this, d.Created.Format(time.DateOnly), d.LastSeen.Format(time.DateOnly))
	}
	return nil
}

// profile shows or sets this account's profile name, or shows a
// contact's (profiles are encrypted with the profile key: only those who
// hold it can read them).
func (c *cli) profile(ctx context.Context, args []string) error {
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	who := cl.Account()
	switch {
	case len(args) == 2 && args[0] == "--name":
		if err := cl.SetProfile(ctx, client.Profile{Name: args[1]}); err != nil {
			return err
		}
	case len(args) == 1:
		if who, err = c.target(ctx, cl, args[0]); err != nil {
			return err
		}
	case len(args) != 0:
		return usageError{"want --name NAME, or @NAME|ACCOUNT"}
	}
	p, err := cl.ProfileOf(ctx, who)
	if errors.Is(err, client.ErrNoProfileKey) {
		return errorf("%s has not shared a profile with you (it comes with their first message to you, or their contact link)", args[0])
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"account": who.String(), "name": p.Name, "avatar_bytes": len(p.Avatar)})
	}
	if p.Name == "" {
		fmt.Fprintln(c.stdout, "no profile name")
		return nil
	}
	fmt.Fprintln(c.stdout, p.Name)
	return nil
}

func (c *cli) block(blocked bool) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) != 1 {
			return usageError{"want @NAME|ACCOUNT"}
		}
		cl, done, err := c.open(ctx)
		if err != nil {
			return err
		}
		defer done()
		who, err := c.target(ctx, cl, args[0])
		if err != nil {
			return err
		}
		if blocked {
			return cl.Block(ctx, who)
		}
		return cl.Unblock(ctx, who)
	}
}

func (c *cli) messageJSON(ctx context.Context, cl *client.Client, m client.Message) map[string]any {
	return map[string]any{
		"id": m.ID.String(), "with": m.With.String(), "with_name": c.nameOf(ctx, cl, m.With),
		"outgoing": m.Outgoing, "device": m.FromDevice, "text": m.Text, "status": m.Status.String(),
		"sent_at": m.SentAt.UTC().Format(time.RFC3339Nano), "received_at": m.ReceivedAt.UTC().Format(time.RFC3339Nano),
	}
}

// printEvent prints a receipt, typing or identity-change event.
func (c *cli) printEvent(ctx context.Context, w io.Writer, cl *client.Client, e client.Event) {
	var j map[string]any
	var text string
	switch e := e.(type) {
	case client.ReceiptEvent:
		ids := make([]string, len(e.IDs))
		for i, id := range e.IDs {
			ids[i] = id.String()
		}
		j = map[string]any{"type": "receipt", "with": e.With.String(), "status": e.Status.String(), "ids": ids}
		text = fmt.Sprintf("%s: %d message(s) %s", c.who(ctx, cl, e.With), len(ids), e.Status)
	case client.TypingEvent:
		j = map[string]any{"type": "typing", "with": e.With.String(), "typing": e.Typing}
		text = c.who(ctx, cl, e.With) + " is typing…"
		if !e.Typing {
			text = c.who(ctx, cl, e.With) + " stopped typing"
		}
	case client.IdentityChangedEvent:
		j = map[string]any{"type": "identity_changed", "with": e.With.String(), "was_verified": e.WasVerified}
		text = fmt.Sprintf("the safety number with %s changed: check it with `sotto verify`", c.who(ctx, cl, e.With))
	default:
		return
	}
	if c.json {
		b, _ := json.Marshal(j)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintln(w, text)
}

// who names an account for a line of text: @name, or its id's start.
func (c *cli) who(ctx context.Context, cl *client.Client, a client.AccountID) string {
	if n := c.nameOf(ctx, cl, a); n != "" {
		return "@" + n
	}
	return a.String()[:8]
}

func (c *cli) printMessage(ctx context.Context, w io.Writer, cl *client.Client, m client.Message) {
	if c.json {
		j := c.messageJSON(ctx, cl, m)
		j["type"] = "message"
		b, _ := json.Marshal(j)
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	who := c.who(ctx, cl, m.With)
	arrow := "from " + who
	if m.Outgoing {
		arrow = "to " + who
	}
	fmt.Fprintf(w, "%s %s: %s\n", m.SentAt.Local().Format("2006-01-02 15:04"), arrow, m.Text)
}

func (c *cli) nameOf(ctx context.Context, cl *client.Client, a client.AccountID) string {
	cs, err := cl.Contacts(ctx)
	if err != nil {
		return ""
	}
	for _, ct := range cs {
		if ct.Account == a {
			return ct.Name
		}
	}
	return ""
}

func (c *cli) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", b)
	return err
}
