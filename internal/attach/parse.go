package attach

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ID names a blob: 16 random bytes, written as 32 lowercase hex digits.
type ID [16]byte

// ErrInvalidID is returned by ParseID.
var ErrInvalidID = errors.New("attach: invalid id")

// ParseID parses the text form of an id. Only the canonical form is
// accepted (32 lowercase hex digits), so one id names one file.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, ErrInvalidID
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ID{}, ErrInvalidID
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, ErrInvalidID
	}
	return id, nil
}

// String returns the id's text form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// maxSizeDigits bounds the digits of Upload-Length and Upload-Offset: 19
// digits hold every int64.
const maxSizeDigits = 19

var errBadSize = errors.New("attach: malformed size")

// parseSize parses the value of Upload-Length or Upload-Offset: a
// non-negative decimal integer without sign, spaces or leading zeros.
func parseSize(s string) (int64, error) {
	if s == "" || len(s) > maxSizeDigits || (s[0] == '0' && len(s) > 1) {
		return 0, errBadSize
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errBadSize
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errBadSize
	}
	return n, nil
}

var errBadToken = errors.New("attach: malformed token")

// parseToken parses an Upload-Token: 32 bytes, unpadded base64url.
func parseToken(s string) ([tokenSize]byte, error) {
	var tok [tokenSize]byte
	if len(s) != base64.RawURLEncoding.EncodedLen(tokenSize) {
		return tok, errBadToken
	}
	// Strict: reject the non-canonical encodings of the last character.
	n, err := base64.RawURLEncoding.Strict().Decode(tok[:], []byte(s))
	if err != nil || n != tokenSize {
		return [tokenSize]byte{}, errBadToken
	}
	return tok, nil
}

// record is what the store keeps about an upload: its length, the hash of
// its token and the day it was created. Its file form is one line:
//
//	"v1" SP length SP hex(tokenHash) SP YYYY-MM-DD LF
type record struct {
	length    int64
	tokenHash [sha256.Size]byte
	created   time.Time // midnight UTC
}

const (
	recordVersion = "v1"
	dayLayout     = "2006-01-02"
)

var errBadRecord = errors.New("attach: malformed upload record")

func (r record) marshal() []byte {
	return fmt.Appendf(nil, "%s %d %x %s\n", recordVersion, r.length, r.tokenHash, r.created.Format(dayLayout))
}

// parseRecord parses a record file; only the exact bytes marshal writes are
// accepted.
func parseRecord(b []byte) (record, error) {
	line, ok := bytes.CutSuffix(b, []byte("\n"))
	if !ok {
		return record{}, errBadRecord
	}
	f := bytes.Split(line, []byte(" "))
	if len(f) != 4 || string(f[0]) != recordVersion {
		return record{}, errBadRecord
	}
	var r record
	var err error
	if r.length, err = parseSize(string(f[1])); err != nil || r.length < MinSize {
		return record{}, errBadRecord
	}
	if len(f[2]) != 2*sha256.Size || bytes.ContainsAny(f[2], "ABCDEF") {
		return record{}, errBadRecord
	}
	if _, err := hex.Decode(r.tokenHash[:], f[2]); err != nil {
		return record{}, errBadRecord
	}
	r.created, err = time.Parse(dayLayout, string(f[3]))
	if err != nil || r.created.Format(dayLayout) != string(f[3]) {
		return record{}, errBadRecord
	}
	return r, nil
}
