package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sotto-chat/sotto/internal/testserver"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sotto": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// sharedCorpus is the project's sample WhatsApp exports, relative to
// this package's directory; scripts get it as $WHATSAPP_CORPUS.
const sharedCorpus = "../../../shared/testdata/whatsapp"

// TestScripts runs the command-line scripts in testdata/script against a
// real sottod; each script gets $SOTTO_SERVER.
func TestScripts(t *testing.T) {
	corpus, err := filepath.Abs(sharedCorpus)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(corpus, "README.md")); err != nil {
		t.Fatalf("the shared WhatsApp corpus is missing: %v", err)
	}
	url := testserver.Start(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("SOTTO_SERVER", url)
			env.Setenv("SOTTO_HOME", env.WorkDir+"/default-home")
			env.Setenv("WHATSAPP_CORPUS", corpus)
			return nil
		},
	})
}
