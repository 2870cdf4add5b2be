package main

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sotto-chat/sotto/internal/testserver"
)

// sottoFails runs one command that must fail and returns its stderr.
func sottoFails(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code == 0 {
		t.Fatalf("sotto %s succeeded: %s", strings.Join(args, " "), out.String())
	}
	return errb.String()
}

func writeZip(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	zw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestImportWhatsAppBadZips: unsafe, truncated and chat-less zips are
// refused with a sentence, and nothing is imported.
func TestImportWhatsAppBadZips(t *testing.T) {
	url := testserver.Start(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	sotto(t, "--home", home, "init", "--server", url)
	chat := "10/28/23, 9:14 AM - Jordan Reyes: hey\n"

	unsafe := filepath.Join(dir, "unsafe.zip")
	writeZip(t, unsafe, map[string]string{"WhatsApp Chat with Jordan.txt": chat, "../../evil.jpg": "x"})
	if got := sottoFails(t, "--home", home, "import", "whatsapp", unsafe); !strings.Contains(got, "unsafe.zip is not safe to read") {
		t.Errorf("unsafe zip: %s", got)
	}
	nochat := filepath.Join(dir, "nochat.zip")
	writeZip(t, nochat, map[string]string{"IMG-1.jpg": "x"})
	if got := sottoFails(t, "--home", home, "import", "whatsapp", nochat); !strings.Contains(got, "holds no chat text file") {
		t.Errorf("zip without a chat: %s", got)
	}
	good := filepath.Join(dir, "good.zip")
	writeZip(t, good, map[string]string{"WhatsApp Chat with Jordan.txt": chat})
	b, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.zip")
	os.WriteFile(truncated, b[:len(b)/2], 0o600)
	if got := sottoFails(t, "--home", home, "import", "whatsapp", truncated); !strings.Contains(got, "starts like a zip but cannot be read as one: is it complete?") {
		t.Errorf("truncated zip: %s", got)
	}
	if got := sotto(t, "--home", home, "history"); !strings.Contains(got, "no imported conversations") {
		t.Errorf("history after failed imports: %s", got)
	}
	if got := sotto(t, "--home", home, "import", "whatsapp", good); !strings.Contains(got, "1 new messages") {
		t.Errorf("the good zip: %s", got)
	}
}

// TestImportWhatsAppAsks: on a terminal, import asks who is "me" and
// which contact each other sender is; Enter takes the default.
func TestImportWhatsAppAsks(t *testing.T) {
	url := testserver.Start(t)
	dir := t.TempDir()
	home, kofi := filepath.Join(dir, "home"), filepath.Join(dir, "kofi")
	sotto(t, "--home", home, "init", "--server", url)
	sotto(t, "--home", kofi, "init", "--server", url, "--username", "kofi_ask")
	sotto(t, "--home", home, "add", "@kofi_ask")
	chat := filepath.Join(sharedCorpus, "android_en_GB_media.zip")

	var out, errb bytes.Buffer
	c := &cli{home: home, interactive: true, stdin: strings.NewReader("x\n1\n@nobody\n@kofi_ask\n"), stdout: &out, stderr: &errb}
	if err := c.importWhatsApp(context.Background(), []string{chat}); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{"1. Lena Fischer (7 messages)", "2. Kofi Mensah (6 messages)", "Which one is you? (number, 0 for none; Enter: 2)",
		"a number from 0 to 2", `Which Sotto contact is "Kofi Mensah"?`, "no contact named @nobody"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("the questions lack %q:\n%s", want, errb.String())
		}
	}
	if !strings.Contains(out.String(), `you are "Lena Fischer"; it comes before your conversation with @kofi_ask`) {
		t.Errorf("the summary: %s", out.String())
	}
	// The end of input takes the defaults.
	out.Reset()
	errb.Reset()
	c.stdin = strings.NewReader("")
	if err := c.importWhatsApp(context.Background(), []string{chat, "--me", "Kofi Mensah"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `you are "Kofi Mensah"`) || strings.Contains(errb.String(), "Which one is you") {
		t.Errorf("with --me: %s\n%s", out.String(), errb.String())
	}
}

// TestProgressBar: a bar is drawn on a terminal, at most every barEvery
// and always at the end, and cleared; never without a terminal or with
// --json.
func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	c := &cli{stderr: &b, stderrTerminal: true}
	p := c.progress("importing")
	for i := 0; i <= 1000; i++ {
		p.update(i, 1000)
	}
	p.finish()
	s := b.String()
	if !strings.Contains(s, "\rimporting [##############################] 100% 1000/1000") || !strings.HasSuffix(s, "\r\x1b[K") {
		t.Fatalf("the bar: %q", s)
	}
	if n := strings.Count(s, "\rimporting"); n > 3 {
		t.Errorf("drawn %d times in a moment", n)
	}
	for _, c := range []*cli{{stderr: &b}, {stderr: &b, stderrTerminal: true, json: true}} {
		b.Reset()
		p := c.progress("importing")
		p.update(5, 10)
		p.update(10, 10)
		p.finish()
		if b.Len() != 0 {
			t.Errorf("drawn without a terminal or with --json: %q", b.String())
		}
	}
}
