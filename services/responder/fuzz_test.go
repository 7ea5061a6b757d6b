package responder

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// FuzzEchoText feeds untrusted message text and html to the mention
// stripping: it must never panic, never answer empty or over Webex's limit,
// and keep valid UTF-8 valid.
func FuzzEchoText(f *testing.F) {
	b := newBot(&webex.Person{ID: personID(testBotUUID), DisplayName: testBotName})
	f.Add("Echo hello", "<p>"+mention(b.id, "Echo")+" hello</p>")
	f.Add("Echo", "<p>"+mention(testBotUUID, "Echo")+"</p>")
	f.Add("EchoBot "+strings.Repeat("€", 3000), "")
	f.Add("x", `<spark-mention data-object-id='`+b.id+`' data-object-type=person>`)
	f.Add("", "<spark-mention></spark-mention>")
	f.Fuzz(func(t *testing.T, text, html string) {
		got := b.echoText(&webex.Message{Text: text, HTML: html, MentionedPeople: []string{b.id}})
		if got == "" {
			t.Fatal("empty echo")
		}
		if len(got) > webex.MaxMessageBytes {
			t.Fatalf("echo of %d bytes is over the limit", len(got))
		}
		if utf8.ValidString(text) && !utf8.ValidString(got) {
			t.Fatalf("valid text %q gave invalid echo %q", text, got)
		}
	})
}
