package whatsapp

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// zipMagic starts every zip archive (a local file header; an empty zip
// starts with its end record, which holds no chat anyway).
var zipMagic = []byte("PK\x03\x04")

// ParseFile parses the export at path: a zip (recognized by its content,
// not its name) with ParseZip, or else a chat text file with Parse. For a
// zip the file stays open so that Chat.Files can be read; call
// Chat.Close when done with them. Errors are those of Parse and ParseZip,
// or of opening the file.
func ParseFile(path string) (*Chat, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	head := make([]byte, len(zipMagic))
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if bytes.Equal(head[:n], zipMagic) {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		chat, err := ParseZip(f, st.Size())
		if err != nil {
			f.Close()
			return nil, err
		}
		chat.closer = f
		return chat, nil
	}
	defer f.Close()
	return Parse(io.MultiReader(bytes.NewReader(head[:n]), f))
}

// Close releases the file that ParseFile left open for Chat.Files; after
// it the files cannot be read. It does nothing for chats from Parse and
// ParseZip, and may be called more than once.
func (c *Chat) Close() error {
	if c == nil || c.closer == nil {
		return nil
	}
	err := c.closer.Close()
	c.closer = nil
	return err
}
