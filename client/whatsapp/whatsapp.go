package whatsapp

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Limits, each with its reason.
const (
	// MaxChatSize is the largest chat text file accepted, in bytes. The
	// whole file is held in memory while it is parsed (the messages'
	// texts point into it). 256 MiB is about 1.5 million messages of
	// average length, more than the longest real chats, while a zip bomb
	// that inflates to gigabytes is refused.
	MaxChatSize = 256 << 20

	// MaxPreambleLines is how many lines Parse reads looking for the
	// first message header before it decides that the file is not a
	// WhatsApp export at all. A real export starts with a header on its
	// first line; the slack allows for a few blank lines or a stray line
	// added by hand.
	MaxPreambleLines = 50

	// MaxSenderBytes is the longest sender name, in bytes, that is split
	// off a message. WhatsApp profile names are at most 25 characters and
	// contact names are rarely longer than a few dozen; a longer prefix
	// before ": " is message text. The bound also keeps the search for the
	// name's end linear in the size of the file.
	MaxSenderBytes = 256

	// MinYear is the earliest year a header may carry. WhatsApp dates
	// from 2009, but a phone whose clock was reset stamps messages from
	// 1970, the Unix epoch; a year before that is not a timestamp.
	MinYear = 1970

	// MaxZipMembers is the most entries a zip may have. A chat that ran
	// for years with media has tens of thousands of files; more entries
	// than this is not an export, and each entry costs memory.
	MaxZipMembers = 200_000

	// MaxMemberSize is the largest single media file, in bytes, that
	// File.Open will return. WhatsApp sends documents of up to 2 GB; 4 GiB
	// leaves room for growth while refusing the "exabyte" entries of zip
	// bombs.
	MaxMemberSize = 4 << 30

	// MaxTotalSize is the largest sum of the declared uncompressed sizes
	// of all members, in bytes. The biggest real exports with media are a
	// few GiB (phones' storage and WhatsApp's own export limits bound
	// them); an archive declaring more is refused before anything is read.
	MaxTotalSize = 64 << 30
)

// Kind says what a message is.
type Kind string

// The kinds of message.
const (
	// KindText is a message somebody wrote, including locations and polls.
	KindText Kind = "text"
	// KindSystem is one of WhatsApp's own notices (encryption, group
	// changes, joins and leaves, security codes, timers). Its Sender is "".
	KindSystem Kind = "system"
	// KindAttachment is a file that was sent; Message.Attachment names it.
	// The file is in the zip only if the chat was exported with media.
	KindAttachment Kind = "attachment"
	// KindMediaOmitted is media that the export left out ("<Media
	// omitted>", "image omitted").
	KindMediaOmitted Kind = "media_omitted"
	// KindDeleted is a message that was deleted before the export.
	KindDeleted Kind = "deleted"
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	switch k {
	case KindText, KindSystem, KindAttachment, KindMediaOmitted, KindDeleted:
		return true
	}
	return false
}

// Message is one message of an export.
type Message struct {
	// Line is the 1-based number of the message's header line in the chat
	// file.
	Line int
	// Time is the local wall-clock time as printed in the export (seconds
	// are zero when the export has none), in the time.UTC location used
	// as a zone-less container: the export does not say which zone the
	// phone was in.
	Time time.Time
	// Sender is the name as written in the export (a contact's name or a
	// phone number), with directional formatting characters removed. It
	// is "" for, and only for, KindSystem.
	Sender string
	// Kind says what the message is.
	Kind Kind
	// Text is, for KindText, the whole message (lines joined with "\n",
	// otherwise verbatim); for KindSystem, the notice; for KindAttachment
	// and KindMediaOmitted, a caption or document title or ""; for
	// KindDeleted, "".
	Text string
	// Attachment is the name of the attached file, for KindAttachment only.
	Attachment string
	// Edited reports that WhatsApp marked the message as edited (the
	// marker is removed from Text).
	Edited bool
}

// Chat is a parsed export.
type Chat struct {
	// Messages are the messages in file order (not sorted by time).
	Messages []Message
	// Format is the layout that was inferred from the file.
	Format Format
	// ChatFile is the name of the chat text file inside a zip, "" for
	// Parse.
	ChatFile string
	// Files are the members of a zip other than the chat file, by name
	// (the names that Message.Attachment uses); nil for Parse. They are
	// valid while the io.ReaderAt given to ParseZip is, or until Close
	// for ParseFile.
	Files map[string]*File

	closer io.Closer // the file ParseFile opened
}

// Platform is the WhatsApp app that wrote an export.
type Platform string

// The platforms, told apart by their header layout.
const (
	Android Platform = "android" // DATE, TIME - Sender: text
	IOS     Platform = "ios"     // [DATE, TIME] Sender: text
)

// DateOrder is the order of the fields of a date.
type DateOrder string

// The date orders that WhatsApp uses.
const (
	DMY DateOrder = "DMY" // 27/03/2024: most of the world
	MDY DateOrder = "MDY" // 3/27/24: the United States and a few others
	YMD DateOrder = "YMD" // 2024-03-27: ISO-style locales, East Asia, Hungary
)

// OrderSource says what decided a file's date order.
type OrderSource string

// The ways a date order is decided, from the most certain to the least.
const (
	// OrderFromYear: a four-digit year stands first, so the order is YMD.
	OrderFromYear OrderSource = "year"
	// OrderFromDates: some date of the file is valid in only one order
	// (a day above 12).
	OrderFromDates OrderSource = "dates"
	// OrderFromSequence: every date fits both orders, but one of them
	// keeps the messages closer to chronological.
	OrderFromSequence OrderSource = "sequence"
	// OrderDefault: nothing in the file tells the orders apart (every day
	// is 12 or less and both readings are equally chronological, for
	// example a chat of a single day). The default is MDY for
	// "M/D/YY, h:mm AM" files with an upper-case AM/PM, the United
	// States' layout, and DMY otherwise.
	OrderDefault OrderSource = "default"
)

// Format is the header layout of an export, as inferred by Parse. Its
// String form is a readable pattern such as "[D/M/YYYY, H:MM:SS]" or
// "M/D/YY, h:MM AM -".
type Format struct {
	Platform    Platform
	Order       DateOrder
	OrderSource OrderSource
	// DateSep is the separator between the date's fields: "/", "." or "-".
	DateSep string
	// YearDigits is 2 or 4. Two-digit years are 20YY.
	YearDigits int
	// Clock12 reports a 12-hour clock with a day-period marker;
	// PeriodFirst that the marker stands before the time (Korean,
	// Chinese, Japanese).
	Clock12     bool
	PeriodFirst bool
	// Seconds reports that times have seconds.
	Seconds bool
	// Layout is the pattern of the header, for messages and tests.
	Layout string
}

// String returns the layout and how the date order was decided.
func (f Format) String() string {
	return fmt.Sprintf("%s %s (%s, order from %s)", f.Platform, f.Layout, f.Order, f.OrderSource)
}

// Errors that callers can test for with errors.Is. Parse and ParseZip wrap
// them in a *ParseError when a line is at fault, or in an error naming the
// zip member.
var (
	// ErrEmpty: the chat file has no content.
	ErrEmpty = errors.New("whatsapp: the chat file is empty")
	// ErrNotText: the file is binary or not UTF-8 (for example UTF-16),
	// so it is not a chat export.
	ErrNotText = errors.New("whatsapp: not a UTF-8 text file")
	// ErrNoHeader: no line in the first MaxPreambleLines looks like a
	// WhatsApp message header, so the file is not a chat export.
	ErrNoHeader = errors.New("whatsapp: no WhatsApp message header found; not a chat export")
	// ErrTextBeforeHeader: text stands before the first message header,
	// where it belongs to no message.
	ErrTextBeforeHeader = errors.New("whatsapp: text before the first message header")
	// ErrBadTimestamp: a header line has the file's layout but a date or
	// time that cannot be (month 13, hour 25, 31 February).
	ErrBadTimestamp = errors.New("whatsapp: impossible date or time in a message header")
	// ErrTooLarge: the chat file or a zip member is over its limit.
	ErrTooLarge = errors.New("whatsapp: over the size limit")
	// ErrNotZip: ParseZip was given something that is not a zip archive.
	ErrNotZip = errors.New("whatsapp: not a zip archive")
	// ErrUnsafeZip: a member's name could escape a directory (.., an
	// absolute path, a backslash, a drive letter) or the archive breaks a
	// limit; no WhatsApp export looks like that.
	ErrUnsafeZip = errors.New("whatsapp: unsafe zip archive")
	// ErrNoChatFile: the zip holds no chat text file.
	ErrNoChatFile = errors.New("whatsapp: no chat text file in the zip")
	// ErrAmbiguousChatFile: the zip holds several text files and none is
	// recognizably the chat.
	ErrAmbiguousChatFile = errors.New("whatsapp: several candidate chat files in the zip")
)

// ParseError is the error Parse returns for a problem in the chat file.
// Err is one of the sentinel errors above, or an error from the reader.
// It never contains message text.
type ParseError struct {
	// Line is the 1-based line at fault, or 0 when the file as a whole is.
	Line int
	// Detail says more, for example the timestamp that could not be read
	// and the layout it was read with.
	Detail string
	Err    error
}

// Error returns the sentinel's text, the line and the detail.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }
