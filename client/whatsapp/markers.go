package whatsapp

// The localized strings that WhatsApp writes into exports, one table per
// kind of marker. Each entry names its language (BCP 47); a language may
// have several entries because the wording changed between app versions.
// Comparison ignores case (strings.EqualFold), so one entry covers
// "<Media omitted>" and "<media omitted>".
//
// The strings come from real exports and from the fixtures of open-source
// export readers. A missing string only makes a message come out as
// KindText; to support a language, add its lines here (and a test case to
// locales_test.go).

// marker is one localized string.
type marker struct {
	text string
	lang string
}

// dayPeriod is a 12-hour clock's marker for the morning (pm false) or the
// afternoon (pm true). A space in text matches any of U+0020, U+00A0 and
// U+202F, which WhatsApp uses interchangeably between versions.
type dayPeriod struct {
	text string
	pm   bool
	lang string
}

// dayPeriods are the day-period markers of 12-hour clocks. Latin ones are
// compared ignoring ASCII case, so "AM" covers "am".
var dayPeriods = []dayPeriod{
	{"AM", false, "en"},
	{"PM", true, "en"},
	{"a.m.", false, "en-CA, en-AU, es-US"},
	{"p.m.", true, "en-CA, en-AU, es-US"},
	{"a. m.", false, "es"},
	{"p. m.", true, "es"},
	{"a.m", false, "en-IE"},
	{"p.m", true, "en-IE"},
	{"vorm.", false, "de (12-hour setting)"},
	{"nachm.", true, "de (12-hour setting)"},
	{"午前", false, "ja"},
	{"午後", true, "ja"},
	{"오전", false, "ko"},
	{"오후", true, "ko"},
	{"上午", false, "zh"},
	{"下午", true, "zh"},
	{"ص", false, "ar"},
	{"م", true, "ar"},
	{"π.μ.", false, "el"},
	{"μ.μ.", true, "el"},
	{"ق.ظ.", false, "fa"},
	{"ب.ظ.", true, "fa"},
	{"SA", false, "vi"},
	{"CH", true, "vi"},
	{"fm", false, "sv"},
	{"em", true, "sv"},
	{"ก่อนเที่ยง", false, "th"},
	{"หลังเที่ยง", true, "th"},
}

// dateTimeJoiners are words that some locales put between the date and
// the time instead of ", " (each followed and preceded by a space).
var dateTimeJoiners = []marker{
	{"à", "fr (Android before 2020: 26/09/2019 à 22:39)"},
	{"klo", "fi (13.6.2018 klo 21.25.15)"},
}

// mediaOmittedLines are the Android lines that stand for media left out of
// an export; the whole first line of the message is the marker, and any
// further lines are the caption.
var mediaOmittedLines = []marker{
	{"<Media omitted>", "en"},
	{"<Medien ausgeschlossen>", "de"},
	{"<Medien weggelassen>", "de"},
	{"<Multimedia omitido>", "es"},
	{"<Archivo omitido>", "es"},
	{"<Médias omis>", "fr"},
	{"<Fichier omis>", "fr"},
	{"<Mídia oculta>", "pt-BR"},
	{"<Mídia omitida>", "pt-BR"},
	{"<ficheiro não revelado>", "pt-PT"},
	{"<Media omessi>", "it"},
	{"<Media omesso>", "it"},
	{"<Media weggelaten>", "nl"},
	{"<media weggelaat>", "af"},
	{"<Без медиафайлов>", "ru"},
	{"<Файл пропущен>", "ru"},
	{"<медіа пропущено>", "uk"},
	{"<Medya dahil edilmedi>", "tr"},
	{"<Medya atlanmış>", "tr"},
	{"<pominięto multimedia>", "pl"},
	{"<pliki pominięto>", "pl"},
	{"<média vynechány>", "cs"},
	{"<Média vynechána>", "cs"},
	{"<Médiá vynechané>", "sk"},
	{"<média elhagyva>", "hu"},
	{"<Hiányzó médiafájl>", "hu"},
	{"<conținut media omis>", "ro"},
	{"<medier udeladt>", "da"},
	{"<Mediefil udeladt>", "da"},
	{"<media utelatt>", "nb"},
	{"<Uten vedlegg>", "nb"},
	{"<media utelämnat>", "sv"},
	{"<Media har utelämnats>", "sv"},
	{"<media jätettiin pois>", "fi"},
	{"<Media jätetty pois>", "fi"},
	{"<fitxers multimèdia omesos>", "ca"},
	{"<Mitjans omesos>", "ca"},
	{"<αρχείο παραλήφθηκε>", "el"},
	{"<Εξαίρεση πολυμέσων>", "el"},
	{"<Без файл>", "bg"},
	{"<medijski zapis izostavljen>", "hr"},
	{"<медији су изостављени>", "sr"},
	{"<Media tidak disertakan>", "id"},
	{"<media dikecualikan>", "ms"},
	{"<Media disingkirkan>", "ms"},
	{"<bỏ qua tệp phương tiện>", "vi"},
	{"<Bỏ qua Media>", "vi"},
	{"<ไฟล์สื่อถูกลบ>", "th"},
	{"<สื่อถูกลบ>", "th"},
	{"<המדיה לא נכללה>", "he"},
	{"<מדיה הושמטה>", "he"},
	{"<تم استبعاد الوسائط>", "ar"},
	{"<رسانه حذف شد>", "fa"},
	{"<मीडिया के बिना>", "hi"},
	{"<メディアなし>", "ja"},
	{"<メディアは含まれていません>", "ja"},
	{"<미디어 파일 제외됨>", "ko"},
	{"<미디어 파일을 생략한 대화내용>", "ko"},
	{"<省略多媒体文件>", "zh-CN"},
	{"<忽略多媒體檔>", "zh-TW"},
}

// mediaOmittedSuffixes are the iOS words for media left out of an export.
// They end the message, after U+200E; a document's title may stand before
// them ("Bills.xlsx \u200edocument omitted").
var mediaOmittedSuffixes = []marker{
	{"image omitted", "en"},
	{"video omitted", "en"},
	{"audio omitted", "en"},
	{"sticker omitted", "en"},
	{"GIF omitted", "en"},
	{"document omitted", "en"},
	{"Contact card omitted", "en"},
	{"Bild weggelassen", "de"},
	{"Video weggelassen", "de"},
	{"Audio weggelassen", "de"},
	{"Sticker weggelassen", "de"},
	{"GIF weggelassen", "de"},
	{"Dokument weggelassen", "de"},
	{"Kontaktkarte ausgelassen", "de"},
	{"imagen omitida", "es"},
	{"video omitido", "es"},
	{"audio omitido", "es"},
	{"sticker omitido", "es"},
	{"GIF omitido", "es"},
	{"documento omitido", "es"},
	{"image absente", "fr"},
	{"vidéo absente", "fr"},
	{"audio omis", "fr"},
	{"sticker omis", "fr"},
	{"GIF retiré", "fr"},
	{"document omis", "fr"},
	{"imagem ocultada", "pt-BR"},
	{"immagine omessa", "it"},
	{"video omesso", "it"},
	{"audio omesso", "it"},
	{"sticker omesso", "it"},
	{"documento omesso", "it"},
	{"afbeelding weggelaten", "nl"},
	{"video weggelaten", "nl"},
	{"audio weggelaten", "nl"},
	{"изображение отсутствует", "ru"},
}

// attachedSuffixes end the first line of an Android message that carries
// a file: "IMG-20230812-WA0000.jpg (file attached)".
var attachedSuffixes = []marker{
	{" (file attached)", "en"},
	{" (Datei angehängt)", "de"},
	{" (archivo adjunto)", "es"},
	{" (fichier joint)", "fr"},
	{" (arquivo anexado)", "pt-BR"},
	{" (file allegato)", "it"},
	{" (bestand bijgevoegd)", "nl"},
}

// attachedPrefixes open the iOS reference to a file, which ends with ">":
// "<attached: 00000004-PHOTO-2022-05-14-18-22-07.jpg>".
var attachedPrefixes = []marker{
	{"<attached: ", "en"},
	{"<Anhang: ", "de"},
	{"<adjunto: ", "es"},
	{"<anexado: ", "pt-BR"},
	{"<allegato: ", "it"},
	{"<bijgevoegd: ", "nl"},
}

// deletedBodies are the whole text of a deleted message, for messages
// others deleted and for the exporter's own; a final "." is optional
// (iOS writes it, Android does not).
var deletedBodies = []marker{
	{"This message was deleted", "en"},
	{"You deleted this message", "en"},
	{"Diese Nachricht wurde gelöscht", "de"},
	{"Du hast diese Nachricht gelöscht", "de"},
	{"Se eliminó este mensaje", "es"},
	{"Eliminaste este mensaje", "es"},
	{"Este mensaje fue eliminado", "es (older)"},
	{"Ce message a été supprimé", "fr"},
	{"Vous avez supprimé ce message", "fr"},
	{"Mensagem apagada", "pt-BR"},
	{"Esta mensagem foi apagada", "pt-BR (older)"},
	{"Você apagou esta mensagem", "pt-BR"},
	{"Questo messaggio è stato eliminato", "it"},
	{"Hai eliminato questo messaggio", "it"},
	{"Dit bericht is verwijderd", "nl"},
	{"U hebt dit bericht verwijderd", "nl"},
	{"Je hebt dit bericht verwijderd", "nl"},
	{"Данное сообщение удалено", "ru"},
	{"Вы удалили данное сообщение", "ru"},
	{"Bu mesaj silindi", "tr"},
	{"Bu mesajı sildiniz", "tr"},
	{"Pesan ini telah dihapus", "id"},
	{"Anda menghapus pesan ini", "id"},
}

// editedSuffixes end the text of an edited message, after a space (and on
// iOS a U+200E).
var editedSuffixes = []marker{
	{"<This message was edited>", "en"},
	{"<Diese Nachricht wurde bearbeitet>", "de"},
	{"<Se editó este mensaje.>", "es"},
	{"<Ce message a été modifié>", "fr"},
	{"<Mensagem editada>", "pt-BR"},
	{"<Questo messaggio è stato modificato>", "it"},
	{"<Dit bericht is bewerkt>", "nl"},
}

// locationPrefixes open an iOS location message ("\u200eLocation:
// https://maps.google.com/?q=…"), which is text although it starts with
// U+200E like a notice. A body that links to maps.google.com counts as a
// location in any language.
var locationPrefixes = []marker{
	{"Location: ", "en"},
	{"Standort: ", "de"},
	{"Ubicación: ", "es"},
	{"Localização: ", "pt-BR"},
}

// mapsLink marks a location message in any language.
const mapsLink = "https://maps.google.com/?q="
