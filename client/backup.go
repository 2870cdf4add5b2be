package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// Backups. A backup is an export with keys (docs/export-format.md) as a
// tar stream, encrypted with age (https://age-encryption.org/v1) to a
// passphrase (age's scrypt recipient) or to age public keys. age
// authenticates the stream in 64 KiB chunks and marks the last one, so a
// backup that was changed or cut short fails to read, and Restore, which
// reads it whole before it changes anything, then changes nothing.

// Backup errors that callers branch on.
var (
	// ErrNotBackup: the file is not an age-encrypted file.
	ErrNotBackup = errors.New("client: not a Sotto backup (not an age-encrypted file)")
	// ErrBackupKey: the passphrase or key does not open the backup.
	ErrBackupKey = errors.New("client: the passphrase or key does not open this backup")
	// ErrBackupDamaged: the backup was changed or cut short after it was
	// made.
	ErrBackupDamaged = errors.New("client: the backup is damaged or incomplete")
)

// Backup writes an encrypted backup of everything (Export with its keys)
// to w, for recipients: age.NewScryptRecipient for a passphrase, or
// parsed age public keys.
func (c *Client) Backup(ctx context.Context, w io.Writer, recipients []age.Recipient, opts ExportOptions) (ExportResult, error) {
	ew, err := age.Encrypt(w, recipients...)
	if err != nil {
		return ExportResult{}, fmt.Errorf("client: backup: %w", err)
	}
	sink := NewTarSink(ew)
	opts.IncludeKeys = true
	res, err := c.Export(ctx, sink, opts)
	if err != nil {
		return res, err
	}
	if err := sink.Close(); err != nil {
		return res, fmt.Errorf("client: backup: %w", err)
	}
	if err := ew.Close(); err != nil {
		return res, fmt.Errorf("client: backup: %w", err)
	}
	return res, nil
}

// OpenBackup decrypts a backup as it is read: the ExportSource to give
// Restore (or ImportExport). It fails at once with ErrNotBackup or
// ErrBackupKey; a backup damaged further on fails while it is read, with
// errors wrapping ErrBackupDamaged or ErrNotExport.
func OpenBackup(r io.Reader, identities ...age.Identity) (ExportSource, error) {
	dr, err := age.Decrypt(r, identities...)
	var nomatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &nomatch):
		return nil, ErrBackupKey
	case err != nil:
		return nil, fmt.Errorf("%w (%v)", ErrNotBackup, err)
	}
	return TarSource(damageReader{dr}), nil
}

// damageReader reports a failure of the decrypting reader (a chunk that
// does not authenticate, the stream's end missing) as ErrBackupDamaged.
type damageReader struct{ r io.Reader }

func (d damageReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w (%v)", ErrBackupDamaged, err)
	}
	return n, err
}
