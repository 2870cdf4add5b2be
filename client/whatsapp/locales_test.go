package whatsapp

import (
	"strings"
	"testing"
)

// m is a compact expected message: sender "" means a system notice.
type m struct {
	time, sender string
	kind         Kind
	text         string
	attachment   string
	edited       bool
}

func (e m) want() want {
	w := want{Time: e.time, Kind: e.kind, Text: e.text, Attachment: e.attachment, Edited: e.edited}
	if e.kind != KindSystem {
		s := e.sender
		w.Sender = &s
	}
	return w
}

// lines joins lines with LF and ends the file with one, as Android does.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// Narrow no-break and no-break spaces, as Android 13+ writes them.
const (
	nnbsp = "\u202f"
	nbsp  = "\u00a0"
)

// TestLocales parses exports in the layouts of other languages and
// regions. Each layout is one WhatsApp is known to write (seen in real
// exports or in bug reports with real exports against open-source
// readers); the chats themselves are invented.
func TestLocales(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		layout string
		order  DateOrder
		source OrderSource
		want   []m
	}{
		{
			name: "fr_FR Android: 4-digit year, no comma",
			in: lines(
				"27/03/2024 19:40 - Les messages et les appels sont chiffrés de bout en bout.",
				"27/03/2024 19:41 - Claire Dubois: Salut ! On se voit demain ?",
				"28/03/2024 08:02 - Hugo Martin: <Médias omis>",
				"28/03/2024 08:03 - Hugo Martin: IMG-20240328-WA0001.jpg (fichier joint)",
				"La vue depuis la fenêtre",
				"28/03/2024 08:05 - Claire Dubois: Ce message a été supprimé",
				"28/03/2024 08:06 - Claire Dubois: Oui, à 10 h <Ce message a été modifié>",
			),
			layout: "D/M/YYYY H:MM -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2024-03-27T19:40:00", "", KindSystem, "Les messages et les appels sont chiffrés de bout en bout.", "", false},
				{"2024-03-27T19:41:00", "Claire Dubois", KindText, "Salut ! On se voit demain ?", "", false},
				{"2024-03-28T08:02:00", "Hugo Martin", KindMediaOmitted, "", "", false},
				{"2024-03-28T08:03:00", "Hugo Martin", KindAttachment, "La vue depuis la fenêtre", "IMG-20240328-WA0001.jpg", false},
				{"2024-03-28T08:05:00", "Claire Dubois", KindDeleted, "", "", false},
				{"2024-03-28T08:06:00", "Claire Dubois", KindText, "Oui, à 10 h", "", true},
			},
		},
		{
			name: "fr_FR Android before 2020: à between date and time",
			in: lines(
				"26/09/2019 à 22:39 - Claire Dubois: Salut :)",
				"26/09/2019 à 22:40 - Hugo Martin: Salut Claire",
			),
			layout: "D/M/YYYY à H:MM -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2019-09-26T22:39:00", "Claire Dubois", KindText, "Salut :)", "", false},
				{"2019-09-26T22:40:00", "Hugo Martin", KindText, "Salut Claire", "", false},
			},
		},
		{
			name: "es_ES Android: p. m. with the spaces of Android 13+",
			in: lines(
				"28/3/2025, 9:29"+nnbsp+"p."+nbsp+"m. - Lucía Gómez: ¿Quedamos mañana?",
				"28/3/2025, 9:36"+nnbsp+"p."+nbsp+"m. - Lucía Gómez: PTT-20250328-WA0014.opus (archivo adjunto)",
				"29/3/2025, 1:23"+nnbsp+"a."+nbsp+"m. - Javier Ruiz: <Multimedia omitido>",
				"Mira esto",
				"29/3/2025, 12:05"+nnbsp+"a."+nbsp+"m. - Javier Ruiz: Se eliminó este mensaje.",
				"29/3/2025, 12:37"+nnbsp+"p."+nbsp+"m. - Lucía Gómez: Vale <Se editó este mensaje.>",
			),
			layout: "D/M/YYYY, h:MM a -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2025-03-28T21:29:00", "Lucía Gómez", KindText, "¿Quedamos mañana?", "", false},
				{"2025-03-28T21:36:00", "Lucía Gómez", KindAttachment, "", "PTT-20250328-WA0014.opus", false},
				{"2025-03-29T01:23:00", "Javier Ruiz", KindMediaOmitted, "Mira esto", "", false},
				{"2025-03-29T00:05:00", "Javier Ruiz", KindDeleted, "", "", false},
				{"2025-03-29T12:37:00", "Lucía Gómez", KindText, "Vale", "", true},
			},
		},
		{
			name: "es_ES Android before Android 13: p. m. with normal spaces",
			in: lines(
				"23/06/2018, 01:55 p. m. - Loris: one",
				"two",
				"24/06/2018, 11:02 a. m. - Ana: <Archivo omitido>",
			),
			layout: "D/M/YYYY, h:MM a -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2018-06-23T13:55:00", "Loris", KindText, "one\ntwo", "", false},
				{"2018-06-24T11:02:00", "Ana", KindMediaOmitted, "", "", false},
			},
		},
		{
			name: "pt_BR Android",
			in: lines(
				"03/10/2025 09:45 - Franklin Souza: Olá pessoal! 👋",
				"03/10/2025 09:47 - José Lima: IMG-20251002-WA0004.jpg (arquivo anexado)",
				"03/10/2025 09:48 - Ana Costa: <Mídia oculta>",
				"13/10/2025 21:00 - Ana Costa: Mensagem apagada",
				"13/10/2025 21:01 - José Lima: texto corrigido <Mensagem editada>",
			),
			layout: "D/M/YYYY H:MM -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2025-10-03T09:45:00", "Franklin Souza", KindText, "Olá pessoal! 👋", "", false},
				{"2025-10-03T09:47:00", "José Lima", KindAttachment, "", "IMG-20251002-WA0004.jpg", false},
				{"2025-10-03T09:48:00", "Ana Costa", KindMediaOmitted, "", "", false},
				{"2025-10-13T21:00:00", "Ana Costa", KindDeleted, "", "", false},
				{"2025-10-13T21:01:00", "José Lima", KindText, "texto corrigido", "", true},
			},
		},
		{
			name: "pt_BR iOS",
			in: "[03/01/24, 09:17:30] Ana Exemplo: \u200e<anexado: 00000003-PHOTO-2024-01-03-09-17-30.jpg>\r\n" +
				"[03/01/24, 09:18:00] Bruno Ficticio: \u200eimagem ocultada\r\n" +
				"[13/01/24, 21:00:00] Ana Exemplo: \u200eMensagem apagada\r\n" +
				"[13/01/24, 21:01:00] Bruno Ficticio: texto corrigido \u200e<Mensagem editada>\r\n" +
				"[13/01/24, 21:02:00] Grupo Teste: \u200eAna Exemplo adicionou Carla Inventada\r\n",
			layout: "[D/M/YY, H:MM:SS]", order: DMY, source: OrderFromDates,
			want: []m{
				{"2024-01-03T09:17:30", "Ana Exemplo", KindAttachment, "", "00000003-PHOTO-2024-01-03-09-17-30.jpg", false},
				{"2024-01-03T09:18:00", "Bruno Ficticio", KindMediaOmitted, "", "", false},
				{"2024-01-13T21:00:00", "Ana Exemplo", KindDeleted, "", "", false},
				{"2024-01-13T21:01:00", "Bruno Ficticio", KindText, "texto corrigido", "", true},
				{"2024-01-13T21:02:00", "", KindSystem, "Ana Exemplo adicionou Carla Inventada", "", false},
			},
		},
		{
			name: "it_IT Android",
			in: lines(
				"01/01/26, 08:00 - Persona A: IMG-20260101-WA0001.jpg (file allegato)",
				"Didascalia tecnica",
				"01/01/26, 08:02 - Persona B: <Media omessi>",
				"14/01/26, 08:03 - Persona B: Questo messaggio è stato eliminato",
			),
			layout: "D/M/YY, H:MM -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2026-01-01T08:00:00", "Persona A", KindAttachment, "Didascalia tecnica", "IMG-20260101-WA0001.jpg", false},
				{"2026-01-01T08:02:00", "Persona B", KindMediaOmitted, "", "", false},
				{"2026-01-14T08:03:00", "Persona B", KindDeleted, "", "", false},
			},
		},
		{
			name: "nl_NL Android: dashes",
			in: lines(
				"27-03-2024 19:40 - Sanne de Vries: Hoi!",
				"27-03-2024 19:41 - Daan Bakker: IMG-20240327-WA0001.jpg (bestand bijgevoegd)",
				"Dit is een foto",
				"27-03-2024 19:42 - Daan Bakker: <Media weggelaten>",
				"28-03-2024 07:00 - Sanne de Vries: Dit bericht is verwijderd",
			),
			layout: "D-M-YYYY H:MM -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2024-03-27T19:40:00", "Sanne de Vries", KindText, "Hoi!", "", false},
				{"2024-03-27T19:41:00", "Daan Bakker", KindAttachment, "Dit is een foto", "IMG-20240327-WA0001.jpg", false},
				{"2024-03-27T19:42:00", "Daan Bakker", KindMediaOmitted, "", "", false},
				{"2024-03-28T07:00:00", "Sanne de Vries", KindDeleted, "", "", false},
			},
		},
		{
			name: "nl_NL iOS: dashes, no comma",
			in: "[02-05-2022 16:21:32] c1: dit is een bericht\r\n" +
				"[02-05-2022 16:22:10] +123456789: een reactie\nover twee regels\r\n" +
				"\u200e[13-05-2022 16:23:01] c1: Manifesto.pdf • 116 pagina's \u200e<bijgevoegd: 00000017-Manifesto.pdf>\r\n",
			layout: "[D-M-YYYY H:MM:SS]", order: DMY, source: OrderFromDates,
			want: []m{
				{"2022-05-02T16:21:32", "c1", KindText, "dit is een bericht", "", false},
				{"2022-05-02T16:22:10", "+123456789", KindText, "een reactie\nover twee regels", "", false},
				{"2022-05-13T16:23:01", "c1", KindAttachment, "Manifesto.pdf • 116 pagina's", "00000017-Manifesto.pdf", false},
			},
		},
		{
			name: "ru_RU Android",
			in: lines(
				"27.03.2024, 19:40 - Ольга Иванова: Привет! Как дела?",
				"27.03.2024, 19:42 - Дмитрий Петров: <Без медиафайлов>",
				"28.03.2024, 08:15 - Дмитрий Петров: Данное сообщение удалено",
			),
			layout: "D.M.YYYY, H:MM -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2024-03-27T19:40:00", "Ольга Иванова", KindText, "Привет! Как дела?", "", false},
				{"2024-03-27T19:42:00", "Дмитрий Петров", KindMediaOmitted, "", "", false},
				{"2024-03-28T08:15:00", "Дмитрий Петров", KindDeleted, "", "", false},
			},
		},
		{
			name: "sv_SE Android: ISO dates",
			in: lines(
				"2019-01-01 12:00 - John Doe: Hello 😄",
				"2019-01-01 12:00 - Jane Doe: Hey!",
				"P.S. Nice emoji 👀",
				"2019-01-02 12:00 - +1 (000) 000-0000: <media utelämnat>",
			),
			layout: "YYYY-M-D H:MM -", order: YMD, source: OrderFromYear,
			want: []m{
				{"2019-01-01T12:00:00", "John Doe", KindText, "Hello 😄", "", false},
				{"2019-01-01T12:00:00", "Jane Doe", KindText, "Hey!\nP.S. Nice emoji 👀", "", false},
				{"2019-01-02T12:00:00", "+1 (000) 000-0000", KindMediaOmitted, "", "", false},
			},
		},
		{
			name: "fi iOS: dots in the time",
			in: "[1.1.2019, 12.00.00] John Doe: Hello 😄\r\n" +
				"[1.1.2019, 12.00.05] Jane Doe: Hey!\nP.S. Nice emoji 👀\r\n" +
				"[13.1.2019, 9.05.00] +1 (000) 000-0000: Good day!\r\n",
			layout: "[D.M.YYYY, H.MM.SS]", order: DMY, source: OrderFromDates,
			want: []m{
				{"2019-01-01T12:00:00", "John Doe", KindText, "Hello 😄", "", false},
				{"2019-01-01T12:00:05", "Jane Doe", KindText, "Hey!\nP.S. Nice emoji 👀", "", false},
				{"2019-01-13T09:05:00", "+1 (000) 000-0000", KindText, "Good day!", "", false},
			},
		},
		{
			name: "fi Android: klo and seconds",
			in: lines(
				"13.6.2018 klo 21.25.15 - Matias Virtanen: Moi",
				"13.6.2018 klo 21.26.00 - Aino Korhonen: Hei!",
			),
			layout: "D.M.YYYY klo H.MM.SS -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2018-06-13T21:25:15", "Matias Virtanen", KindText, "Moi", "", false},
				{"2018-06-13T21:26:00", "Aino Korhonen", KindText, "Hei!", "", false},
			},
		},
		{
			name: "id_ID Android: dots in the time, no comma",
			in: lines(
				"30/08/25 18.00 - Budi Santoso: Halo semua",
				"30/08/25 18.05 - Siti Rahma: Halo!",
			),
			layout: "D/M/YY H.MM -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2025-08-30T18:00:00", "Budi Santoso", KindText, "Halo semua", "", false},
				{"2025-08-30T18:05:00", "Siti Rahma", KindText, "Halo!", "", false},
			},
		},
		{
			name: "de_DE iOS",
			in: "[27.03.24, 19:40:12] Jonas Becker: \u200eNachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.\r\n" +
				"[27.03.24, 19:41:02] Mara Vogel: Hallo!\r\n" +
				"\u200e[27.03.24, 19:42:40] Mara Vogel: \u200e<Anhang: 00000003-PHOTO-2024-03-27-19-42-40.jpg>\r\n" +
				"\u200e[28.03.24, 08:00:01] Jonas Becker: \u200eBild weggelassen\r\n" +
				"[28.03.24, 08:01:30] Jonas Becker: \u200eDiese Nachricht wurde gelöscht.\r\n" +
				"[28.03.24, 08:02:00] Mara Vogel: \u200eStandort: https://maps.google.com/?q=54.323300,10.122800\r\n",
			layout: "[D.M.YY, H:MM:SS]", order: DMY, source: OrderFromDates,
			want: []m{
				{"2024-03-27T19:40:12", "", KindSystem, "Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.", "", false},
				{"2024-03-27T19:41:02", "Mara Vogel", KindText, "Hallo!", "", false},
				{"2024-03-27T19:42:40", "Mara Vogel", KindAttachment, "", "00000003-PHOTO-2024-03-27-19-42-40.jpg", false},
				{"2024-03-28T08:00:01", "Jonas Becker", KindMediaOmitted, "", "", false},
				{"2024-03-28T08:01:30", "Jonas Becker", KindDeleted, "", "", false},
				{"2024-03-28T08:02:00", "Mara Vogel", KindText, "Standort: https://maps.google.com/?q=54.323300,10.122800", "", false},
			},
		},
		{
			name: "en_IN Android: lower-case pm, all days 12 or less",
			in: lines(
				"05/06/24, 7:40 pm - Priya Sharma: Reached?",
				"05/06/24, 7:45 pm - Arjun Mehta: Yes",
			),
			layout: "D/M/YY, h:MM a -", order: DMY, source: OrderDefault,
			want: []m{
				{"2024-06-05T19:40:00", "Priya Sharma", KindText, "Reached?", "", false},
				{"2024-06-05T19:45:00", "Arjun Mehta", KindText, "Yes", "", false},
			},
		},
		{
			name: "en_US Android: ambiguous dates, decided by chronology",
			in: lines(
				"1/2/24, 9:00"+nnbsp+"AM - Sam Patel: happy new year (late)",
				"1/5/24, 9:00"+nnbsp+"AM - Jordan Reyes: thanks!",
				"2/1/24, 9:00"+nnbsp+"AM - Sam Patel: a month already",
			),
			layout: "M/D/YY, h:MM a -", order: MDY, source: OrderFromSequence,
			want: []m{
				{"2024-01-02T09:00:00", "Sam Patel", KindText, "happy new year (late)", "", false},
				{"2024-01-05T09:00:00", "Jordan Reyes", KindText, "thanks!", "", false},
				{"2024-02-01T09:00:00", "Sam Patel", KindText, "a month already", "", false},
			},
		},
		{
			name: "en_US Android: one day, upper-case AM, order by default",
			in: lines(
				"5/6/24, 12:41"+nnbsp+"AM - Sam Patel: up late",
				"5/6/24, 12:05"+nnbsp+"PM - Jordan Reyes: lunch?",
			),
			layout: "M/D/YY, h:MM a -", order: MDY, source: OrderDefault,
			want: []m{
				{"2024-05-06T00:41:00", "Sam Patel", KindText, "up late", "", false},
				{"2024-05-06T12:05:00", "Jordan Reyes", KindText, "lunch?", "", false},
			},
		},
		{
			name: "en_GB Android: one day, 24-hour, order by default",
			in: lines(
				"05/06/2024, 10:00 - Mum: Morning love",
				"05/06/2024, 10:02 - Olivia Hart: Morning!",
			),
			layout: "D/M/YYYY, H:MM -", order: DMY, source: OrderDefault,
			want: []m{
				{"2024-06-05T10:00:00", "Mum", KindText, "Morning love", "", false},
				{"2024-06-05T10:02:00", "Olivia Hart", KindText, "Morning!", "", false},
			},
		},
		{
			name: "Android re-saved on Windows: BOM and CRLF throughout",
			in: "\ufeff20/12/2022, 18:02 - Messages and calls are end-to-end encrypted.\r\n" +
				"20/12/2022, 18:03 - Mum: Shopping list:\r\n- sprouts\r\n\r\n- parsnips\r\n" +
				"20/12/2022, 18:04 - Olivia Hart: <Media omitted>\r\nCaption\r\n",
			layout: "D/M/YYYY, H:MM -", order: DMY, source: OrderFromDates,
			want: []m{
				{"2022-12-20T18:02:00", "", KindSystem, "Messages and calls are end-to-end encrypted.", "", false},
				{"2022-12-20T18:03:00", "Mum", KindText, "Shopping list:\n- sprouts\n\n- parsnips", "", false},
				{"2022-12-20T18:04:00", "Olivia Hart", KindMediaOmitted, "Caption", "", false},
			},
		},
		{
			name: "Android old layout with seconds and p.m., no comma",
			in: lines(
				"9/24/2019 11:30:00 p.m. - John Doe: Hello world",
				"9/25/2019 11:30:05 a.m. - John Doe: Testing am",
			),
			layout: "M/D/YYYY h:MM:SS a -", order: MDY, source: OrderFromDates,
			want: []m{
				{"2019-09-24T23:30:00", "John Doe", KindText, "Hello world", "", false},
				{"2019-09-25T11:30:05", "John Doe", KindText, "Testing am", "", false},
			},
		},
		{
			name: "ko_KR Android: yy. M. d. and the period before the time",
			in: lines(
				"23. 10. 28. 오후 7:40 - 김민준: 안녕하세요",
				"23. 10. 28. 오후 12:05 - 이서연: 네 안녕하세요!",
				"23. 11. 2. 오전 12:30 - 김민준: 늦었네요",
			),
			layout: "YY. M. D. a h:MM -", order: YMD, source: OrderFromSequence,
			want: []m{
				{"2023-10-28T19:40:00", "김민준", KindText, "안녕하세요", "", false},
				{"2023-10-28T12:05:00", "이서연", KindText, "네 안녕하세요!", "", false},
				{"2023-11-02T00:30:00", "김민준", KindText, "늦었네요", "", false},
			},
		},
		{
			name: "zh_TW Android: the period before the time, no space",
			in: lines(
				"2023/10/28 下午7:40 - 陳怡君: 你好",
				"2023/10/29 上午9:05 - 林志明: 早安",
			),
			layout: "YYYY/M/D a h:MM -", order: YMD, source: OrderFromYear,
			want: []m{
				{"2023-10-28T19:40:00", "陳怡君", KindText, "你好", "", false},
				{"2023-10-29T09:05:00", "林志明", KindText, "早安", "", false},
			},
		},
		{
			name: "ja_JP Android: YYYY/MM/DD, 24-hour",
			in: lines(
				"2023/10/28 19:40 - 佐藤花子: こんにちは",
				"2023/10/28 19:41 - 鈴木一郎: <メディアなし>",
			),
			layout: "YYYY/M/D H:MM -", order: YMD, source: OrderFromYear,
			want: []m{
				{"2023-10-28T19:40:00", "佐藤花子", KindText, "こんにちは", "", false},
				{"2023-10-28T19:41:00", "鈴木一郎", KindMediaOmitted, "", "", false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chat, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			f := chat.Format
			if f.Layout != tt.layout || f.Order != tt.order || f.OrderSource != tt.source {
				t.Errorf("format %v, want %s %s from %s", f, tt.layout, tt.order, tt.source)
			}
			exp := make([]want, len(tt.want))
			for i, e := range tt.want {
				exp[i] = e.want()
			}
			compare(t, tt.name, chat.Messages, exp)
		})
	}
}

// TestBodies covers how messages are cut and who sent them.
func TestBodies(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []m
	}{
		{
			name: "continuation lines that look like headers or names",
			in: lines(
				"2/28/24, 08:30 - Sofía Marín: Plan:",
				"3/14/24 finish reading",
				"3/15/24, meet at 19:30",
				"[3/15/24, 19:30] not an iOS header in an Android file",
				"Karim Haddad: I will finish the book this time",
				"2/28/24, 08:31 - Alex Novak: ok",
			),
			want: []m{
				{"2024-02-28T08:30:00", "Sofía Marín", KindText, "Plan:\n3/14/24 finish reading\n3/15/24, meet at 19:30\n[3/15/24, 19:30] not an iOS header in an Android file\nKarim Haddad: I will finish the book this time", "", false},
				{"2024-02-28T08:31:00", "Alex Novak", KindText, "ok", "", false},
			},
		},
		{
			// "Work: Alice" is known as a name once two of her messages
			// have no further ": " on their first line.
			name: "names with ': ' and ' - ', text with ': '",
			in: lines(
				"2/27/24, 21:00 - Work: Alice: morning all",
				"2/27/24, 21:01 - Bob: re: the report",
				"2/27/24, 21:02 - Work: Alice: re: the report: done",
				"2/27/24, 21:03 - Bob: thanks",
				"2/27/24, 21:03 - Work: Alice: done",
				"2/27/24, 21:04 - Coach Ray - Trails: see you",
				"2/27/24, 21:05 - Ana: location: https://maps.google.com/?q=1,2",
			),
			want: []m{
				{"2024-02-27T21:00:00", "Work: Alice", KindText, "morning all", "", false},
				{"2024-02-27T21:01:00", "Bob", KindText, "re: the report", "", false},
				{"2024-02-27T21:02:00", "Work: Alice", KindText, "re: the report: done", "", false},
				{"2024-02-27T21:03:00", "Bob", KindText, "thanks", "", false},
				{"2024-02-27T21:03:00", "Work: Alice", KindText, "done", "", false},
				{"2024-02-27T21:04:00", "Coach Ray - Trails", KindText, "see you", "", false},
				{"2024-02-27T21:05:00", "Ana", KindText, "location: https://maps.google.com/?q=1,2", "", false},
			},
		},
		{
			name: "empty messages and a notice with a continuation line",
			in: lines(
				"03/02/17, 18:42 - Luke: ",
				"06/03/17, 00:45 - You created group \"Test\"",
				"This is another line",
				"06/03/17, 00:46 - Luke:",
			),
			want: []m{
				{"2017-02-03T18:42:00", "Luke", KindText, "", "", false},
				{"2017-03-06T00:45:00", "", KindSystem, "You created group \"Test\"\nThis is another line", "", false},
				{"2017-03-06T00:46:00", "", KindSystem, "Luke:", "", false},
			},
		},
		{
			name: "blank lines before the first header",
			in:   "\n  \r\n" + lines("27/03/2024, 19:40 - A: x"),
			want: []m{
				{"2024-03-27T19:40:00", "A", KindText, "x", "", false},
			},
		},
		{
			name: "notices that quote text with ': '",
			in: lines(
				"6/3/22, 12:40 PM - Dana Whitfield: hi",
				"6/3/22, 12:41 PM - Dana Whitfield changed the subject from \"Hikes: June\" to \"Hikes: July\"",
				"6/3/22, 12:42 PM - Dana Whitfield hat den Betreff von „Touren: Juni“ zu „Touren: Juli“ geändert",
				"6/3/22, 12:43 PM - Luis \"Lucho\" Ortega: quotes in a name are fine",
			),
			want: []m{
				{"2022-06-03T12:40:00", "Dana Whitfield", KindText, "hi", "", false},
				{"2022-06-03T12:41:00", "", KindSystem, "Dana Whitfield changed the subject from \"Hikes: June\" to \"Hikes: July\"", "", false},
				{"2022-06-03T12:42:00", "", KindSystem, "Dana Whitfield hat den Betreff von „Touren: Juni“ zu „Touren: Juli“ geändert", "", false},
				{"2022-06-03T12:43:00", "Luis \"Lucho\" Ortega", KindText, "quotes in a name are fine", "", false},
			},
		},
		{
			name: "phone numbers wrapped in directional marks, timestamps not monotonic",
			in: lines(
				"6/2/22, 7:18 PM - Messages and calls are end-to-end encrypted.",
				"6/2/22, 7:15 PM - \u202a+1 415 555 0100\u202c created group \"Hiking\"",
				"6/2/22, 7:16 PM - \u202a+1 415 555 0100\u202c: hi \u2068@Mei\u2069",
			),
			want: []m{
				{"2022-06-02T19:18:00", "", KindSystem, "Messages and calls are end-to-end encrypted.", "", false},
				{"2022-06-02T19:15:00", "", KindSystem, "+1 415 555 0100 created group \"Hiking\"", "", false},
				{"2022-06-02T19:16:00", "+1 415 555 0100", KindText, "hi \u2068@Mei\u2069", "", false},
			},
		},
		{
			name: "Android: a document's file name is repeated as its caption; an audio without extension",
			in: lines(
				"12/08/2023, 10:01 - Lena Fischer: test_document.pdf (file attached)",
				"test_document",
				"12/08/2023, 10:02 - Lena Fischer: AUD-20190101-WA0000. (file attached)",
				"12/08/2023, 10:03 - Lena Fischer:  (file attached)",
			),
			want: []m{
				{"2023-08-12T10:01:00", "Lena Fischer", KindAttachment, "test_document", "test_document.pdf", false},
				{"2023-08-12T10:02:00", "Lena Fischer", KindAttachment, "", "AUD-20190101-WA0000.", false},
				{"2023-08-12T10:03:00", "Lena Fischer", KindText, " (file attached)", "", false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chat, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			exp := make([]want, len(tt.want))
			for i, e := range tt.want {
				exp[i] = e.want()
			}
			compare(t, tt.name, chat.Messages, exp)
		})
	}
}

// TestDayPeriodsOrder keeps the table free of duplicates, so that the
// longest-match rule is the only thing that decides.
func TestDayPeriodsOrder(t *testing.T) {
	seen := make(map[string]bool)
	for _, p := range dayPeriods {
		k := strings.ToLower(p.text)
		if seen[k] {
			t.Errorf("day period %q twice", p.text)
		}
		seen[k] = true
	}
}

// TestLines checks the header line numbers, which the expected files do
// not carry.
func TestLines(t *testing.T) {
	in := "\ufeff\n\r\n27/03/2024, 19:40 - A: one\r\ntwo\r\n\r\n27/03/2024, 19:41 - B: three\r\n"
	chat, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Messages) != 2 || chat.Messages[0].Line != 3 || chat.Messages[1].Line != 6 {
		t.Fatalf("messages %+v, want lines 3 and 6", chat.Messages)
	}
	if got := chat.Messages[0].Text; got != "one\ntwo\n" {
		t.Errorf("text %q, want the blank line kept", got)
	}
}
