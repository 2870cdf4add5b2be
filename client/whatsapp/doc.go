// Package whatsapp reads the files that WhatsApp's "Export chat" produces,
// so that a user leaving WhatsApp can bring their history into Sotto.
//
// An export is a text file (Android: "WhatsApp Chat with NAME.txt", its
// name localized; iOS: "_chat.txt"), alone or in a zip together with the
// media the chat refers to. Parse reads the text file; ParseZip finds it in
// the zip and exposes the media for streaming reads; ParseFile does
// either for a file on disk. Nothing is extracted or written to disk, and
// only ParseFile uses the operating system (os.Open, which GOOS=js has
// too), so the package builds for the browser.
//
// # The format
//
// Each message starts on a header line that carries the local wall-clock
// time at which it was sent, and runs until the next header line:
//
//	Android: DATE, TIME - Sender: text          (a notice has no "Sender: ")
//	iOS:     [DATE, TIME] Sender: text
//
// How DATE and TIME look depends on the phone's language and region, and
// WhatsApp writes no hint of which it used: day/month order (27/03/24 or
// 3/27/24 or 2024-03-27), the separator (/ . -), two- or four-digit years,
// a comma or none after the date, a 12- or 24-hour clock with a localized
// day-period marker (AM, a. m., vorm., 오후, 下午, …) before or after the
// time and after a normal, no-break or narrow no-break space, seconds or
// none. Parse therefore infers the layout from the file itself: it scans
// every line for something shaped like a header, takes the most common
// shape as the file's layout, and decides the date order from the data (a
// field above 12 cannot be a month; when no field decides, the order that
// keeps the dates closest to chronological wins, and only then a default).
// The result is reported in Chat.Format.
//
// Message text is kept verbatim (line breaks, blank lines, leading
// spaces, emoji, the U+2068/U+2069 around mentions); only WhatsApp's own
// markers are interpreted, from tables of localized strings in markers.go:
// media left out of the export, attached files, deleted messages, the
// "edited" suffix, and (iOS) notices marked with U+200E.
//
// iOS writes CRLF between records and a bare LF inside a multi-line
// message; files re-saved on Windows may be CRLF throughout and start with
// a UTF-8 byte order mark. All of these are accepted, and CRs at the ends
// of lines are dropped.
//
// # Times
//
// An export records wall-clock times without a zone, and they are not
// monotonic (the encryption notice may be stamped after the group's
// creation, clocks fall back at the end of summer time). Message.Time
// carries the time as printed in the time.UTC location, used only as a
// zone-less container; the caller decides the real zone. Messages are
// returned in file order, never sorted.
//
// # Security
//
// An export is untrusted input: it holds what others wrote, and a zip can
// come from anyone. Every size is bounded by a named constant (see the Max
// constants): the chat file is read into memory only up to MaxChatSize,
// zip members are checked against their declared sizes and are also cut
// off while reading, because declared sizes can lie. Zip members whose names could escape a directory
// (.., absolute paths, backslashes, drive letters) make the whole archive
// invalid. Errors name line numbers and never quote message text.
//
// # Compatibility
//
// The layouts and markers are those of real exports of WhatsApp for
// Android and iOS, as seen in exports and in bug reports against
// open-source export readers, in the languages listed in markers.go. A
// marker that is missing from the tables only makes a message come out as
// plain text, never fails the parse; adding a language means adding lines
// to those tables.
package whatsapp
