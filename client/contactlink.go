package client

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
)

// A contact link (sotto://contact?a=ACCOUNT&k=PROFILE_KEY[&n=NAME]), shown
// as text or a QR code, lets whoever holds it add the account as a
// contact without a username: it carries the profile key, so its holder
// may also write to an account that accepts only its contacts. Share it
// with people, not on a web page.

// ContactLink returns this account's contact link.
func (c *Client) ContactLink(ctx context.Context) (string, error) {
	r, err := c.accountRecord(ctx)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	q.Set("a", c.account.String())
	q.Set("k", base64.RawURLEncoding.EncodeToString(c.profileKey))
	if r.Username != "" {
		q.Set("n", r.Username)
	}
	u := url.URL{Scheme: linkScheme, Host: "contact", RawQuery: q.Encode()}
	return u.String(), nil
}

// AddContactLink adds the account a contact link names, with its profile
// key (and its username as the contact's name, if the link has one).
func (c *Client) AddContactLink(ctx context.Context, link string) (Contact, error) {
	u, err := url.Parse(link)
	if err != nil || u.Scheme != linkScheme || u.Host != "contact" {
		return Contact{}, fmt.Errorf("client: %q is not a Sotto contact link", link)
	}
	q := u.Query()
	raw, err := hex.DecodeString(q.Get("a"))
	if err != nil || len(raw) != len(AccountID{}) {
		return Contact{}, errors.New("client: the contact link's account is malformed")
	}
	key, err := base64.RawURLEncoding.DecodeString(q.Get("k"))
	if err != nil || len(key) != 32 {
		return Contact{}, errors.New("client: the contact link's key is malformed")
	}
	id := AccountID(raw)
	if id == c.account {
		return Contact{}, errors.New("client: that is this account's own link")
	}
	name := ""
	if n := q.Get("n"); n != "" {
		if name, err = NormalizeUsername(n); err != nil {
			return Contact{}, errors.New("client: the contact link's name is malformed")
		}
	}
	ct, err := c.updateContact(ctx, id, func(ct *contactRecord) {
		ct.ProfileKey, ct.Accepted = key, true
		if name != "" {
			ct.Name = name
		}
	})
	if err != nil {
		return Contact{}, err
	}
	return Contact{Account: id, Name: ct.Name}, nil
}
