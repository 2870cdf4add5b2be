package whatsapp_test

import (
	"fmt"
	"strings"

	"github.com/sotto-chat/sotto/client/whatsapp"
)

func ExampleParse() {
	export := "27.03.24, 19:40 - Jonas Becker: Hey Mara, steht Ostern noch?\n" +
		"27.03.24, 19:44 - Mara Vogel: Ja klar!\nIch hol dich um 7 ab.\n" +
		"28.03.24, 08:12 - Mara Vogel: <Medien ausgeschlossen>\n"
	chat, err := whatsapp.Parse(strings.NewReader(export))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(chat.Format)
	for _, m := range chat.Messages {
		fmt.Printf("%d %s %s %s %q\n", m.Line, m.Time.Format("2006-01-02 15:04"), m.Sender, m.Kind, m.Text)
	}
	// Output:
	// android D.M.YY, H:MM - (DMY, order from dates)
	// 1 2024-03-27 19:40 Jonas Becker text "Hey Mara, steht Ostern noch?"
	// 2 2024-03-27 19:44 Mara Vogel text "Ja klar!\nIch hol dich um 7 ab."
	// 4 2024-03-28 08:12 Mara Vogel media_omitted ""
}
