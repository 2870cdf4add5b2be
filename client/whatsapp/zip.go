package whatsapp

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// File is a member of an export's zip other than the chat: a photo, voice
// note, sticker, document or contact card. It is safe for concurrent use.
type File struct {
	// Name is the member's name, as Message.Attachment writes it.
	Name string
	// Size is the uncompressed size that the zip declares.
	Size int64

	zf *zip.File
}

// Open returns a reader of the file's content. Reading fails with an
// error wrapping ErrTooLarge if the file is over MaxMemberSize or its
// content runs past its declared size (a zip bomb), and with zip's own
// errors if the data is corrupt.
func (f *File) Open() (io.ReadCloser, error) {
	if f.Size > MaxMemberSize {
		return nil, fmt.Errorf("open %q: %d bytes, over %d GiB: %w", f.Name, f.Size, MaxMemberSize>>30, ErrTooLarge)
	}
	rc, err := f.zf.Open()
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", f.Name, err)
	}
	return &boundedReader{rc: rc, left: f.Size, name: f.Name}, nil
}

// boundedReader fails instead of returning more than left bytes.
type boundedReader struct {
	rc   io.ReadCloser
	left int64
	name string
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		return 0, fmt.Errorf("read %q: more data than its declared %d bytes: %w", b.name, b.left, ErrTooLarge)
	}
	b.left -= int64(n)
	return n, err
}

func (b *boundedReader) Close() error { return b.rc.Close() }

// ParseZip reads an export zip: it finds the chat text file ("_chat.txt"
// on iOS, the only .txt or the .txt whose name contains "WhatsApp" on
// Android), parses it as Parse does, and lists the other members in
// Chat.Files for streaming reads from r. Nothing is extracted to disk.
//
// A zip made by zipping the export's folder again (one top-level folder,
// maybe with macOS's __MACOSX) is read as if the folder were its root.
// Errors wrap ErrNotZip, ErrUnsafeZip, ErrTooLarge, ErrNoChatFile,
// ErrAmbiguousChatFile, or a *ParseError from the chat file.
func ParseZip(r io.ReaderAt, size int64) (*Chat, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// zip.ErrInsecurePath still returns a usable reader; the names
		// are checked below either way.
		return nil, fmt.Errorf("%w: %w", ErrNotZip, err)
	}
	if len(zr.File) > MaxZipMembers {
		return nil, fmt.Errorf("%w: %d members, over %d", ErrUnsafeZip, len(zr.File), MaxZipMembers)
	}

	var (
		members []*zip.File
		total   uint64
	)
	for _, zf := range zr.File {
		if !safeName(zf.Name) {
			return nil, fmt.Errorf("%w: member name %q", ErrUnsafeZip, zf.Name)
		}
		if ignoredMember(zf.Name) {
			continue
		}
		total += zf.UncompressedSize64
		if total > MaxTotalSize || zf.UncompressedSize64 > MaxTotalSize {
			return nil, fmt.Errorf("%w: members declare over %d GiB", ErrTooLarge, MaxTotalSize>>30)
		}
		members = append(members, zf)
	}
	root := commonRoot(members)

	files := make(map[string]*File, len(members))
	var txt []string
	for _, zf := range members {
		name := strings.TrimPrefix(zf.Name, root)
		files[name] = &File{Name: name, Size: int64(zf.UncompressedSize64), zf: zf}
		if !strings.Contains(name, "/") && strings.EqualFold(path.Ext(name), ".txt") {
			txt = append(txt, name)
		}
	}
	chatName, err := pickChatFile(txt)
	if err != nil {
		return nil, err
	}
	chatFile := files[chatName]
	delete(files, chatName)

	text, err := readChat(chatFile)
	if err != nil {
		return nil, err
	}
	chat, err := parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", chatName, err)
	}
	chat.ChatFile = chatName
	chat.Files = files
	return chat, nil
}

// readChat reads the chat file, bounded by MaxChatSize whatever its
// declared size says.
func readChat(f *File) (string, error) {
	if f.Size > MaxChatSize {
		return "", fmt.Errorf("%s: %d bytes, over %d MiB: %w", f.Name, f.Size, MaxChatSize>>20, ErrTooLarge)
	}
	rc, err := f.zf.Open()
	if err != nil {
		return "", fmt.Errorf("open %s: %w", f.Name, err)
	}
	defer rc.Close()
	text, err := readChatText(rc, f.Size)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", f.Name, err)
	}
	return text, nil
}

// safeName reports whether a member name stays inside the archive's
// directory on every system: no "..", no absolute path, no backslash (a
// separator on Windows), no drive letter, no NUL.
func safeName(name string) bool {
	if name == "" || strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") {
		return false
	}
	if len(name) >= 2 && name[1] == ':' {
		return false
	}
	return fs.ValidPath(strings.TrimSuffix(name, "/"))
}

// ignoredMember reports directories and the files macOS adds when it
// zips a folder.
func ignoredMember(name string) bool {
	base := path.Base(name)
	return strings.HasSuffix(name, "/") ||
		strings.HasPrefix(name, "__MACOSX/") ||
		strings.HasPrefix(base, "._") ||
		base == ".DS_Store"
}

// commonRoot returns "dir/" if every member is inside the one folder dir
// (an export folder zipped again), else "".
func commonRoot(members []*zip.File) string {
	root := ""
	for _, zf := range members {
		dir, _, ok := strings.Cut(zf.Name, "/")
		if !ok {
			return ""
		}
		if root == "" {
			root = dir
		} else if dir != root {
			return ""
		}
	}
	if root == "" {
		return ""
	}
	return root + "/"
}

// pickChatFile chooses the chat among the top-level .txt files.
func pickChatFile(txt []string) (string, error) {
	switch len(txt) {
	case 0:
		return "", ErrNoChatFile
	case 1:
		return txt[0], nil
	}
	var named []string
	for _, n := range txt {
		if n == "_chat.txt" {
			return n, nil
		}
		if strings.Contains(strings.ToLower(n), "whatsapp") {
			named = append(named, n)
		}
	}
	if len(named) == 1 {
		return named[0], nil
	}
	sort.Strings(txt)
	return "", fmt.Errorf("%w: %q", ErrAmbiguousChatFile, txt)
}
