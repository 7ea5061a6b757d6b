package webexsim

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// The kinds of Webex ids the emulator makes.
const (
	kindPeople       = webex.KindPeople
	kindMessage      = webex.KindMessage
	kindRoom         = webex.KindRoom
	kindWebhook      = webex.KindWebhook
	kindOrganization = webex.KindOrganization
	kindApplication  = webex.KindApplication
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
func newID(kind string) string { return webex.FormatID(kind, newUUID()) }

// idKind returns the KIND inside a Webex id, or "" when id is not one.
func idKind(id string) string {
	kind, _, _ := webex.ParseID(id)
	return kind
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
