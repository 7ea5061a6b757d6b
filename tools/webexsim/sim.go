package webexsim

import (
	"cmp"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// Defaults of Options.
const (
	DefaultToken                          = "sim-token"
	DefaultBotName                        = "EchoBot"
	DefaultBotEmail                       = "echobot@webex.bot"
	DefaultDeliveryTimeout                = 5 * time.Second
	DefaultDeliveryFailuresBeforeInactive = 5
)

// Room types, as Webex reports them in Message.RoomType.
const (
	RoomDirect = "direct"
	RoomGroup  = "group"
)

// Options configure a Sim. The zero value works.
type Options struct {
	// Token is the bot's bearer token; every /v1 request must carry
	// "Authorization: Bearer <Token>", else 401. Default DefaultToken.
	Token string
	// Bot is the bot (GET /people/me); zero fields get defaults:
	// DisplayName DefaultBotName, email DefaultBotEmail, type "bot", a new
	// id in the real format, OrgID, Created now.
	Bot webex.Person
	// OrgID is the org of people added without one, and of the bot. Default
	// a new organization id.
	OrgID string
	// DeliveryClient POSTs webhook deliveries. Default a client with a
	// DefaultDeliveryTimeout timeout.
	DeliveryClient *http.Client
	// DeliveryFailuresBeforeInactive is how many consecutive failed
	// deliveries turn a webhook "inactive". Default
	// DefaultDeliveryFailuresBeforeInactive.
	DeliveryFailuresBeforeInactive int
	// Logger is optional; nil logs nothing.
	Logger *slog.Logger
}

// Post is a message that a simulated person posts (Sim.Post and
// POST /admin/messages).
type Post struct {
	// PersonID is the sender: a person added with AddPerson, or the bot.
	PersonID string `json:"personId"`
	// RoomID is the room; empty means the sender's direct room with the bot
	// when RoomType is "direct", else a new group room.
	RoomID string `json:"roomId,omitempty"`
	// RoomType is "direct" or "group"; empty means the room's type when it
	// is known, else "group".
	RoomType string `json:"roomType,omitempty"`
	// ParentID makes the message a reply in that message's thread.
	ParentID string `json:"parentId,omitempty"`
	// Text is what the person typed.
	Text string `json:"text"`
	// MentionBot mentions the bot in a group room: the text becomes
	// "<label> <Text>", the html holds a spark-mention of the bot and
	// mentionedPeople lists the bot. Ignored in direct rooms.
	MentionBot bool `json:"mentionBot,omitempty"`
	// MentionLabel is the mention's visible label instead of the bot's
	// DisplayName (Webex allows a shorter label, e.g. "Echo").
	MentionLabel string `json:"mentionLabel,omitempty"`
}

// Sim is an emulated Webex for one bot. It is safe for concurrent use.
type Sim struct {
	token     string
	orgID     string
	appID     string
	client    *http.Client
	failLimit int
	log       *slog.Logger
	handler   http.Handler

	mu          sync.Mutex
	bot         webex.Person
	people      map[string]webex.Person // by id, the bot included
	emails      map[string]string       // lowercase email → person id
	rooms       map[string]*room
	directRooms map[string]string // person id → their direct room with the bot
	messages    map[string]webex.Message
	hooks       map[string]*hook
	hookSeq     int64
	faults      map[string]*Fault // remaining Times, when limited
	calls       map[string]int
	deliveries  int
	closed      bool
	wg          sync.WaitGroup // in-flight deliveries
}

// room is a space the bot is in.
type room struct {
	id   string
	typ  string
	peer string   // the person of a direct room
	msgs []string // message ids, oldest first
}

// hook is a registered webhook and its delivery health.
type hook struct {
	w        webex.Webhook
	seq      int64 // creation order, the paging cursor
	failures int   // consecutive failed deliveries
}

// New returns a Sim with opts' defaults filled in.
func New(opts Options) *Sim {
	s := &Sim{
		token:       opts.Token,
		orgID:       opts.OrgID,
		appID:       newID(kindApplication),
		client:      opts.DeliveryClient,
		failLimit:   opts.DeliveryFailuresBeforeInactive,
		log:         opts.Logger,
		people:      make(map[string]webex.Person),
		emails:      make(map[string]string),
		rooms:       make(map[string]*room),
		directRooms: make(map[string]string),
		messages:    make(map[string]webex.Message),
		hooks:       make(map[string]*hook),
		faults:      make(map[string]*Fault),
		calls:       make(map[string]int),
	}
	if s.token == "" {
		s.token = DefaultToken
	}
	if s.orgID == "" {
		s.orgID = newID(kindOrganization)
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: DefaultDeliveryTimeout}
	}
	if s.failLimit <= 0 {
		s.failLimit = DefaultDeliveryFailuresBeforeInactive
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}

	bot := opts.Bot
	if bot.ID == "" {
		bot.ID = newID(kindPeople)
	}
	if bot.DisplayName == "" {
		bot.DisplayName = DefaultBotName
	}
	if len(bot.Emails) == 0 {
		bot.Emails = []string{DefaultBotEmail}
	}
	if bot.Type == "" {
		bot.Type = webex.PersonTypeBot
	}
	if bot.OrgID == "" {
		bot.OrgID = s.orgID
	}
	if bot.Created.IsZero() {
		bot.Created = now()
	}
	s.bot = clonePerson(bot)
	s.storePersonLocked(bot)
	s.handler = s.routes()
	return s
}

// Handler serves the Webex API under /v1/ and the admin API under /admin/.
func (s *Sim) Handler() http.Handler { return s.handler }

// Bot returns the bot, as GET /people/me answers it.
func (s *Sim) Bot() webex.Person {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clonePerson(s.bot)
}

// AddPerson stores p, filling an empty ID (real format), OrgID (the
// default org), Type ("person"), Created (now) and DisplayName (from the
// email), and returns the stored person. A p.ID already known replaces
// that person; the bot cannot be replaced.
func (s *Sim) AddPerson(p webex.Person) webex.Person {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ID != "" && p.ID == s.bot.ID {
		return clonePerson(s.bot)
	}
	if p.ID == "" {
		p.ID = newID(kindPeople)
	}
	if p.OrgID == "" {
		p.OrgID = s.orgID
	}
	if p.Type == "" {
		p.Type = webex.PersonTypePerson
	}
	if p.Created.IsZero() {
		p.Created = now()
	}
	if p.DisplayName == "" && len(p.Emails) > 0 {
		p.DisplayName, _, _ = strings.Cut(p.Emails[0], "@")
	}
	p = clonePerson(p)
	if old, ok := s.people[p.ID]; ok {
		for _, e := range old.Emails {
			if s.emails[strings.ToLower(e)] == p.ID {
				delete(s.emails, strings.ToLower(e))
			}
		}
	}
	s.storePersonLocked(p)
	return clonePerson(p)
}

// storePersonLocked stores p and indexes its emails.
func (s *Sim) storePersonLocked(p webex.Person) {
	s.people[p.ID] = p
	for _, e := range p.Emails {
		s.emails[strings.ToLower(e)] = p.ID
	}
}

// NewRoomID returns the id of a new group room the bot is in.
func (s *Sim) NewRoomID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm := &room{id: newID(kindRoom), typ: RoomGroup}
	s.addRoomLocked(rm)
	return rm.id
}

// addRoomLocked registers rm unless it is known. Rooms are registered only
// once a message is valid, so that a refused one leaves no trace.
func (s *Sim) addRoomLocked(rm *room) {
	if _, ok := s.rooms[rm.id]; ok {
		return
	}
	s.rooms[rm.id] = rm
	if _, ok := s.directRooms[rm.peer]; rm.typ == RoomDirect && !ok {
		s.directRooms[rm.peer] = rm.id
	}
}

// directRoomLocked returns the direct room of the bot with personID, or a
// new one, not yet registered.
func (s *Sim) directRoomLocked(personID string) *room {
	if id, ok := s.directRooms[personID]; ok {
		return s.rooms[id]
	}
	return &room{id: newID(kindRoom), typ: RoomDirect, peer: personID}
}

// simError is an error with the HTTP status that reports it.
type simError struct {
	status int
	msg    string
}

func (e *simError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &simError{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusOf returns the HTTP status for err: its simError status, else 500.
func statusOf(err error) int {
	if se, ok := errors.AsType[*simError](err); ok {
		return se.status
	}
	return http.StatusInternalServerError
}

// Post makes a simulated person post a message: it is stored, then every
// matching webhook gets a signed delivery (asynchronously; Close waits for
// them). Errors name what is wrong with p.
func (s *Sim) Post(p Post) (webex.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	sender, ok := s.people[p.PersonID]
	if !ok {
		return webex.Message{}, errorf(http.StatusNotFound, "post: unknown person %q", p.PersonID)
	}
	fromBot := sender.ID == s.bot.ID
	if p.RoomType != "" && p.RoomType != RoomDirect && p.RoomType != RoomGroup {
		return webex.Message{}, errorf(http.StatusBadRequest, "post: roomType %q is neither direct nor group", p.RoomType)
	}
	if p.Text == "" {
		return webex.Message{}, errorf(http.StatusBadRequest, "post: text is empty")
	}

	var rm *room
	switch {
	case p.RoomID == "" && p.RoomType == RoomDirect:
		if fromBot {
			return webex.Message{}, errorf(http.StatusBadRequest, "post: the bot needs a roomId")
		}
		rm = s.directRoomLocked(sender.ID)
	case p.RoomID == "":
		rm = &room{id: newID(kindRoom), typ: RoomGroup}
	default:
		rm = s.rooms[p.RoomID]
		if rm == nil {
			if idKind(p.RoomID) != kindRoom {
				return webex.Message{}, errorf(http.StatusBadRequest, "post: %q is not a room id", p.RoomID)
			}
			typ := cmp.Or(p.RoomType, RoomGroup)
			if typ == RoomDirect && fromBot {
				return webex.Message{}, errorf(http.StatusBadRequest, "post: the bot cannot open direct room %q", p.RoomID)
			}
			rm = &room{id: p.RoomID, typ: typ}
			if typ == RoomDirect {
				rm.peer = sender.ID
			}
		}
		if p.RoomType != "" && p.RoomType != rm.typ {
			return webex.Message{}, errorf(http.StatusBadRequest, "post: room %q is %s, not %s", rm.id, rm.typ, p.RoomType)
		}
		if rm.typ == RoomDirect && !fromBot && rm.peer != sender.ID {
			return webex.Message{}, errorf(http.StatusBadRequest, "post: %s is not in direct room %q", sender.ID, rm.id)
		}
	}

	m := webex.Message{
		RoomID:   rm.id,
		RoomType: rm.typ,
		Text:     p.Text,
		ParentID: p.ParentID,
	}
	if p.MentionBot && rm.typ == RoomGroup && !fromBot {
		label := cmp.Or(p.MentionLabel, s.bot.DisplayName)
		m.Text = label + " " + p.Text
		m.HTML = `<p><spark-mention data-object-type="person" data-object-id="` + s.bot.ID + `">` +
			html.EscapeString(label) + `</spark-mention> ` + html.EscapeString(p.Text) + `</p>`
		m.MentionedPeople = []string{s.bot.ID}
	}
	if len(m.Text) > webex.MaxMessageBytes {
		return webex.Message{}, errorf(http.StatusBadRequest, "post: text is %d bytes, over the limit of %d", len(m.Text), webex.MaxMessageBytes)
	}
	if err := s.checkParentLocked(m.ParentID, rm.id); err != nil {
		return webex.Message{}, err
	}
	return s.createMessageLocked(rm, m, sender), nil
}

// checkParentLocked reports whether parentID may be the parent of a new
// message in roomID: empty, or an existing message of that room.
func (s *Sim) checkParentLocked(parentID, roomID string) error {
	if parentID == "" {
		return nil
	}
	parent, ok := s.messages[parentID]
	if !ok || parent.RoomID != roomID {
		return errorf(http.StatusBadRequest, "Invalid parentId: no message %q in this room.", parentID)
	}
	return nil
}

// createMessageLocked stores m as sent by sender in rm (registering rm
// when new), and starts the deliveries of its "created" event.
func (s *Sim) createMessageLocked(rm *room, m webex.Message, sender webex.Person) webex.Message {
	s.addRoomLocked(rm)
	m.ID = newID(kindMessage)
	m.PersonID = sender.ID
	if len(sender.Emails) > 0 {
		m.PersonEmail = sender.Emails[0]
	}
	m.Created = now()
	s.messages[m.ID] = m
	rm.msgs = append(rm.msgs, m.ID)
	s.dispatchLocked(m)
	return cloneMessage(m)
}

// Messages returns the stored messages of a room, oldest first, the bot's
// included.
func (s *Sim) Messages(roomID string) []webex.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	rm, ok := s.rooms[roomID]
	if !ok {
		return nil
	}
	out := make([]webex.Message, 0, len(rm.msgs))
	for _, id := range rm.msgs {
		out = append(out, cloneMessage(s.messages[id]))
	}
	return out
}

// Webhooks returns every registered webhook, with its current status, in
// creation order.
func (s *Sim) Webhooks() []webex.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhooksLocked()
}

func (s *Sim) webhooksLocked() []webex.Webhook {
	hooks := make([]*hook, 0, len(s.hooks))
	for _, h := range s.hooks {
		hooks = append(hooks, h)
	}
	slices.SortFunc(hooks, func(a, b *hook) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]webex.Webhook, len(hooks))
	for i, h := range hooks {
		out[i] = h.w
	}
	return out
}

// AddWebhook registers w directly, as if created through the API, filling
// an empty ID, Created, Status ("active"), OrgID, CreatedBy, AppID and
// OwnedBy ("creator"). A w.ID already registered replaces that webhook.
func (s *Sim) AddWebhook(w webex.Webhook) webex.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addWebhookLocked(w)
}

func (s *Sim) addWebhookLocked(w webex.Webhook) webex.Webhook {
	if w.ID == "" {
		w.ID = newID(kindWebhook)
	}
	if w.Created.IsZero() {
		w.Created = now()
	}
	w.Status = cmp.Or(w.Status, webex.WebhookActive)
	w.OrgID = cmp.Or(w.OrgID, s.bot.OrgID)
	w.CreatedBy = cmp.Or(w.CreatedBy, s.bot.ID)
	w.AppID = cmp.Or(w.AppID, s.appID)
	w.OwnedBy = cmp.Or(w.OwnedBy, "creator")
	if old, ok := s.hooks[w.ID]; ok {
		old.w = w
		old.failures = 0
		return w
	}
	s.hookSeq++
	s.hooks[w.ID] = &hook{w: w, seq: s.hookSeq}
	return w
}

// Deliveries returns how many webhook deliveries were attempted so far. A
// delivery counts when it is started, so right after Post returns the
// count includes that message's deliveries.
func (s *Sim) Deliveries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deliveries
}

// Close waits for the deliveries in flight. Messages created afterwards
// are stored but delivered to no webhook.
func (s *Sim) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
}

func clonePerson(p webex.Person) webex.Person {
	p.Emails = slices.Clone(p.Emails)
	return p
}

func cloneMessage(m webex.Message) webex.Message {
	m.Files = slices.Clone(m.Files)
	m.MentionedPeople = slices.Clone(m.MentionedPeople)
	m.MentionedGroups = slices.Clone(m.MentionedGroups)
	return m
}
