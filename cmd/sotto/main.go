// Command sotto is Sotto's command-line client: scriptable commands with
// --json output. Each profile (an account's device: its keys, contacts
// and history, encrypted) lives in a home directory, --home or $SOTTO_HOME
// or ~/.sotto.
//
//	sotto init --server URL [--username NAME]   create an account
//	sotto whoami                                this account and device
//	sotto username [NAME | --delete]            show, set or delete the username
//	sotto add @NAME                             add a contact by username
//	sotto contacts                              list contacts
//	sotto send @NAME|ACCOUNT [TEXT...]          send TEXT (or standard input)
//	sotto recv                                  print what arrived, then exit
//	sotto listen                                print messages as they arrive
//	sotto import whatsapp FILE                  import a WhatsApp chat export
//	sotto history [IMPORT|@NAME]                show imported history
//	sotto export DIR / import sotto DIR         all your data, in docs/export-format.md
//	sotto backup FILE / restore FILE            an encrypted backup, and the account back from it
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
