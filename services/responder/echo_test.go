package responder

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sparkguard/sparkguard/platform/webex"
)

const (
	testBotUUID  = "5b0e7c2a-1d3f-4e5a-9b8c-0123456789ab"
	testBotName  = "EchoBot"
	otherUUID    = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	testBotLabel = "Echo"
)

func personID(uuid string) string {
	return base64.RawStdEncoding.EncodeToString([]byte("ciscospark://us/PEOPLE/" + uuid))
}

func mention(id, label string) string {
	return `<spark-mention data-object-type="person" data-object-id="` + id + `">` + label + `</spark-mention>`
}

func TestPersonUUID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, id, want string
	}{
		{"unpadded", personID(testBotUUID), testBotUUID},
		{"padded", base64.StdEncoding.EncodeToString([]byte("ciscospark://us/PEOPLE/" + testBotUUID + "x")), testBotUUID + "x"},
		{"other region", base64.RawStdEncoding.EncodeToString([]byte("ciscospark://eu/PEOPLE/" + testBotUUID)), testBotUUID},
		{"not a person", base64.RawStdEncoding.EncodeToString([]byte("ciscospark://us/ROOM/" + testBotUUID)), ""},
		{"not base64", "not base64!", ""},
		{"not a webex id", base64.RawStdEncoding.EncodeToString([]byte("hello")), ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := personUUID(tt.id); got != tt.want {
				t.Errorf("personUUID(%q) = %q, want %q", tt.id, got, tt.want)
			}
		})
	}
}

func TestEchoText(t *testing.T) {
	t.Parallel()
	b := newBot(&webex.Person{ID: personID(testBotUUID), DisplayName: testBotName})
	botMention := []string{b.id}
	tests := []struct {
		name      string
		text      string
		html      string
		mentioned []string
		want      string
	}{
		{
			name: "display name label by person id",
			text: "EchoBot Hello World", html: "<p>" + mention(b.id, "EchoBot") + " Hello World</p>",
			mentioned: botMention, want: "Hello World",
		},
		{
			name: "custom label",
			text: "Echo hello", html: "<p>" + mention(b.id, "Echo") + " hello</p>",
			mentioned: botMention, want: "hello",
		},
		{
			name: "label by raw uuid",
			text: "Echo by uuid", html: "<p>" + mention(testBotUUID, "Echo") + " by uuid</p>",
			mentioned: botMention, want: "by uuid",
		},
		{
			name: "label by upper-case uuid, single quotes, attributes swapped",
			text: "Echo quoted", html: `<p><spark-mention data-object-id='` + strings.ToUpper(testBotUUID) + `' data-object-type='person'>Echo</spark-mention> quoted</p>`,
			want: "quoted",
		},
		{
			name: "label with an entity and markup",
			text: "R&D Bot go", html: "<p>" + mention(b.id, "<b>R&amp;D</b> Bot") + " go</p>",
			want: "go",
		},
		{
			name: "another person mentioned first",
			text: "Alice Echo hi", html: "<p>" + mention(personID(otherUUID), "Alice") + " " + mention(b.id, "Echo") + " hi</p>",
			mentioned: []string{personID(otherUUID), b.id}, want: "Alice hi",
		},
		{
			name: "group mention is not the bot",
			text: "All EchoBot hi", html: `<p><spark-mention data-object-type="groupMention" data-group-type="all">All</spark-mention> ` + mention(b.id, "EchoBot") + ` hi</p>`,
			want: "All hi",
		},
		{
			name: "mention of the bot with a foreign type is ignored",
			text: "Echo x", html: `<p><spark-mention data-object-type="room" data-object-id="` + b.id + `">Echo</spark-mention> x</p>`,
			want: "Echo x",
		},
		{
			name: "no html: leading display name",
			text: "  EchoBot hi there", mentioned: botMention, want: "hi there",
		},
		{
			name: "no html: display name in the middle of a mention",
			text: "please EchoBot repeat", mentioned: botMention, want: "please repeat",
		},
		{
			name: "direct message naming the bot is kept whole",
			text: "I like EchoBot", want: "I like EchoBot",
		},
		{
			name: "direct message starting with the display name",
			text: "EchoBot hi", want: "hi",
		},
		{
			name: "casing and characters kept",
			text: "Echo HeLLo WoRLD ÄÖÜ ✓ 😀", html: "<p>" + mention(b.id, "Echo") + " HeLLo WoRLD ÄÖÜ ✓ 😀</p>",
			want: "HeLLo WoRLD ÄÖÜ ✓ 😀",
		},
		{
			name: "only the first occurrence goes",
			text: "Echo says Echo", html: "<p>" + mention(b.id, "Echo") + " says Echo</p>",
			want: "says Echo",
		},
		{
			name: "markdown and html characters stay as typed",
			text: "Echo **bold** <b>x</b> _i_", html: "<p>" + mention(b.id, "Echo") + " **bold** &lt;b&gt;x&lt;/b&gt; _i_</p>",
			want: "**bold** <b>x</b> _i_",
		},
		{
			name: "bare mention gets help",
			text: "Echo", html: "<p>" + mention(b.id, "Echo") + "</p>",
			want: helpText,
		},
		{
			name: "mention and whitespace gets help",
			text: "EchoBot \n\t ", mentioned: botMention, want: helpText,
		},
		{
			name: "empty text gets help",
			text: "", want: helpText,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := b.echoText(&webex.Message{Text: tt.text, HTML: tt.html, MentionedPeople: tt.mentioned})
			if got != tt.want {
				t.Errorf("echoText(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestEchoTextCutsLongText(t *testing.T) {
	t.Parallel()
	b := newBot(&webex.Person{ID: personID(testBotUUID), DisplayName: testBotName})
	tests := []struct {
		name     string
		body     string
		wantLen  int
		wantBody string
	}{
		{"ascii", strings.Repeat("a", 8000), webex.MaxMessageBytes, strings.Repeat("a", webex.MaxMessageBytes)},
		{"three-byte characters", strings.Repeat("€", 3000), 7437, strings.Repeat("€", 2479)},
		{"four-byte characters", strings.Repeat("😀", 2000), 7436, strings.Repeat("😀", 1859)},
		{"two-byte characters", strings.Repeat("é", 4000), 7438, strings.Repeat("é", 3719)},
		{"exactly at the limit", strings.Repeat("b", webex.MaxMessageBytes), webex.MaxMessageBytes, strings.Repeat("b", webex.MaxMessageBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := b.echoText(&webex.Message{Text: "EchoBot " + tt.body, MentionedPeople: []string{b.id}})
			if len(got) != tt.wantLen || got != tt.wantBody {
				t.Errorf("echo is %d bytes, want %d (%q…)", len(got), tt.wantLen, got[:min(len(got), 20)])
			}
			if !utf8.ValidString(got) {
				t.Error("echo is not valid UTF-8: cut inside a character")
			}
		})
	}
}
