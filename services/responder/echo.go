package responder

import (
	"html"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// helpText answers a bare mention, which leaves nothing to echo.
const helpText = "Mention me with some text and I will send it back."

// bot is who the responder posts as, learnt from GET /people/me.
type bot struct {
	id   string // the person id, base64 of ciscospark://<region>/PEOPLE/<uuid>
	uuid string // the uuid inside id; "" when id is not in that form
	name string // the display name, the mention label when html has none
}

func newBot(p *webex.Person) *bot {
	return &bot{id: p.ID, uuid: personUUID(p.ID), name: p.DisplayName}
}

// personUUID returns the uuid inside a Webex person id, or "": a
// spark-mention may name the bot by either form.
func personUUID(id string) string {
	if kind, uuid, ok := webex.ParseID(id); ok && kind == webex.KindPeople {
		return uuid
	}
	return ""
}

var (
	// mentionRE finds the spark-mention elements of a message's html. RE2
	// runs in linear time, so untrusted html cannot stall it.
	mentionRE = regexp.MustCompile(`(?is)<spark-mention\b([^>]*)>(.*?)</spark-mention\s*>`)
	// attrRE reads one attribute of a start tag.
	attrRE = regexp.MustCompile(`([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)
	// tagRE finds markup inside a mention's label.
	tagRE = regexp.MustCompile(`<[^>]*>`)
)

// mentionLabel returns the visible label of the first spark-mention of the
// bot in htmlText, and whether there is one. The element names the bot by
// its person id or by the raw uuid inside it.
func (b *bot) mentionLabel(htmlText string) (string, bool) {
	for _, m := range mentionRE.FindAllStringSubmatch(htmlText, -1) {
		var typ, id string
		for _, a := range attrRE.FindAllStringSubmatch(m[1], -1) {
			value := html.UnescapeString(a[2] + a[3] + a[4])
			switch strings.ToLower(a[1]) {
			case "data-object-type":
				typ = value
			case "data-object-id":
				id = value
			}
		}
		if !strings.EqualFold(typ, "person") || !b.is(id) {
			continue
		}
		label := strings.TrimSpace(html.UnescapeString(tagRE.ReplaceAllString(m[2], "")))
		if label != "" {
			return label, true
		}
	}
	return "", false
}

// is reports whether id names the bot, as its person id or its raw uuid.
func (b *bot) is(id string) bool {
	id = strings.TrimSpace(id)
	return id != "" && (id == b.id || (b.uuid != "" && strings.EqualFold(id, b.uuid)))
}

// echoText is the reply to m: its text without the bot's mention, trimmed,
// in the sender's own casing and characters, cut to what Webex accepts; the
// help text when nothing is left.
//
// The mention's label comes from the html (it can differ from the bot's
// display name, e.g. "Echo" for "EchoBot"), else it is the display name. It
// is removed where it leads the text, else at its first occurrence; the
// latter only when the message does mention the bot, so that a direct
// message that merely names the bot is echoed whole.
func (b *bot) echoText(m *webex.Message) string {
	label, inHTML := b.mentionLabel(m.HTML)
	if !inHTML {
		label = b.name
	}
	mentioned := inHTML || slices.Contains(m.MentionedPeople, b.id)
	text := strings.TrimSpace(stripLabel(m.Text, label, mentioned))
	if text == "" {
		return helpText
	}
	return truncate(text, webex.MaxMessageBytes)
}

// stripLabel removes label from text where it leads it, else (with anywhere)
// at its first occurrence, dropping one of the two spaces that would then
// meet.
func stripLabel(text, label string, anywhere bool) string {
	if label == "" {
		return text
	}
	text = strings.TrimLeftFunc(text, unicode.IsSpace)
	if rest, ok := strings.CutPrefix(text, label); ok {
		return rest
	}
	if !anywhere {
		return text
	}
	i := strings.Index(text, label)
	if i < 0 {
		return text
	}
	before, after := text[:i], text[i+len(label):]
	if strings.HasSuffix(before, " ") && strings.HasPrefix(after, " ") {
		after = after[1:]
	}
	return before + after
}

// truncate cuts s to at most n bytes, at a UTF-8 character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
