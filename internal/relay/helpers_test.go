package relay

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sotto-chat/sotto/internal/access"
	"github.com/sotto-chat/sotto/internal/bus"
	"github.com/sotto-chat/sotto/internal/certs"
	"github.com/sotto-chat/sotto/internal/keys"
	"github.com/sotto-chat/sotto/internal/pow"
	"github.com/sotto-chat/sotto/internal/ratchet"
	"github.com/sotto-chat/sotto/internal/sealed"
	"github.com/sotto-chat/sotto/internal/session"
	"github.com/sotto-chat/sotto/internal/store"
	"github.com/sotto-chat/sotto/internal/store/sqlite"
	"github.com/sotto-chat/sotto/internal/testkit"
	"github.com/sotto-chat/sotto/internal/wire"
	"github.com/sotto-chat/sotto/internal/wire/wirepb"
	"github.com/sotto-chat/sotto/internal/wsclient"
	"github.com/sotto-chat/sotto/internal/x3dh"
)

// testDifficulty keeps registration fast in tests.
const testDifficulty = 4

type env struct {
	t     *testing.T
	relay *Relay
	srv   *httptest.Server
	store store.Store
	certs *certs.Authority
	url   string
}

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	// The store sottod uses by default: SQLite with the mailbox queue.
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir+"/sotto.db", sqlite.Options{MailboxDir: dir + "/mailboxes"})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Store: st, Bus: &bus.Local{}, Certs: ca, PoW: pow.NewIssuer(testDifficulty, time.Now),
		PingInterval: time.Minute, PingTimeout: 10 * time.Second, Retention: 30 * 24 * time.Hour,
		RateLimits: DefaultRateLimits(),
	}
	cfg.RateLimits.Register, cfg.RateLimits.RegisterBurst = 1000, 1000
	for _, m := range mutate {
		m(&cfg)
	}
	r := New(cfg)
	mux := http.NewServeMux()
	mux.Handle("/v1/websocket", r)
	srv := httptest.NewServer(mux)
	e := &env{t: t, relay: r, srv: srv, store: st, certs: ca, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/websocket"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Shutdown(ctx)
		srv.Close()
		st.Close()
	})
	return e
}

func (e *env) dial() *wsclient.Conn {
	e.t.Helper()
	c, err := wsclient.Dial(context.Background(), e.url, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func do(t *testing.T, c *wsclient.Conn, body proto.Message) *wirepb.Response {
	t.Helper()
	resp, err := c.Do(context.Background(), body)
	if err != nil {
		t.Fatalf("%T: %v", body, err)
	}
	return resp
}

// device is a test device: protocol keys, a session store, and its two
// connections.
type device struct {
	t        *testing.T
	e        *env
	rand     io.Reader
	identity keys.KeyPair
	auth     keys.KeyPair
	profile  [access.KeySize]byte
	account  store.AccountID
	id       store.DeviceID
	regID    uint32
	pre      *session.MemoryPreKeys
	records  map[string]*session.Record
	authConn *wsclient.Conn
	anon     *wsclient.Conn
	nextPre  uint32
}

func (d *device) signedPreKeys() (*wirepb.SignedPreKey, *wirepb.KEMPreKey) {
	d.nextPre++
	spk, err := keys.GenerateSignedPreKey(d.rand, d.identity.Private, keys.SignedPreKeyID(d.nextPre), time.Now())
	if err != nil {
		d.t.Fatal(err)
	}
	kpk, err := keys.GenerateKEMPreKey(d.rand, d.identity.Private, keys.DefaultKEM, keys.KEMPreKeyID(d.nextPre), time.Now())
	if err != nil {
		d.t.Fatal(err)
	}
	d.pre.Signed[spk.ID], d.pre.KEM[kpk.ID] = spk, kpk
	return &wirepb.SignedPreKey{Id: uint32(spk.ID), Key: spk.Key.Public.Bytes(), Signature: spk.Signature[:]},
		&wirepb.KEMPreKey{Id: uint32(kpk.ID), Key: kpk.Key.Public.Bytes(), Signature: kpk.Signature[:]}
}

// register makes an account with one device, connected and authenticated.
func (e *env) register(name string) *device {
	e.t.Helper()
	d := &device{t: e.t, e: e, rand: testkit.Rand(name + fmt.Sprint(time.Now().UnixNano())),
		pre:     session.NewMemoryPreKeys(),
		records: map[string]*session.Record{}, regID: uint32(len(name)*97%16000) + 1}
	d.identity, _ = keys.GenerateKeyPair(d.rand)
	d.auth, _ = keys.GenerateKeyPair(d.rand)
	var pk [32]byte
	d.rand.Read(pk[:])
	d.profile, _ = access.Derive(pk[:])
	d.anon = e.dial()
	ch := do(e.t, d.anon, &wirepb.GetRegistrationChallenge{}).GetRegistrationChallenge()
	sol, _ := pow.Solve(ch.Seed, int(ch.Difficulty), nil)
	spk, kem := d.signedPreKeys()
	reg := do(e.t, d.anon, &wirepb.Register{
		Seed: ch.Seed, Solution: sol, IdentityKey: d.identity.Public.Bytes(), AuthKey: d.auth.Public.Bytes(),
		RegistrationId: d.regID, SignedPrekey: spk, KemLastResort: kem, UnidentifiedAccessKey: d.profile[:],
	}).GetRegistered()
	d.account, d.id = store.AccountID(reg.AccountId), store.DeviceID(reg.DeviceId)
	d.uploadOneTime(10)
	return d
}

// connect opens and authenticates the device's authenticated connection.
func (d *device) connect() *wsclient.Conn {
	d.t.Helper()
	c := d.e.dial()
	ch := do(d.t, c, &wirepb.GetChallenge{}).GetChallenge()
	sig, _ := d.auth.Private.Sign(d.rand, wire.AuthMessage(ch.Nonce, d.account[:], uint32(d.id)))
	do(d.t, c, &wirepb.Authenticate{AccountId: d.account[:], DeviceId: uint32(d.id), Signature: sig[:]})
	d.authConn = c
	return c
}

func (d *device) uploadOneTime(n int) {
	c := d.authConn
	if c == nil {
		c = d.connect()
	}
	up := &wirepb.UploadPreKeys{}
	for range n {
		d.nextPre++
		pk, _ := keys.GeneratePreKey(d.rand, keys.PreKeyID(d.nextPre))
		d.pre.EC[pk.ID] = pk
		up.OneTimeEc = append(up.OneTimeEc, &wirepb.PreKey{Id: uint32(pk.ID), Key: pk.Key.Public.Bytes()})
		kpk, _ := keys.GenerateKEMPreKey(d.rand, d.identity.Private, keys.DefaultKEM, keys.KEMPreKeyID(d.nextPre), time.Now())
		d.pre.KEM[kpk.ID] = kpk
		up.OneTimeKem = append(up.OneTimeKem, &wirepb.KEMPreKey{Id: uint32(kpk.ID), Key: kpk.Key.Public.Bytes(), Signature: kpk.Signature[:]})
	}
	do(d.t, c, up)
}

func peerKey(a store.AccountID, dev uint32) string { return fmt.Sprintf("%x.%d", a, dev) }

// sendTo seals text for every device of peer (fetching bundles as needed)
// and sends it on the anonymous connection.
func (d *device) sendTo(peer *device, text string) error {
	d.t.Helper()
	_, err := d.anon.Do(context.Background(), d.sealSend(peer, text))
	return err
}

// sealSend is the Send of sendTo.
func (d *device) sealSend(peer *device, text string) *wirepb.Send {
	d.t.Helper()
	certResp := do(d.t, d.authConn, &wirepb.GetSenderCertificate{}).GetSenderCertificate()
	cert, err := sealed.ParseSenderCertificate(certResp.Certificate)
	if err != nil {
		d.t.Fatal(err)
	}
	bundles := do(d.t, d.anon, &wirepb.GetBundles{AccountId: peer.account[:]}).GetBundles()
	identity, _ := keys.ParsePublicKey(bundles.IdentityKey)
	send := &wirepb.Send{Recipient: peer.account[:], AccessKey: peer.profile[:]}
	for _, b := range bundles.Bundles {
		key := peerKey(peer.account, b.DeviceId)
		r, ok := d.records[key]
		if !ok {
			r = &session.Record{}
			d.records[key] = r
			if err := r.Initiate(d.rand, d.identity, d.regID, toBundle(d.t, identity, b), time.Now()); err != nil {
				d.t.Fatal(err)
			}
		}
		typ, body, err := r.Encrypt([]byte(text), time.Now())
		if err != nil {
			d.t.Fatal(err)
		}
		st := sealed.TypeWhisper
		if typ == ratchet.TypePreKey {
			st = sealed.TypePreKey
		}
		usmc, _ := sealed.NewUSMC(st, cert, body, sealed.HintResendable, nil)
		msg, err := sealed.SealV1(d.rand, usmc, identity, d.identity)
		if err != nil {
			d.t.Fatal(err)
		}
		send.Envelopes = append(send.Envelopes, &wirepb.OutgoingEnvelope{DeviceId: b.DeviceId, RegistrationId: b.RegistrationId, Content: msg})
	}
	return send
}

func toBundle(t *testing.T, identity keys.PublicKey, b *wirepb.Bundle) *x3dh.Bundle {
	spk, err := keys.ParsePublicKey(b.SignedPrekey.Key)
	if err != nil {
		t.Fatal(err)
	}
	kem, err := keys.ParseKEMPublicKey(b.KemPrekey.Key)
	if err != nil {
		t.Fatal(err)
	}
	xb := &x3dh.Bundle{RegistrationID: b.RegistrationId, DeviceID: b.DeviceId, IdentityKey: identity,
		SignedPreKeyID: keys.SignedPreKeyID(b.SignedPrekey.Id), SignedPreKey: spk, SignedPreKeySignature: b.SignedPrekey.Signature,
		KEMPreKeyID: keys.KEMPreKeyID(b.KemPrekey.Id), KEMPreKey: kem, KEMPreKeySignature: b.KemPrekey.Signature}
	if b.OneTimePrekey != nil {
		pk, err := keys.ParsePublicKey(b.OneTimePrekey.Key)
		if err != nil {
			t.Fatal(err)
		}
		xb.HasPreKey, xb.PreKeyID, xb.PreKey = true, keys.PreKeyID(b.OneTimePrekey.Id), pk
	}
	return xb
}

// receive waits for the next envelope push and decrypts it; it acks.
func (d *device) receive(timeout time.Duration) (string, error) {
	d.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case p, ok := <-d.authConn.Pushes():
			if !ok {
				return "", fmt.Errorf("connection closed: %v", d.authConn.Err())
			}
			envs := p.GetEnvelopes()
			if envs == nil {
				continue
			}
			var out []string
			var ids []uint64
			for _, e := range envs.Envelopes {
				text, err := d.open(e.Content)
				if err != nil {
					return "", err
				}
				out = append(out, text)
				ids = append(ids, e.Id)
			}
			do(d.t, d.authConn, &wirepb.Ack{Ids: ids})
			return strings.Join(out, "|"), nil
		case <-deadline:
			return "", fmt.Errorf("no envelope within %v", timeout)
		}
	}
}

func (d *device) open(content []byte) (string, error) {
	local := sealed.Local{Identity: d.identity, ACI: sealed.ACI(d.account), Device: sealed.DeviceID(d.id)}
	sender, u, err := sealed.Unseal(content, local, d.e.certs.Trust(), time.Now())
	if err != nil {
		return "", err
	}
	aci, _ := sealed.ParseServiceID(sender.UUID)
	key := peerKey(store.AccountID(aci.UUID()), uint32(sender.Device))
	r, ok := d.records[key]
	if !ok {
		r = &session.Record{}
		d.records[key] = r
	}
	switch u.Type() {
	case sealed.TypePreKey:
		pm, err := ratchet.ParsePreKeyMessage(u.Contents())
		if err != nil {
			return "", err
		}
		res, err := r.DecryptPreKey(d.rand, &session.Local{Identity: d.identity, RegistrationID: d.regID, PreKeys: d.pre}, pm)
		if err != nil {
			return "", err
		}
		return string(res.Plaintext), nil
	case sealed.TypeWhisper:
		m, err := ratchet.ParseMessage(u.Contents())
		if err != nil {
			return "", err
		}
		pt, err := r.Decrypt(d.rand, m)
		return string(pt), err
	}
	return "", fmt.Errorf("content type %d", u.Type())
}
