package subpoena

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sotto-chat/sotto/client"
	"github.com/sotto-chat/sotto/internal/access"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// The workload's shape and its made-up network identity, each with its
// reason.
const (
	// accounts and devicesPerAccount: enough for every pair of accounts
	// to have a conversation, each side with two devices.
	accounts          = 3
	devicesPerAccount = 2
	// forwardedFor, realIP and forwardedHdr are made-up client addresses
	// (from the documentation ranges of RFC 5737) that a proxy in front
	// of sottod would add: the server must neither trust nor keep them.
	forwardedFor = "203.0.113.77"
	realIP       = "198.51.100.23"
	forwardedHdr = "192.0.2.146"
	// agentProduct starts every user agent the workload sends; a random
	// comment follows, so that each run's agent is unique. agentName
	// alone is searched for too, as a log might shorten the agent.
	agentName    = "SubpoenaCanaryAgent"
	agentProduct = agentName + "/1.0"
	// sourceIP is the loopback address the test's own HTTP requests come
	// from (Linux routes all of 127/8 to the loopback interface), so that
	// a remote address kept anywhere is told apart from the listen
	// address. The clients' connections come from 127.0.0.1.
	sourceIP = "127.0.0.77"
	// loopbackIP is where the clients' connections come from, and what
	// sottod listens on: allowed only as part of a configured address.
	loopbackIP = "127.0.0.1"
	// eventTimeout bounds the wait for one expected event (a message, a
	// receipt): on two busy cores under the race detector a delivery
	// takes well under a second.
	eventTimeout = 30 * time.Second
	// attachmentSize is the attachment's plaintext size: more than one
	// read buffer, small enough to be quick.
	attachmentSize = 100 << 10
)

// canary is a unique string the workload handed to a client.
type canary struct{ what, value string }

// secretValue is bytes that live only on clients (keys).
type secretValue struct {
	what  string
	value []byte
}

// usedAccount is an account of the workload.
type usedAccount struct {
	name string
	id   client.AccountID
}

// used is everything the workload used that the server must not hold
// (and what it may: the accounts and the configured addresses).
type used struct {
	canaries []canary
	secrets  []secretValue
	agents   []string
	ips      []string
	// listen holds the server's configured addresses (host:port): its
	// listen address and the PostgreSQL server's. An IP address followed
	// by one of these ports is that setting, not a client's address.
	listen    []string
	accounts  []usedAccount
	usernames []string // normalized
	// accessKeys are the unidentified access keys derived from the
	// profile keys, which the server may hold (for the report).
	accessKeys [][]byte
}

// allowAddr returns the allow function of ip's text form: a match
// followed by ":port" of a configured address of that host is allowed.
func (u *used) allowAddr(ip string) func([]byte, int) bool {
	var suffixes [][]byte
	for _, l := range u.listen {
		if host, port, err := net.SplitHostPort(l); err == nil && host == ip {
			suffixes = append(suffixes, []byte(":"+port))
		}
	}
	if suffixes == nil {
		return nil
	}
	return func(hay []byte, off int) bool {
		rest := hay[off+len(ip):]
		for _, s := range suffixes {
			if bytes.HasPrefix(rest, s) && (len(rest) == len(s) || !isDigit(rest[len(s)])) {
				return true
			}
		}
		return false
	}
}

// token returns n random bytes in hex: what makes each canary unique.
func token(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// addCanary records a canary and returns it.
func (u *used) addCanary(what, value string) string {
	u.canaries = append(u.canaries, canary{what, value})
	return value
}

// device is one running client.
type device struct {
	name   string
	c      *client.Client
	store  *client.MemoryStore
	cancel context.CancelFunc
	done   chan error
	stop   chan struct{}
	pumped chan struct{}

	mu     sync.Mutex
	events []client.Event
	more   chan struct{} // closed when an event arrives
	bad    error         // an undecryptable envelope
}

// start runs the client and collects its events.
func start(name string, c *client.Client, st *client.MemoryStore) *device {
	ctx, cancel := context.WithCancel(context.Background())
	d := &device{name: name, c: c, store: st, cancel: cancel, done: make(chan error, 1), stop: make(chan struct{}),
		pumped: make(chan struct{}), more: make(chan struct{})}
	go func() { d.done <- c.Run(ctx) }()
	go d.pump()
	return d
}

func (d *device) pump() {
	defer close(d.pumped)
	for {
		select {
		case <-d.stop:
			return
		case e := <-d.c.Events():
			d.mu.Lock()
			d.events = append(d.events, e)
			if u, ok := e.(client.UndecryptableEvent); ok && d.bad == nil {
				d.bad = u.Err
			}
			close(d.more)
			d.more = make(chan struct{})
			d.mu.Unlock()
		}
	}
}

// halt stops the client and its event pump.
func (d *device) halt() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
	d.c.Close()
	close(d.stop)
	<-d.pumped
	d.cancel = nil
}

// await waits for an event that pred accepts (among all the device has
// seen), or fails after eventTimeout.
func (d *device) await(ctx context.Context, what string, pred func(client.Event) bool) error {
	timeout := time.NewTimer(eventTimeout)
	defer timeout.Stop()
	for {
		d.mu.Lock()
		if d.bad != nil {
			d.mu.Unlock()
			return fmt.Errorf("%s: an undecryptable envelope: %w", d.name, d.bad)
		}
		if slices.ContainsFunc(d.events, pred) {
			d.mu.Unlock()
			return nil
		}
		more := d.more
		d.mu.Unlock()
		select {
		case <-more:
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %s: %w", d.name, what, ctx.Err())
		case <-timeout.C:
			return fmt.Errorf("%s: no %s within %v", d.name, what, eventTimeout)
		}
	}
}

// message returns the first message event with text.
func (d *device) message(text string) (client.Message, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.events {
		if m, ok := e.(client.MessageEvent); ok && m.Message.Text == text {
			return m.Message, true
		}
	}
	return client.Message{}, false
}

// workload is one run of the scripted workload against a server.
type workload struct {
	t       *testing.T
	ctx     context.Context
	url     string // http://host:port
	header  http.Header
	dialer  *net.Dialer // from sourceIP
	http    *http.Client
	used    *used
	devices [accounts][devicesPerAccount]*device
	sent    []sent
	// tls is the client side of a server serving TLS (nil for plain
	// HTTP); the workload is then HTTP only, as the client package
	// cannot be told to trust the test's certificate.
	tls *tls.Config
}

// newWorkload prepares the made-up headers and the dialer from sourceIP
// (or the default one where binding it fails, with a log line). roots,
// if not nil, holds the certificate of a server serving TLS.
func newWorkload(t *testing.T, ctx context.Context, serverURL, listenAddr string, roots *x509.CertPool) *workload {
	u := &used{listen: []string{listenAddr}}
	comment := token(8)
	agent := fmt.Sprintf("%s (subpoena; %s)", agentProduct, comment)
	// The whole agent, its product name alone (as a log might shorten
	// it), and its random part.
	u.agents = []string{agent, agentName, comment}
	u.ips = []string{forwardedFor, realIP, forwardedHdr, sourceIP, loopbackIP}
	h := http.Header{}
	h.Set("User-Agent", agent)
	h.Set("X-Forwarded-For", forwardedFor)
	h.Set("X-Real-IP", realIP)
	h.Set("Forwarded", "for="+forwardedHdr+";proto=https")
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(sourceIP)}}
	if c, err := dialer.DialContext(ctx, "tcp", listenAddr); err != nil {
		t.Logf("cannot dial from %s (%v): the test's requests come from the default address", sourceIP, err)
		dialer = &net.Dialer{}
	} else {
		c.Close()
	}
	tr := &http.Transport{DialContext: dialer.DialContext}
	w := &workload{t: t, ctx: ctx, url: serverURL, header: h, dialer: dialer, used: u,
		http: &http.Client{Transport: tr, Timeout: eventTimeout}}
	if roots != nil {
		w.tls = &tls.Config{RootCAs: roots}
		tr.TLSClientConfig, tr.ForceAttemptHTTP2 = w.tls, true
	}
	t.Cleanup(w.http.CloseIdleConnections)
	return w
}

// opts returns the options of a new device, with its store.
func (w *workload) opts() (client.Options, *client.MemoryStore) {
	st := client.NewMemoryStore()
	return client.Options{Server: w.url, Store: st, Header: w.header}, st
}

// run runs the whole workload; the devices are left running.
func (w *workload) run() error {
	type step struct {
		name string
		f    func() error
	}
	steps := []step{
		{"accounts", w.createAccounts},
		{"raw requests", w.rawRequests},
		{"messages", w.messages},
		{"receipts and typing", w.receiptsAndTyping},
		{"profiles", w.checkProfiles},
		{"attachment", w.attachment},
	}
	if w.tls != nil {
		steps = []step{
			{"raw requests", w.rawRequests},
			{"TLS misbehaviour", w.tlsMisbehaviour},
			{"attachment", w.attachment},
		}
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.f(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		w.t.Logf("workload: %s in %v", s.name, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// halt stops every device.
func (w *workload) halt() {
	for _, a := range w.devices {
		for _, d := range a {
			if d != nil {
				d.halt()
			}
		}
	}
}

// createAccounts registers the accounts (the last accepts only its
// contacts, so the server holds an unidentified access key), sets their
// usernames and profiles, makes contacts by username and by contact link,
// and links their second devices.
func (w *workload) createAccounts() error {
	ctx, u := w.ctx, w.used
	for i := range accounts {
		o, st := w.opts()
		o.ContactsOnly = i == accounts-1
		c, err := client.Create(ctx, o)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("a%d", i)
		u.accounts = append(u.accounts, usedAccount{name, c.Account()})
		w.devices[i][0] = start(name+".d0", c, st)
		username := u.addCanary(fmt.Sprintf("username of %s", name), fmt.Sprintf("sbpn_%s_%s", name, token(8)))
		u.usernames = append(u.usernames, username)
		if err := c.SetUsername(ctx, username); err != nil {
			return err
		}
		p := client.Profile{Name: u.addCanary("profile name of "+name, fmt.Sprintf("Zoë Subpoena-%s %s", name, token(8)))}
		if i == 0 {
			p.Avatar = []byte(u.addCanary("avatar of "+name, "AVATAR CANARY "+token(16)))
		}
		if err := c.SetProfile(ctx, p); err != nil {
			return err
		}
		link, err := c.ContactLink(ctx)
		if err != nil {
			return err
		}
		pu, err := url.Parse(link)
		if err != nil {
			return err
		}
		pk, err := base64.RawURLEncoding.DecodeString(pu.Query().Get("k"))
		if err != nil {
			return fmt.Errorf("the contact link's profile key: %w", err)
		}
		u.secrets = append(u.secrets, secretValue{"profile key of " + name, pk})
		if o.ContactsOnly {
			ak, err := access.Derive(pk)
			if err != nil {
				return err
			}
			u.accessKeys = append(u.accessKeys, ak[:])
		}
	}
	// a0 finds a1 by username, a2 looks a0 up, a1 adds a2 by its link.
	a0, a1, a2 := w.devices[0][0].c, w.devices[1][0].c, w.devices[2][0].c
	ct, err := a0.AddContact(ctx, u.usernames[1])
	if err != nil {
		return fmt.Errorf("add a1 by username: %w", err)
	}
	if ct.Account != a1.Account() {
		return fmt.Errorf("a1's username found %s", ct.Account)
	}
	id, err := a2.LookupUsername(ctx, "@"+u.usernames[0])
	if err != nil {
		return fmt.Errorf("look up a0: %w", err)
	}
	if id != a0.Account() {
		return fmt.Errorf("a0's username found %s", id)
	}
	link, err := a2.ContactLink(ctx)
	if err != nil {
		return err
	}
	if _, err := a1.AddContactLink(ctx, link); err != nil {
		return err
	}
	// The second devices come with the contacts.
	for i := range accounts {
		first := w.devices[i][0]
		o, st := w.opts()
		req, err := client.NewLinkRequest(ctx, o)
		if err != nil {
			return err
		}
		if err := first.c.ApproveLink(ctx, req.URI()); err != nil {
			req.Close()
			return err
		}
		c, err := req.Wait(ctx)
		if err != nil {
			return err
		}
		w.devices[i][1] = start(fmt.Sprintf("a%d.d1", i), c, st)
	}
	return nil
}

// sent is a message and who must see it.
type sent struct {
	text     string
	from, to int
	msg      client.Message
}

// order is the order of the conversations: a2 accepts only contacts, so
// a0 writes to it only after a2 wrote to a0 (which hands a0 the profile
// key); a1 holds a2's contact link.
var order = [][2]int{{0, 1}, {1, 0}, {1, 2}, {2, 1}, {2, 0}, {0, 2}}

// messages: every account writes to every other from both devices, then
// once more from the first device, when both sides have accepted each
// other (so delivery receipts flow).
func (w *workload) messages() error {
	var all []sent
	for round := range 2 {
		var batch []sent
		for _, p := range order {
			for k := range devicesPerAccount {
				if round == 1 && k == 1 {
					continue
				}
				text := w.used.addCanary(fmt.Sprintf("message %d from a%d.d%d to a%d", len(all)+len(batch), p[0], k, p[1]),
					fmt.Sprintf("canary message r%d a%d.d%d→a%d %s", round, p[0], k, p[1], token(8)))
				m, err := w.devices[p[0]][k].c.SendText(w.ctx, w.devices[p[1]][0].c.Account(), text)
				if err != nil {
					return fmt.Errorf("a%d.d%d to a%d: %w", p[0], k, p[1], err)
				}
				batch = append(batch, sent{text, p[0], p[1], m})
				if err := w.delivered(batch[len(batch)-1], k); err != nil {
					return err
				}
			}
		}
		all = append(all, batch...)
	}
	w.sent = all
	return nil
}

// delivered waits until a message shows on both devices of its recipient
// and, as sent, on the sender's other device.
func (w *workload) delivered(s sent, fromDevice int) error {
	from, to := w.devices[s.from][0].c.Account(), w.devices[s.to][0].c.Account()
	for _, d := range w.devices[s.to] {
		if err := d.await(w.ctx, "message "+s.text, func(e client.Event) bool {
			m, ok := e.(client.MessageEvent)
			return ok && m.Message.Text == s.text && !m.Message.Outgoing && m.Message.With == from
		}); err != nil {
			return err
		}
	}
	return w.devices[s.from][1-fromDevice].await(w.ctx, "sync of "+s.text, func(e client.Event) bool {
		m, ok := e.(client.MessageEvent)
		return ok && m.Message.Text == s.text && m.Message.Outgoing && m.Message.With == to
	})
}

// receiptsAndTyping: the second round's messages are reported delivered;
// each recipient marks them read (a read receipt); each account types to
// the next.
func (w *workload) receiptsAndTyping() error {
	for _, s := range w.sent[len(w.sent)-len(order):] {
		sender, recipient := w.devices[s.from][0], w.devices[s.to][0]
		with := recipient.c.Account()
		receipt := func(status client.MessageStatus) func(client.Event) bool {
			return func(e client.Event) bool {
				r, ok := e.(client.ReceiptEvent)
				return ok && r.With == with && r.Status == status && slices.Contains(r.IDs, s.msg.ID)
			}
		}
		if err := sender.await(w.ctx, "delivery receipt", receipt(client.StatusDelivered)); err != nil {
			return err
		}
		got, ok := recipient.message(s.text)
		if !ok {
			return fmt.Errorf("%s lost %q", recipient.name, s.text)
		}
		if err := recipient.c.MarkRead(w.ctx, sender.c.Account(), got.ID); err != nil {
			return err
		}
		if err := sender.await(w.ctx, "read receipt", receipt(client.StatusRead)); err != nil {
			return err
		}
	}
	for i := range accounts {
		j := (i + 1) % accounts
		from, to := w.devices[i][1], w.devices[j][0]
		for _, typing := range []bool{true, false} {
			if err := from.c.SendTyping(w.ctx, to.c.Account(), typing); err != nil {
				return err
			}
			if err := to.await(w.ctx, "typing", func(e client.Event) bool {
				te, ok := e.(client.TypingEvent)
				return ok && te.With == from.c.Account() && te.Typing == typing
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkProfiles: each account's second device reads the next account's
// profile (the server hands out the ciphertext; the key came in a
// message).
func (w *workload) checkProfiles() error {
	for i := range accounts {
		j := (i + 1) % accounts
		p, err := w.devices[i][1].c.ProfileOf(w.ctx, w.devices[j][0].c.Account())
		if err != nil {
			return fmt.Errorf("a%d reads a%d's profile: %w", i, j, err)
		}
		if !strings.Contains(p.Name, fmt.Sprintf("Subpoena-a%d ", j)) {
			return fmt.Errorf("a%d's profile name reads %q", j, p.Name)
		}
	}
	return nil
}

// request makes an HTTP request from sourceIP with the made-up headers
// and returns the response, its body read.
func (w *workload) request(method, path string, body []byte, hdr map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(w.ctx, method, w.url+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range w.header {
		req.Header[k] = v
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	resp, err := w.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// expect makes a request and checks its status.
func (w *workload) expect(status int, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte, error) {
	resp, b, err := w.request(method, path, body, hdr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != status {
		return nil, nil, fmt.Errorf("%s %s: %s (%q), want %d", method, path, resp.Status, b, status)
	}
	return resp, b, nil
}

// attachment: a0.d1 encrypts a file (AES-256-GCM, a fresh key and
// nonce), uploads the ciphertext in two PATCHes, and sends its id and key
// to a2 in a message; a2.d1 reads them from the message, downloads the
// ciphertext and decrypts it (without clients, over TLS, the id and key
// go straight to the download). The server also sees a PATCH with a
// wrong token and a download of an unknown id.
func (w *workload) attachment() error {
	u := w.used
	plain := []byte(u.addCanary("attachment content", "ATTACHMENT CANARY "+token(16)+" "))
	for len(plain) < attachmentSize {
		plain = append(plain, plain...)
	}
	key := make([]byte, 32)
	rand.Read(key)
	u.secrets = append(u.secrets, secretValue{"attachment key", key})
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	blob := aead.Seal(nonce, nonce, plain, nil)

	with := func(kv ...string) map[string]string {
		m := map[string]string{"Tus-Resumable": "1.0.0"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	resp, _, err := w.expect(http.StatusCreated, http.MethodPost, "/v1/attachments/", nil, with("Upload-Length", strconv.Itoa(len(blob))))
	if err != nil {
		return err
	}
	id, tok := resp.Header.Get("Location"), resp.Header.Get("Upload-Token")
	if len(id) != 32 || tok == "" {
		return fmt.Errorf("upload created as %q", id)
	}
	wrong := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	if _, _, err := w.expect(http.StatusForbidden, http.MethodPatch, "/v1/attachments/"+id, blob[:10],
		with("Upload-Token", wrong, "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")); err != nil {
		return err
	}
	half := len(blob) / 2
	for _, part := range []struct {
		off  int
		body []byte
	}{{0, blob[:half]}, {half, blob[half:]}} {
		if _, _, err := w.expect(http.StatusNoContent, http.MethodPatch, "/v1/attachments/"+id, part.body,
			with("Upload-Token", tok, "Upload-Offset", strconv.Itoa(part.off), "Content-Type", "application/offset+octet-stream")); err != nil {
			return err
		}
	}
	if _, _, err := w.expect(http.StatusOK, http.MethodHead, "/v1/attachments/"+id, nil, with("Upload-Token", tok)); err != nil {
		return err
	}

	gotID, gotKey := id, key
	if w.tls == nil {
		// The id and key travel in a message, as a client sends them.
		pointer := u.addCanary("attachment pointer message", fmt.Sprintf("canary attachment %s %s %s", token(8), id, base64.StdEncoding.EncodeToString(key)))
		sender, recipient := w.devices[0][1], w.devices[2][1]
		if _, err := sender.c.SendText(w.ctx, recipient.c.Account(), pointer); err != nil {
			return err
		}
		if err := recipient.await(w.ctx, "the attachment pointer", func(e client.Event) bool {
			m, ok := e.(client.MessageEvent)
			return ok && m.Message.Text == pointer
		}); err != nil {
			return err
		}
		f := strings.Fields(pointer)
		if gotKey, err = base64.StdEncoding.DecodeString(f[4]); err != nil {
			return err
		}
		gotID = f[3]
	}
	_, got, err := w.expect(http.StatusOK, http.MethodGet, "/v1/attachments/"+gotID, nil, nil)
	if err != nil {
		return err
	}
	block, _ = aes.NewCipher(gotKey)
	aead, _ = cipher.NewGCM(block)
	if len(got) < aead.NonceSize() {
		return errors.New("the downloaded attachment is too short")
	}
	opened, err := aead.Open(nil, got[:aead.NonceSize()], got[aead.NonceSize():], nil)
	if err != nil || !bytes.Equal(opened, plain) {
		return fmt.Errorf("the downloaded attachment does not decrypt to the upload: %v", err)
	}
	if _, _, err := w.expect(http.StatusNotFound, http.MethodGet, "/v1/attachments/"+token(16), nil, nil); err != nil {
		return err
	}
	return nil
}

// rawRequests: what a client, a browser or a scanner sends besides the
// protocol, from sourceIP with the made-up headers: health, readiness,
// the attachment API's limits, an unknown path, a WebSocket from a
// foreign Origin (refused), an anonymous WebSocket that asks for a
// registration challenge, and one that is reset (RST) mid-connection
// (the WebSockets only over plain HTTP: wsclient has no TLS settings).
func (w *workload) rawRequests() error {
	for _, r := range []struct {
		status       int
		method, path string
	}{
		{http.StatusOK, http.MethodGet, "/healthz"},
		{http.StatusOK, http.MethodGet, "/readyz"},
		{http.StatusNoContent, http.MethodOptions, "/v1/attachments/"},
		{http.StatusNotFound, http.MethodGet, "/subpoena/" + token(4)},
	} {
		if _, _, err := w.expect(r.status, r.method, r.path, nil, nil); err != nil {
			return err
		}
	}
	if w.tls != nil {
		return nil
	}
	wsURL, err := wsclient.URL(w.url)
	if err != nil {
		return err
	}
	foreign := w.header.Clone()
	foreign.Set("Origin", "https://subpoena.invalid")
	if c, err := wsclient.Dial(w.ctx, wsURL.String(), &wsclient.Options{Header: foreign, NetDial: w.dialer.DialContext}); err == nil {
		c.Close()
		return errors.New("a WebSocket from a foreign Origin was accepted")
	}
	for _, reset := range []bool{false, true} {
		var nc net.Conn
		c, err := wsclient.Dial(w.ctx, wsURL.String(), &wsclient.Options{Header: w.header,
			NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var err error
				nc, err = w.dialer.DialContext(ctx, network, addr)
				return nc, err
			}})
		if err != nil {
			return err
		}
		if _, err := c.Do(w.ctx, &wirepb.GetRegistrationChallenge{}); err != nil {
			c.Close()
			return err
		}
		if !reset {
			c.Close()
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetLinger(0) // Close sends RST
		}
		nc.Close()
		<-c.Done()
	}
	return nil
}

// metrics fetches /metrics, from sourceIP with the made-up headers.
func (w *workload) metrics() ([]byte, error) {
	_, b, err := w.expect(http.StatusOK, http.MethodGet, "/metrics", nil, nil)
	return b, err
}

// tlsMisbehaviour is what scanners and broken clients do to a TLS port,
// each of which net/http logs: a plain HTTP request, a client that does
// not trust the certificate (it aborts the handshake), an HTTP/2
// connection whose preface is not HTTP/2's, and one reset (RST) mid-
// handshake.
func (w *workload) tlsMisbehaviour() error {
	addr := strings.TrimPrefix(w.url, "https://")
	request := "GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n"
	for k, v := range w.header {
		request += k + ": " + v[0] + "\r\n"
	}
	request += "\r\n"
	// Plain HTTP to the TLS port: answered 400.
	nc, err := w.dialer.DialContext(w.ctx, "tcp", addr)
	if err != nil {
		return err
	}
	nc.SetDeadline(time.Now().Add(eventTimeout))
	nc.Write([]byte(request))
	io.Copy(io.Discard, nc)
	nc.Close()
	// A client that does not trust the certificate.
	nc, err = w.dialer.DialContext(w.ctx, "tcp", addr)
	if err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	if err := tls.Client(nc, &tls.Config{ServerName: host}).HandshakeContext(w.ctx); err == nil {
		nc.Close()
		return errors.New("a client without the test's root trusted the server")
	}
	nc.Close()
	// HTTP/2 negotiated, then an HTTP/1.1 request instead of its preface.
	nc, err = w.dialer.DialContext(w.ctx, "tcp", addr)
	if err != nil {
		return err
	}
	tc := tls.Client(nc, &tls.Config{RootCAs: w.tls.RootCAs, ServerName: host, NextProtos: []string{"h2"}})
	if err := tc.HandshakeContext(w.ctx); err != nil {
		nc.Close()
		return err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		return fmt.Errorf("the server negotiated %q, not h2", p)
	}
	tc.SetDeadline(time.Now().Add(eventTimeout))
	tc.Write([]byte(request))
	io.Copy(io.Discard, tc)
	tc.Close()
	// Reset during the handshake.
	nc, err = w.dialer.DialContext(w.ctx, "tcp", addr)
	if err != nil {
		return err
	}
	nc.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x10}) // the start of a ClientHello record
	if t, ok := nc.(*net.TCPConn); ok {
		t.SetLinger(0)
	}
	nc.Close()
	return nil
}

// clientUnits returns every key and value in the devices' stores, for the
// positive control: the clients hold the plaintexts the server must not.
func (w *workload) clientUnits() ([]unit, error) {
	var out []unit
	for _, a := range w.devices {
		for _, d := range a {
			if d == nil {
				continue
			}
			err := d.store.Scan(w.ctx, "", func(k string, v []byte) error {
				out = append(out, unit{where: d.name + " store key " + k, cells: []cell{{b: []byte(k)}, {b: bytes.Clone(v)}}})
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
