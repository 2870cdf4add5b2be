package whatsapp

import (
	"archive/zip"
	"bytes"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// member is a file to put into a test zip. If size is not 0 the member
// is stored raw and declares size as its uncompressed size, whatever data
// holds.
type member struct {
	name string
	data string
	size uint64
}

func makeZip(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		var (
			w   io.Writer
			err error
		)
		if m.size != 0 {
			w, err = zw.CreateRaw(&zip.FileHeader{
				Name:               m.name,
				Method:             zip.Store,
				CRC32:              crc32.ChecksumIEEE([]byte(m.data)),
				CompressedSize64:   uint64(len(m.data)),
				UncompressedSize64: m.size,
			})
		} else {
			w, err = zw.Create(m.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func parseZipBytes(b []byte) (*Chat, error) {
	return ParseZip(bytes.NewReader(b), int64(len(b)))
}

const androidChat = "12/08/2023, 10:02 - Lena Fischer: \u200eIMG-20230812-WA0000.jpg (file attached)\n" +
	"12/08/2023, 10:03 - Kofi Mensah: notes.txt (file attached)\n"

func TestParseZipFindsTheChat(t *testing.T) {
	tests := []struct {
		name     string
		members  []member
		chatFile string
		files    []string
	}{
		{
			name: "iOS",
			members: []member{
				{name: "_chat.txt", data: "[5/14/22, 6:22:07 PM] Priya: \u200e<attached: 00000004-PHOTO-2022-05-14-18-22-07.jpg>\r\n"},
				{name: "00000004-PHOTO-2022-05-14-18-22-07.jpg", data: "jpeg"},
				{name: "00000005-notes.txt", data: "a document"},
			},
			chatFile: "_chat.txt",
			files:    []string{"00000004-PHOTO-2022-05-14-18-22-07.jpg", "00000005-notes.txt"},
		},
		{
			name: "Android with a .txt document",
			members: []member{
				{name: "IMG-20230812-WA0000.jpg", data: "jpeg"},
				{name: "notes.txt", data: "a document"},
				{name: "WhatsApp Chat with Lena Fischer.txt", data: androidChat},
			},
			chatFile: "WhatsApp Chat with Lena Fischer.txt",
			files:    []string{"IMG-20230812-WA0000.jpg", "notes.txt"},
		},
		{
			name: "Android, localized name",
			members: []member{
				{name: "Chat de WhatsApp con Lena.txt", data: androidChat},
				{name: "IMG-20230812-WA0000.jpg", data: "jpeg"},
			},
			chatFile: "Chat de WhatsApp con Lena.txt",
			files:    []string{"IMG-20230812-WA0000.jpg"},
		},
		{
			name: "the export's folder zipped again on a Mac",
			members: []member{
				{name: "WhatsApp Chat - Lena/", data: ""},
				{name: "WhatsApp Chat - Lena/_chat.txt", data: "[5/14/22, 6:22:07 PM] Priya: hi\r\n"},
				{name: "WhatsApp Chat - Lena/00000004-PHOTO-2022-05-14-18-22-07.jpg", data: "jpeg"},
				{name: "__MACOSX/WhatsApp Chat - Lena/._chat.txt", data: "resource fork"},
				{name: "WhatsApp Chat - Lena/.DS_Store", data: "finder"},
			},
			chatFile: "_chat.txt",
			files:    []string{"00000004-PHOTO-2022-05-14-18-22-07.jpg"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chat, err := parseZipBytes(makeZip(t, tt.members...))
			if err != nil {
				t.Fatal(err)
			}
			if chat.ChatFile != tt.chatFile {
				t.Errorf("ChatFile = %q, want %q", chat.ChatFile, tt.chatFile)
			}
			if len(chat.Files) != len(tt.files) {
				t.Errorf("Files = %v, want %v", chat.Files, tt.files)
			}
			for _, n := range tt.files {
				f := chat.Files[n]
				if f == nil {
					t.Errorf("no file %q", n)
					continue
				}
				rc, err := f.Open()
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || int64(len(b)) != f.Size {
					t.Errorf("read %q: %d bytes, %v; want %d", n, len(b), err, f.Size)
				}
			}
		})
	}
}

func TestParseZipRefuses(t *testing.T) {
	ok := member{name: "_chat.txt", data: "[5/14/22, 6:22:07 PM] Priya: hi\r\n"}
	tests := []struct {
		name    string
		zip     []byte
		err     error
		orError error // an acceptable alternative
	}{
		{"not a zip", []byte("12/08/2023, 10:02 - A: hi\n"), ErrNotZip, nil},
		{"no chat", makeZip(t, member{name: "IMG-1.jpg", data: "x"}), ErrNoChatFile, nil},
		{"chat in a subfolder only", makeZip(t, member{name: "a/_chat.txt", data: ok.data}, member{name: "b/x.jpg", data: "x"}), ErrNoChatFile, nil},
		{
			"two text files, neither recognizable",
			makeZip(t, member{name: "a.txt", data: androidChat}, member{name: "b.txt", data: androidChat}),
			ErrAmbiguousChatFile, nil,
		},
		{
			"two WhatsApp text files",
			makeZip(t, member{name: "WhatsApp Chat with A.txt", data: androidChat}, member{name: "WhatsApp Chat with B.txt", data: androidChat}),
			ErrAmbiguousChatFile, nil,
		},
		{"parent directory", makeZip(t, ok, member{name: "../evil.jpg", data: "x"}), ErrUnsafeZip, nil},
		{"parent directory inside", makeZip(t, ok, member{name: "a/../../evil.jpg", data: "x"}), ErrUnsafeZip, nil},
		{"absolute path", makeZip(t, ok, member{name: "/etc/passwd", data: "x"}), ErrUnsafeZip, nil},
		{"backslash", makeZip(t, ok, member{name: "..\\evil.jpg", data: "x"}), ErrUnsafeZip, nil},
		{"drive letter", makeZip(t, ok, member{name: "C:evil.jpg", data: "x"}), ErrUnsafeZip, nil},
		{"chat declared too large", makeZip(t, member{name: "_chat.txt", data: ok.data, size: MaxChatSize + 1}), ErrTooLarge, nil},
		{
			"members declare too much in all",
			makeZip(t, ok, member{name: "a.mp4", data: "x", size: MaxTotalSize / 2}, member{name: "b.mp4", data: "x", size: MaxTotalSize/2 + 1}),
			ErrTooLarge, nil,
		},
		{
			// The chat file holds more than it declares: whichever of our
			// bound and zip's own checks sees it first, it is refused.
			"chat larger than declared",
			makeZip(t, member{name: "_chat.txt", data: ok.data + strings.Repeat("more\n", 100), size: 10}),
			ErrTooLarge, zip.ErrFormat,
		},
		{
			"a broken chat file",
			makeZip(t, member{name: "_chat.txt", data: "hello\n"}),
			ErrNoHeader, nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chat, err := parseZipBytes(tt.zip)
			if !errors.Is(err, tt.err) && (tt.orError == nil || !errors.Is(err, tt.orError)) {
				t.Fatalf("ParseZip = %v, %v; want %v", chat, err, tt.err)
			}
			t.Log(err)
		})
	}
}

// TestFileOpenBounded: a media member that holds more than it declares
// fails to read instead of returning the extra data.
func TestFileOpenBounded(t *testing.T) {
	b := makeZip(t,
		member{name: "_chat.txt", data: "[5/14/22, 6:22:07 PM] Priya: hi\r\n"},
		member{name: "bomb.jpg", data: strings.Repeat("x", 1000), size: 10},
	)
	chat, err := parseZipBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := chat.Files["bomb.jpg"].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if !errors.Is(err, ErrTooLarge) && !errors.Is(err, zip.ErrFormat) {
		t.Fatalf("read %d bytes, err %v; want an error", n, err)
	}
	if n > 10 {
		t.Errorf("read %d bytes, more than the 10 declared", n)
	}

	huge := &File{Name: "huge.mp4", Size: MaxMemberSize + 1}
	if _, err := huge.Open(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Open of an oversized member: %v, want ErrTooLarge", err)
	}
}

// TestSharedZipsStream reads every media file of the shared zip exports.
func TestSharedZipsStream(t *testing.T) {
	zips, _ := filepath.Glob(filepath.Join(sharedCorpus, "*.zip"))
	if len(zips) == 0 {
		t.Fatalf("no zip in %s", sharedCorpus)
	}
	for _, z := range zips {
		f, err := os.Open(z)
		if err != nil {
			t.Fatal(err)
		}
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		chat, err := ParseZip(f, st.Size())
		if err != nil {
			t.Fatal(err)
		}
		for name, file := range chat.Files {
			rc, err := file.Open()
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil || n != file.Size {
				t.Errorf("%s: %s: %d bytes, %v; want %d", z, name, n, err, file.Size)
			}
		}
		f.Close()
	}
}

// TestParseFile reads the shared exports from disk, zip and text alike.
func TestParseFile(t *testing.T) {
	for _, name := range []string{"ios_en_US_media.zip", "android_de_DE.txt"} {
		chat, err := ParseFile(filepath.Join(sharedCorpus, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(chat.Messages) == 0 || (strings.HasSuffix(name, ".zip") != (chat.Files != nil)) {
			t.Errorf("%s: %d messages, files %v", name, len(chat.Messages), chat.Files)
		}
		for _, f := range chat.Files {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			rc.Close()
		}
		if err := chat.Close(); err != nil {
			t.Error(err)
		}
		if err := chat.Close(); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseFile(filepath.Join(t.TempDir(), "missing.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFile(empty); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty file: %v", err)
	}
}
