package main

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sotto-chat/sotto/internal/testserver"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sotto": func() { os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the command-line scripts in testdata/script against a
// real sottod; each script gets $SOTTO_SERVER.
func TestScripts(t *testing.T) {
	url := testserver.Start(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("SOTTO_SERVER", url)
			env.Setenv("SOTTO_HOME", env.WorkDir+"/default-home")
			return nil
		},
	})
}
