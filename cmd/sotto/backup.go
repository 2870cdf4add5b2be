package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/term"

	"github.com/sotto-chat/sotto/client"
)

// Export, import of an export, encrypted backup and restore
// (docs/export-format.md).

// profileTimeout bounds fetching this account's profile for an export:
// the profile lives on the server, and an export does not wait long for
// it (it is written without it, with a warning).
const profileTimeout = 10 * time.Second

// export writes all of the account's data into a new directory.
func (c *cli) export(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("export", flag.ContinueOnError)
	flags.SetOutput(c.stderr)
	keys := flags.Bool("include-keys", false, "also write keys.json: whoever has the export can then act as your account")
	pos, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"want DIR (a directory that does not exist yet, or is empty)"}
	}
	dir := pos[0]
	if err := emptyDir(dir); err != nil {
		return err
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	opts := client.ExportOptions{IncludeKeys: *keys, Profile: c.ownProfile(ctx, cl)}
	bar := c.progress("exporting")
	opts.Progress = bar.update
	res, err := cl.Export(ctx, client.DirSink(dir), opts)
	bar.finish()
	if err != nil {
		return errorf("the export failed (%v): delete %s and try again", err, dir)
	}
	if c.json {
		return c.printJSON(map[string]any{"dir": dir, "contacts": res.Contacts, "messages": res.Messages, "imports": res.Imports,
			"imported": res.Imported, "files": res.Files, "bytes": res.Bytes, "includes_keys": *keys})
	}
	fmt.Fprintf(c.stdout, "exported %d contacts, %d messages, %d imported conversations (%d messages, %d files) into %s (%s)\n",
		res.Contacts, res.Messages, res.Imports, res.Imported, res.Files, dir, size(res.Bytes))
	if *keys {
		fmt.Fprintln(c.stdout, "it holds your keys: whoever has it can act as your account; keep it safe, or use `sotto backup`")
	}
	return nil
}

// emptyDir checks that dir does not exist or is an empty directory.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return errorf("cannot use %s: %v", dir, err)
	case len(entries) > 0:
		return errorf("%s is not empty: export into a new directory", dir)
	}
	return nil
}

// ownProfile fetches this account's profile for an export, or nil with a
// warning when the server does not answer.
func (c *cli) ownProfile(ctx context.Context, cl *client.Client) *client.Profile {
	ctx, cancel := context.WithTimeout(ctx, profileTimeout)
	defer cancel()
	p, err := cl.ProfileOf(ctx, cl.Account())
	if err != nil {
		fmt.Fprintf(c.stderr, "sotto: your profile name is kept on the server, which did not answer, so it is not in the export (%v)\n", plain(err))
		return nil
	}
	return &p
}

// importSotto reads an export into this profile: into its account if it
// has one (history and contacts), or, for an export with keys into a
// profile without an account, restoring the account as `sotto restore`
// does.
func (c *cli) importSotto(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("import sotto", flag.ContinueOnError)
	flags.SetOutput(c.stderr)
	server := flags.String("server", "", "when restoring: the server's URL, if it moved (default: the export's)")
	keep := flags.Bool("keep-old-device", false, "when restoring: keep the exported device on the account")
	pos, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"want DIR (what `sotto export` wrote)"}
	}
	dir := pos[0]
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		return errorf("%s is not a Sotto export: it has no manifest.json", dir)
	}
	if _, err := os.Stat(filepath.Join(c.home, "store.db")); errors.Is(err, fs.ErrNotExist) {
		return c.restoreFrom(ctx, func() (client.ExportSource, error) { return client.DirSource(dir), nil }, dirSize(dir), *server, *keep)
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	bar := c.progress("importing")
	res, err := cl.ImportExport(ctx, client.DirSource(dir), client.ReadOptions{Progress: bar.update, Total: dirSize(dir)})
	bar.finish()
	switch {
	case errors.Is(err, client.ErrOtherAccount):
		return errorf("%s is an export of another account; `sotto import sotto` takes exports of your own account (%v)", dir, err)
	case errors.Is(err, client.ErrExportVersion):
		return errorf("%s was written by a newer sotto: update sotto to import it", dir)
	case errors.Is(err, client.ErrNotExport):
		return errorf("nothing was imported: %s is damaged or was changed after it was written (%v)", dir, err)
	case err != nil:
		return errorf("nothing was imported: %v", err)
	}
	if c.json {
		return c.printJSON(readJSON(res))
	}
	fmt.Fprintf(c.stdout, "imported %d contacts, %d messages, %d imported conversations (%d messages, %d files); %d already here\n",
		res.Contacts, res.Messages, res.Imports, res.Imported, res.Files, res.Skipped)
	return nil
}

func readJSON(r client.ReadResult) map[string]any {
	return map[string]any{"contacts": r.Contacts, "messages": r.Messages, "imports": r.Imports, "imported": r.Imported,
		"files": r.Files, "skipped": r.Skipped}
}

// dirSize is the size of the files under dir (for the progress bar), or
// 0.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// backupFlags are the ways to give a backup's passphrase or keys.
type backupFlags struct {
	passphraseFile string
	keys           mapFlags // --recipient (backup) or --identity files (restore)
}

func (b *backupFlags) register(flags *flag.FlagSet, keyFlag, keyHelp string) {
	flags.StringVar(&b.passphraseFile, "backup-passphrase-file", os.Getenv("SOTTO_BACKUP_PASSPHRASE_FILE"),
		"the backup's passphrase, in this file (default: $SOTTO_BACKUP_PASSPHRASE_FILE, or asked on the terminal)")
	flags.Var(&b.keys, keyFlag, keyHelp)
}

// passphrase reads the backup's passphrase from its file, or asks on the
// terminal (twice when confirm), without echo.
func (c *cli) passphrase(b *backupFlags, confirm bool) (string, error) {
	if b.passphraseFile != "" {
		raw, err := os.ReadFile(b.passphraseFile)
		if err != nil {
			return "", errorf("cannot read the backup passphrase file: %v", err)
		}
		p := strings.TrimRight(string(raw), "\r\n")
		if p == "" {
			return "", errorf("the backup passphrase file %s is empty", b.passphraseFile)
		}
		return p, nil
	}
	f, ok := c.stdin.(*os.File)
	if !c.interactive || !ok {
		return "", errorf("no passphrase for the backup: give --backup-passphrase-file FILE (or $SOTTO_BACKUP_PASSPHRASE_FILE), " +
			"or an age key; standard input is not a terminal to ask on")
	}
	ask := func(q string) (string, error) {
		fmt.Fprint(c.stderr, q)
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		return string(p), err
	}
	p, err := ask("Backup passphrase: ")
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errorf("an empty passphrase protects nothing")
	}
	if confirm {
		again, err := ask("The same passphrase again: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errorf("the passphrases differ: nothing was written")
		}
	}
	return p, nil
}

// backup writes an encrypted archive of everything, keys included.
func (c *cli) backup(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("backup", flag.ContinueOnError)
	flags.SetOutput(c.stderr)
	var b backupFlags
	b.register(flags, "recipient", "encrypt to this age public key (age1…) instead of a passphrase (repeatable)")
	pos, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"want FILE"}
	}
	file := pos[0]
	var recipients []age.Recipient
	for _, k := range b.keys {
		rs, err := age.ParseRecipients(strings.NewReader(k))
		if err != nil || len(rs) != 1 {
			return errorf("%q is not an age public key (age1…)", k)
		}
		recipients = append(recipients, rs[0])
	}
	if len(recipients) == 0 {
		p, err := c.passphrase(&b, true)
		if err != nil {
			return err
		}
		r, err := age.NewScryptRecipient(p)
		if err != nil {
			return err
		}
		recipients = append(recipients, r)
	}
	cl, done, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	profile := c.ownProfile(ctx, cl)

	// Written beside FILE and renamed over it when complete: an older
	// backup there is replaced only by a whole new one.
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return errorf("cannot write the backup: %v", err)
	}
	defer os.Remove(tmp.Name())
	bar := c.progress("backing up")
	res, err := cl.Backup(ctx, tmp, recipients, client.ExportOptions{Profile: profile, Progress: bar.update})
	bar.finish()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errorf("the backup failed, nothing was written: %v", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return errorf("cannot write the backup: %v", err)
	}
	if c.json {
		return c.printJSON(map[string]any{"file": file, "contacts": res.Contacts, "messages": res.Messages,
			"imported": res.Imported, "files": res.Files, "bytes": res.Bytes})
	}
	fmt.Fprintf(c.stdout, "backed up %d contacts, %d messages, %d imported messages and %d files, with your keys, encrypted, into %s\n",
		res.Contacts, res.Messages, res.Imported, res.Files, file)
	return nil
}

// restore brings an account back from a backup into a new profile.
func (c *cli) restore(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("restore", flag.ContinueOnError)
	flags.SetOutput(c.stderr)
	var b backupFlags
	b.register(flags, "identity", "decrypt with the age identities in this file instead of a passphrase (repeatable)")
	server := flags.String("server", "", "the server's URL, if it moved (default: the backup's)")
	keep := flags.Bool("keep-old-device", false, "keep the backed-up device on the account (default: this device replaces it)")
	pos, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"want FILE"}
	}
	file := pos[0]
	var identities []age.Identity
	for _, path := range b.keys {
		raw, err := os.ReadFile(path)
		if err != nil {
			return errorf("cannot read the age identity file: %v", err)
		}
		ids, err := age.ParseIdentities(bytes.NewReader(raw))
		if err != nil {
			return errorf("%s holds no age identity (AGE-SECRET-KEY-…): %v", path, err)
		}
		identities = append(identities, ids...)
	}
	if len(identities) == 0 {
		p, err := c.passphrase(&b, false)
		if err != nil {
			return err
		}
		id, err := age.NewScryptIdentity(p)
		if err != nil {
			return err
		}
		identities = append(identities, id)
	}
	info, err := os.Stat(file)
	if err != nil {
		return errorf("cannot read the backup: %v", err)
	}
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	open := func() (client.ExportSource, error) {
		var err error
		if f, err = os.Open(file); err != nil {
			return nil, errorf("cannot read the backup: %v", err)
		}
		src, err := client.OpenBackup(f, identities...)
		switch {
		case errors.Is(err, client.ErrBackupKey):
			return nil, errorf("the passphrase (or key) does not open %s: nothing was changed", file)
		case errors.Is(err, client.ErrNotBackup):
			return nil, errorf("%s is not a Sotto backup (not an age-encrypted file): nothing was changed", file)
		}
		return src, err
	}
	return c.restoreFrom(ctx, open, info.Size(), *server, *keep)
}

// restoreFrom restores the account of an export with keys into this
// profile, which must not exist: into a directory beside it, renamed
// into place once all is done, so that a failure leaves nothing.
func (c *cli) restoreFrom(ctx context.Context, open func() (client.ExportSource, error), total int64, server string, keep bool) error {
	home := filepath.Clean(c.home)
	if entries, err := os.ReadDir(home); err == nil && len(entries) > 0 {
		return errorf("%s already holds a profile: restore into a new --home", home)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errorf("cannot use %s: %v", home, err)
	}
	if err := os.MkdirAll(filepath.Dir(home), 0o700); err != nil {
		return err
	}
	tmpHome, err := os.MkdirTemp(filepath.Dir(home), "."+filepath.Base(home)+".restore-*")
	if err != nil {
		return errorf("cannot restore next to %s: %v", home, err)
	}
	defer os.RemoveAll(tmpHome)
	tc := *c
	tc.home = tmpHome
	st, err := tc.openStore(ctx, true)
	if err != nil {
		return err
	}
	defer st.Close()
	src, err := open()
	if err != nil {
		return err
	}
	bar := c.progress("restoring")
	cl, res, err := client.Restore(ctx, src, client.RestoreOptions{Store: st, Server: server, KeepOldDevice: keep,
		ReadOptions: client.ReadOptions{Progress: bar.update, Total: total}})
	bar.finish()
	switch {
	case errors.Is(err, client.ErrBackupDamaged), errors.Is(err, client.ErrNotExport):
		return errorf("the backup is damaged or incomplete (cut short, or changed since it was made): nothing was changed (%v)", err)
	case errors.Is(err, client.ErrNoKeys):
		return errorf("the export holds no keys (it was made without --include-keys), so it cannot restore the account: " +
			"`sotto link` this profile from a device of the account, then `sotto import sotto` the export")
	case errors.Is(err, client.ErrOldDeviceGone):
		return errorf("the backed-up device is no longer on the account, so nothing was restored: " +
			"`sotto link` this profile from a device of the account, then `sotto import sotto` an export of the history")
	case errors.Is(err, client.ErrExportVersion):
		return errorf("the backup was written by a newer sotto: update sotto to restore it")
	case err != nil:
		return errorf("nothing was restored: %s", plain(err))
	}
	cl.Close()
	st.Close()
	if err := os.Remove(home); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errorf("cannot replace the empty %s: %v", home, err)
	}
	if err := os.Rename(tmpHome, home); err != nil {
		return errorf("cannot move the restored profile into %s: %v", home, err)
	}
	if c.json {
		out := readJSON(res.ReadResult)
		out["account"], out["device"], out["old_device"], out["old_device_removed"] = cl.Account().String(), res.Device, res.OldDevice, res.OldDeviceRemoved
		return c.printJSON(out)
	}
	fmt.Fprintf(c.stdout, "restored account %s as device %d with %d contacts, %d messages, %d imported messages and %d files\n",
		cl.Account(), res.Device, res.Contacts, res.Messages, res.Imported, res.Files)
	switch {
	case res.OldDeviceRemoved:
		fmt.Fprintf(c.stdout, "device %d (the backed-up one) was removed from the account; contacts reach this device from now on\n", res.OldDevice)
	case !keep:
		fmt.Fprintf(c.stdout, "device %d (the backed-up one) could not be removed (%v): remove it with `sotto devices remove %d`\n", res.OldDevice, res.RemoveErr, res.OldDevice)
	}
	return nil
}
