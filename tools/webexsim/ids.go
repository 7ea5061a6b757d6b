package webexsim

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// The kinds of Webex ids ("ciscospark://us/<KIND>/<uuid>").
const (
	kindPeople       = "PEOPLE"
	kindMessage      = "MESSAGE"
	kindRoom         = "ROOM"
	kindWebhook      = "WEBHOOK"
	kindOrganization = "ORGANIZATION"
	kindApplication  = "APPLICATION"
)

// newUUID returns a random (version 4) UUID in lowercase hex. Lowercase
// hex, dashes and the fixed prefix never produce '+' or '/' in base64, so
// the ids are safe in URL paths as Webex's are.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newID returns a new Webex id of kind.
func newID(kind string) string {
	return base64.RawStdEncoding.EncodeToString([]byte("ciscospark://us/" + kind + "/" + newUUID()))
}

// idKind returns the KIND inside a Webex id, or "" when id is not one.
func idKind(id string) string {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(id, "="))
	if err != nil {
		return ""
	}
	rest, ok := strings.CutPrefix(string(raw), "ciscospark://")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return ""
	}
	return parts[1]
}

// newTrackingID returns a trackingId in the shape Webex uses.
func newTrackingID(prefix string) string {
	return prefix + "_" + strings.ToUpper(newUUID())
}

// now is the time stamp of new objects: UTC, to the millisecond, as Webex
// reports them.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Millisecond)
}
