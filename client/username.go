package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
)

// Username rules and hashing, each with its reason.
const (
	// MinUsername and MaxUsername bound a username's length: three
	// characters leave room for many names; 32 fit on a screen.
	MinUsername = 3
	MaxUsername = 32
	// The server stores only a hash of each username, a slow one, so
	// that its directory cannot be turned back into names by trying
	// every likely one: Argon2id with OWASP's recommended cost (19 MiB,
	// two passes, about 50 ms here), which every guess pays too.
	usernameArgonTime   = 2
	usernameArgonMemory = 19 << 10 // KiB
	usernameHashSize    = 32
)

// usernameSalt is fixed: the hash must be the same on every client, so it
// cannot be salted per user; it separates Sotto's hashes from any other
// use of Argon2id.
var usernameSalt = []byte("sotto username v1")

// ErrUsernameTaken is returned by SetUsername when another account holds
// the name.
var ErrUsernameTaken = errors.New("client: that username is taken")

// ErrNoSuchUser is returned by LookupUsername for a name nobody holds.
var ErrNoSuchUser = errors.New("client: nobody has that username")

// NormalizeUsername returns a username in its one canonical form: without
// a leading @, lower case, 3 to 32 of a-z, 0-9 and _ (so that names that
// look alike are one name).
func NormalizeUsername(name string) (string, error) {
	n := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "@"))
	if len(n) < MinUsername || len(n) > MaxUsername {
		return "", fmt.Errorf("client: a username has %d to %d characters", MinUsername, MaxUsername)
	}
	for _, r := range n {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return "", fmt.Errorf("client: a username has only letters a-z, digits and _ (not %q)", r)
		}
	}
	return n, nil
}

func usernameHash(normalized string) []byte {
	return argon2.IDKey([]byte(normalized), usernameSalt, usernameArgonTime, usernameArgonMemory, 1, usernameHashSize)
}

// SetUsername makes name this account's username (replacing any other);
// the server learns only its hash.
func (c *Client) SetUsername(ctx context.Context, name string) error {
	n, err := NormalizeUsername(name)
	if err != nil {
		return err
	}
	h := usernameHash(n)
	return c.withAuth(ctx, func(conn *wsclient.Conn) error {
		_, err := c.do(ctx, conn, &wirepb.SetUsername{Hash: h})
		if wsclient.Code(err) == wirepb.Code_CONFLICT {
			return ErrUsernameTaken
		}
		if err != nil {
			return fmt.Errorf("client: set username: %w", err)
		}
		return c.updateAccount(ctx, func(r *accountRecord) { r.Username = n })
	})
}

// DeleteUsername removes this account's username.
func (c *Client) DeleteUsername(ctx context.Context) error {
	return c.withAuth(ctx, func(conn *wsclient.Conn) error {
		if _, err := c.do(ctx, conn, &wirepb.DeleteUsername{}); err != nil {
			return fmt.Errorf("client: delete username: %w", err)
		}
		return c.updateAccount(ctx, func(r *accountRecord) { r.Username = "" })
	})
}

// Username returns this account's username, or "".
func (c *Client) Username(ctx context.Context) (string, error) {
	r, err := c.accountRecord(ctx)
	if err != nil {
		return "", err
	}
	return r.Username, nil
}

// LookupUsername finds the account with a username (exact match).
func (c *Client) LookupUsername(ctx context.Context, name string) (AccountID, error) {
	n, err := NormalizeUsername(name)
	if err != nil {
		return AccountID{}, err
	}
	anon, err := c.anonConn(ctx)
	if err != nil {
		return AccountID{}, err
	}
	resp, err := c.do(ctx, anon, &wirepb.LookupUsername{Hash: usernameHash(n)})
	if wsclient.Code(err) == wirepb.Code_NOT_FOUND {
		return AccountID{}, fmt.Errorf("%w: @%s", ErrNoSuchUser, n)
	}
	if err != nil {
		return AccountID{}, fmt.Errorf("client: look up @%s: %w", n, err)
	}
	id := resp.GetUsernameAccount().GetAccountId()
	if len(id) != len(AccountID{}) {
		return AccountID{}, errors.New("client: look up: malformed account id")
	}
	return AccountID(id), nil
}

// Contact is an account this device knows.
type Contact struct {
	Account AccountID
	// Name is what this device calls the contact (the username it was
	// added by), or "".
	Name string
}

// AddContact finds a username and keeps its account as a contact under
// that name.
func (c *Client) AddContact(ctx context.Context, username string) (Contact, error) {
	n, err := NormalizeUsername(username)
	if err != nil {
		return Contact{}, err
	}
	id, err := c.LookupUsername(ctx, n)
	if err != nil {
		return Contact{}, err
	}
	if id == c.account {
		return Contact{}, errors.New("client: that is this account's own username")
	}
	if _, err := c.updateContact(ctx, id, func(ct *contactRecord) { ct.Name, ct.Accepted = n, true }); err != nil {
		return Contact{}, err
	}
	return Contact{Account: id, Name: n}, nil
}

// Contacts returns the accounts this device has added or talked with,
// named ones first, by name.
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	var out []Contact
	err := c.store.Scan(ctx, prefixContact, func(k string, v []byte) error {
		var r contactRecord
		if err := jsonUnmarshal(v, &r); err != nil || len(r.Account) != len(AccountID{}) {
			return fmt.Errorf("stored contact %s is malformed", k)
		}
		if AccountID(r.Account) != c.account { // the account's own devices
			out = append(out, Contact{Account: AccountID(r.Account), Name: r.Name})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.Name == "") != (b.Name == "") {
			return a.Name != ""
		}
		return a.Name < b.Name
	})
	return out, nil
}

// ContactByName returns the contact with a name (an @username).
func (c *Client) ContactByName(ctx context.Context, name string) (Contact, error) {
	n, err := NormalizeUsername(name)
	if err != nil {
		return Contact{}, err
	}
	cs, err := c.Contacts(ctx)
	if err != nil {
		return Contact{}, err
	}
	for _, ct := range cs {
		if ct.Name == n {
			return ct, nil
		}
	}
	return Contact{}, fmt.Errorf("%w: @%s", ErrNoContact, n)
}

// ErrNoContact is returned by ContactByName for a name no contact has.
var ErrNoContact = errors.New("client: no contact by that name")

func (c *Client) accountRecord(ctx context.Context) (*accountRecord, error) {
	b, err := c.store.Get(ctx, keyAccount)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var r accountRecord
	if err := jsonUnmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("client: stored account: %w", err)
	}
	return &r, nil
}

// updateAccount changes the stored account record. c.mu serializes it
// with the prekey counter's updates.
func (c *Client) updateAccount(ctx context.Context, f func(*accountRecord)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.accountRecord(ctx)
	if err != nil {
		return err
	}
	f(r)
	if err := c.store.Apply(ctx, []Write{{keyAccount, marshalJSON(r)}}); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}
