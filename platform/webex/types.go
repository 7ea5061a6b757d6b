package webex

import "time"

// Person is a Webex person, bot or app user (GET /people/{id}, /people/me).
type Person struct {
	ID          string    `json:"id"`
	Emails      []string  `json:"emails,omitempty"`
	DisplayName string    `json:"displayName,omitempty"`
	NickName    string    `json:"nickName,omitempty"`
	FirstName   string    `json:"firstName,omitempty"`
	LastName    string    `json:"lastName,omitempty"`
	OrgID       string    `json:"orgId,omitempty"`
	Type        string    `json:"type,omitempty"` // person, bot or appuser
	Created     time.Time `json:"created,omitzero"`
}

// Person types Webex reports in Person.Type.
const (
	PersonTypePerson  = "person"
	PersonTypeBot     = "bot"
	PersonTypeAppUser = "appuser"
)

// Message is a Webex message (GET /messages/{id}, POST /messages).
type Message struct {
	ID              string    `json:"id"`
	ParentID        string    `json:"parentId,omitempty"`
	RoomID          string    `json:"roomId,omitempty"`
	RoomType        string    `json:"roomType,omitempty"` // direct or group
	Text            string    `json:"text,omitempty"`
	Markdown        string    `json:"markdown,omitempty"`
	HTML            string    `json:"html,omitempty"`
	Files           []string  `json:"files,omitempty"`
	PersonID        string    `json:"personId,omitempty"`
	PersonEmail     string    `json:"personEmail,omitempty"`
	MentionedPeople []string  `json:"mentionedPeople,omitempty"`
	MentionedGroups []string  `json:"mentionedGroups,omitempty"`
	Created         time.Time `json:"created,omitzero"`
	Updated         time.Time `json:"updated,omitzero"`
}

// MaxMessageBytes is Webex's limit on a message's text (and markdown), in
// bytes.
const MaxMessageBytes = 7439

// MessageRequest is the body of POST /messages. One of RoomID, ToPersonID
// and ToPersonEmail names where it goes.
type MessageRequest struct {
	RoomID        string `json:"roomId,omitempty"`
	ToPersonID    string `json:"toPersonId,omitempty"`
	ToPersonEmail string `json:"toPersonEmail,omitempty"`
	ParentID      string `json:"parentId,omitempty"`
	Text          string `json:"text,omitempty"`
	Markdown      string `json:"markdown,omitempty"`
}

// Webhook is a registered Webex webhook (GET/POST/PUT /webhooks).
type Webhook struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	TargetURL string    `json:"targetUrl"`
	Resource  string    `json:"resource"`
	Event     string    `json:"event"`
	Filter    string    `json:"filter,omitempty"`
	Secret    string    `json:"secret,omitempty"`
	Status    string    `json:"status,omitempty"` // active or inactive
	OrgID     string    `json:"orgId,omitempty"`
	CreatedBy string    `json:"createdBy,omitempty"`
	AppID     string    `json:"appId,omitempty"`
	OwnedBy   string    `json:"ownedBy,omitempty"`
	Created   time.Time `json:"created,omitzero"`
}

// Webhook statuses.
const (
	WebhookActive   = "active"
	WebhookInactive = "inactive"
)

// WebhookRequest is the body of POST /webhooks.
type WebhookRequest struct {
	Name      string `json:"name"`
	TargetURL string `json:"targetUrl"`
	Resource  string `json:"resource"`
	Event     string `json:"event"`
	Filter    string `json:"filter,omitempty"`
	Secret    string `json:"secret,omitempty"`
	OwnedBy   string `json:"ownedBy,omitempty"`
}

// WebhookUpdate is the body of PUT /webhooks/{id}: the only fields Webex
// lets a webhook change.
type WebhookUpdate struct {
	Name      string `json:"name"`
	TargetURL string `json:"targetUrl"`
	Secret    string `json:"secret,omitempty"`
	Status    string `json:"status,omitempty"`
}

// Event is the JSON body of a webhook delivery. Its top-level OrgID is the
// org of the webhook's creator, not of the person who acted.
type Event struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	TargetURL string    `json:"targetUrl,omitempty"`
	Resource  string    `json:"resource"`
	Event     string    `json:"event"`
	Filter    string    `json:"filter,omitempty"`
	OrgID     string    `json:"orgId,omitempty"`
	CreatedBy string    `json:"createdBy,omitempty"`
	AppID     string    `json:"appId,omitempty"`
	OwnedBy   string    `json:"ownedBy,omitempty"`
	Status    string    `json:"status,omitempty"`
	Created   time.Time `json:"created,omitzero"`
	ActorID   string    `json:"actorId,omitempty"`
	Data      EventData `json:"data"`
}

// EventData is the "data" of a webhook delivery: for messages, the message
// without its text.
type EventData struct {
	ID              string    `json:"id"`
	RoomID          string    `json:"roomId,omitempty"`
	RoomType        string    `json:"roomType,omitempty"`
	PersonID        string    `json:"personId,omitempty"`
	PersonEmail     string    `json:"personEmail,omitempty"`
	MentionedPeople []string  `json:"mentionedPeople,omitempty"`
	Created         time.Time `json:"created,omitzero"`
}

// ErrorBody is the JSON body of a Webex error answer.
type ErrorBody struct {
	Message    string        `json:"message"`
	Errors     []ErrorDetail `json:"errors,omitempty"`
	TrackingID string        `json:"trackingId,omitempty"`
}

// ErrorDetail is one entry of ErrorBody.Errors.
type ErrorDetail struct {
	Description string `json:"description"`
}
