package webex

import (
	"encoding/base64"
	"strings"
)

// ID kinds, the KIND in "ciscospark://us/<KIND>/<uuid>".
const (
	KindPeople       = "PEOPLE"
	KindMessage      = "MESSAGE"
	KindRoom         = "ROOM"
	KindWebhook      = "WEBHOOK"
	KindOrganization = "ORGANIZATION"
	KindApplication  = "APPLICATION"
)

// FormatID returns the Webex id of a kind and UUID: the unpadded standard
// base64 of "ciscospark://us/<kind>/<uuid>".
func FormatID(kind, uuid string) string {
	return base64.RawStdEncoding.EncodeToString([]byte("ciscospark://us/" + kind + "/" + uuid))
}

// ParseID returns the kind and the UUID inside a Webex id; ok is false when
// id is not one. Places such as a spark-mention may name a person by the
// raw UUID instead of the id.
func ParseID(id string) (kind, uuid string, ok bool) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(id, "="))
	if err != nil {
		return "", "", false
	}
	rest, found := strings.CutPrefix(string(raw), "ciscospark://")
	if !found {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[1], parts[2], true
}
