package webexsim

import (
	"bytes"
	"cmp"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
)

const (
	// maxRequestBytes bounds request bodies, far above any valid one.
	maxRequestBytes = 1 << 20
	// defaultListMessages and maxListMessagesMentioned are Webex's page
	// sizes for GET /messages.
	defaultListMessages      = 50
	maxListMessagesMentioned = 100
	maxListMessages          = 1000
	// maxListWebhooks is the default and largest page of GET /webhooks.
	maxListWebhooks = 100
)

// Error messages Webex gives.
const (
	msgNotFound     = "The requested resource could not be found."
	msgUnauthorized = "The request requires a valid access token set in the Authorization request header."
)

// webhookResources and webhookEvents are the values Webex's OpenAPI
// definition allows, plus "all" for the firehose.
var (
	webhookResources = []string{
		"attachmentActions", "dataSources", "memberships", "messages", "rooms", "meetings",
		"recordings", "convergedRecordings", "meetingParticipants", "meetingTranscripts",
		"telephony_calls", "telephony_conference", "telephony_mwi", "uc_counters",
		"serviceApp", "adminBatchJobs", firehose,
	}
	webhookEvents = []string{
		"created", "updated", "deleted", "started", "ended", "joined", "left", "migrated",
		"authorized", "deauthorized", "statusChanged", firehose,
	}
)

// routes builds the handler of the API and the admin API.
func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern, op string, h http.HandlerFunc) { mux.Handle(pattern, s.apiCall(op, h)) }
	api("GET /v1/people/me", OpGetMe, s.getMe)
	api("GET /v1/people/{id}", OpGetPerson, s.getPerson)
	api("GET /v1/messages/{id}", OpGetMessage, s.getMessage)
	api("GET /v1/messages", OpListMessages, s.listMessages)
	api("POST /v1/messages", OpCreateMessage, s.createMessage)
	api("GET /v1/webhooks", OpListWebhooks, s.listWebhooks)
	api("POST /v1/webhooks", OpCreateWebhook, s.createWebhook)
	api("GET /v1/webhooks/{id}", OpGetWebhook, s.getWebhook)
	api("PUT /v1/webhooks/{id}", OpUpdateWebhook, s.updateWebhook)
	api("DELETE /v1/webhooks/{id}", OpDeleteWebhook, s.deleteWebhook)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, msgNotFound)
	})
	s.adminRoutes(mux)
	return withTrackingID(mux)
}

// withTrackingID gives every answer a TrackingID header: the client's own
// when it sent a sane one, as Webex does, else a new one.
func withTrackingID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("TrackingID")
		if !saneTrackingID(id) {
			id = newTrackingID("ROUTER")
		}
		w.Header().Set("TrackingID", id)
		next.ServeHTTP(w, r)
	})
}

func saneTrackingID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("_-.:", c)) {
			return false
		}
	}
	return true
}

// apiCall wraps the handler of operation op: it counts the call, checks
// the bearer token, then plays op's fault.
func (s *Sim) apiCall(op string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.countCall(op)
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, msgUnauthorized)
			return
		}
		if s.applyFault(w, r, op) {
			return
		}
		h(w, r)
	})
}

// authorized reports whether r carries the bot's bearer token.
func (s *Sim) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.token)) == 1
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal encodes v as Webex does: "<", ">" and "&" (in html, in
// filters) stay as they are.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// writeError answers a Webex-shaped error.
func writeError(w http.ResponseWriter, status int, msg string) {
	id := w.Header().Get("TrackingID")
	if id == "" {
		id = newTrackingID("ROUTER")
		w.Header().Set("TrackingID", id)
	}
	writeJSON(w, status, webex.ErrorBody{
		Message:    msg,
		Errors:     []webex.ErrorDetail{{Description: msg}},
		TrackingID: id,
	})
}

// writeErr answers err with its status.
func writeErr(w http.ResponseWriter, err error) {
	writeError(w, statusOf(err), err.Error())
}

// decodeJSON reads r's JSON body into v; a Content-Type other than
// application/json is refused.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, "Unsupported media type %q: send application/json.", ct)
		}
	}
	return decodeBody(w, r, v)
}

// decodeBody reads r's body into v as JSON, whatever its Content-Type.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errorf(http.StatusRequestEntityTooLarge, "The request body is over %d bytes.", maxRequestBytes)
		}
		return errorf(http.StatusBadRequest, "The request body is not valid JSON: %v.", err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return errorf(http.StatusBadRequest, "The request body holds more than one JSON value.")
	}
	return nil
}

// baseURL is the scheme and host the client used, for Link headers.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Sim) getMe(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Bot())
}

func (s *Sim) getPerson(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p, ok := s.people[r.PathValue("id")]
	p = clonePerson(p)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Sim) getMessage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	m, ok := s.messages[r.PathValue("id")]
	m = cloneMessage(m)
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// items is the body of Webex's list answers.
type items[T any] struct {
	Items []T `json:"items"`
}

// listMessages answers GET /messages: a room's messages, newest first,
// paged with a Link to the messages before the page's last.
func (s *Sim) listMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, next, err := s.messagePage(q)
	if err != nil {
		writeErr(w, err)
		return
	}
	if next != "" {
		q.Del("before")
		q.Set("beforeMessage", next)
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, baseURL(r), r.URL.Path, q.Encode()))
	}
	writeJSON(w, http.StatusOK, items[webex.Message]{Items: page})
}

// messagePage returns the messages GET /messages answers for query q, and
// the id to page on from when more follow.
func (s *Sim) messagePage(q url.Values) ([]webex.Message, string, error) {
	roomID := q.Get("roomId")
	if roomID == "" {
		return nil, "", errorf(http.StatusBadRequest, "roomId is required.")
	}
	mentioned := false
	if v := q.Get("mentionedPeople"); v != "" {
		if v != "me" && v != s.Bot().ID {
			return nil, "", errorf(http.StatusBadRequest, "mentionedPeople: only me or the person ID of the current user may be specified.")
		}
		mentioned = true
	}
	limit := defaultListMessages
	if v := q.Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, "", errorf(http.StatusBadRequest, "max must be a positive integer.")
		}
		if mentioned && n > maxListMessagesMentioned {
			return nil, "", errorf(http.StatusBadRequest, "max cannot exceed %d when used with mentionedPeople.", maxListMessagesMentioned)
		}
		limit = min(n, maxListMessages)
	}
	var before time.Time
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, "", errorf(http.StatusBadRequest, "before must be an ISO 8601 date and time.")
		}
		before = t
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	rm, ok := s.rooms[roomID]
	if !ok {
		return nil, "", errorf(http.StatusNotFound, msgNotFound)
	}
	if rm.typ == RoomGroup && !mentioned {
		return nil, "", errorf(http.StatusForbidden, "Bots can only list the messages of a group room that mention them: add mentionedPeople=me.")
	}
	end := len(rm.msgs) // messages before this index
	if v := q.Get("beforeMessage"); v != "" {
		i := slices.Index(rm.msgs, v)
		if i < 0 {
			return nil, "", errorf(http.StatusBadRequest, "beforeMessage %q is not a message of this room.", v)
		}
		end = i
	}
	parentID := q.Get("parentId")
	var page []webex.Message
	for i := end - 1; i >= 0; i-- {
		m := s.messages[rm.msgs[i]]
		if (!before.IsZero() && !m.Created.Before(before)) ||
			(parentID != "" && m.ParentID != parentID) ||
			(mentioned && !slices.Contains(m.MentionedPeople, s.bot.ID)) {
			continue
		}
		if len(page) == limit {
			return page, page[len(page)-1].ID, nil
		}
		page = append(page, cloneMessage(m))
	}
	return page, "", nil
}

// createMessageRequest is the body of POST /messages, with the fields
// webex.MessageRequest leaves out.
type createMessageRequest struct {
	webex.MessageRequest
	Files       []string          `json:"files,omitempty"`
	Attachments []json.RawMessage `json:"attachments,omitempty"`
}

// createMessage answers POST /messages: the bot posts.
func (s *Sim) createMessage(w http.ResponseWriter, r *http.Request) {
	var req createMessageRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	m, err := s.botPost(req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// botPost validates and stores a message the bot sends.
func (s *Sim) botPost(req createMessageRequest) (webex.Message, error) {
	destinations := 0
	for _, v := range []string{req.RoomID, req.ToPersonID, req.ToPersonEmail} {
		if v != "" {
			destinations++
		}
	}
	switch {
	case destinations == 0:
		return webex.Message{}, errorf(http.StatusBadRequest, "One of roomId, toPersonId or toPersonEmail is required.")
	case destinations > 1:
		return webex.Message{}, errorf(http.StatusBadRequest, "Only one of roomId, toPersonId or toPersonEmail may be given.")
	case req.Text == "" && req.Markdown == "" && len(req.Files) == 0:
		return webex.Message{}, errorf(http.StatusBadRequest, "One of text, markdown or files is required.")
	case len(req.Text) > webex.MaxMessageBytes:
		return webex.Message{}, errorf(http.StatusBadRequest, "text is %d bytes, over the limit of %d bytes.", len(req.Text), webex.MaxMessageBytes)
	case len(req.Markdown) > webex.MaxMessageBytes:
		return webex.Message{}, errorf(http.StatusBadRequest, "markdown is %d bytes, over the limit of %d bytes.", len(req.Markdown), webex.MaxMessageBytes)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var rm *room
	switch {
	case req.RoomID != "":
		rm = s.rooms[req.RoomID]
		if rm == nil {
			return webex.Message{}, errorf(http.StatusNotFound, "Could not find a room with the provided ID.")
		}
	case req.ToPersonID != "":
		p, ok := s.people[req.ToPersonID]
		if !ok {
			return webex.Message{}, errorf(http.StatusNotFound, "Could not find a person with the provided toPersonId.")
		}
		if p.ID == s.bot.ID {
			return webex.Message{}, errorf(http.StatusBadRequest, "A bot cannot send a message to itself.")
		}
		rm = s.directRoomLocked(p.ID)
	default:
		id, ok := s.emails[strings.ToLower(req.ToPersonEmail)]
		if !ok {
			return webex.Message{}, errorf(http.StatusNotFound, "Could not find a person with the provided toPersonEmail.")
		}
		if id == s.bot.ID {
			return webex.Message{}, errorf(http.StatusBadRequest, "A bot cannot send a message to itself.")
		}
		rm = s.directRoomLocked(id)
	}
	if err := s.checkParentLocked(req.ParentID, rm.id); err != nil {
		return webex.Message{}, err
	}
	return s.createMessageLocked(rm, webex.Message{
		RoomID:   rm.id,
		RoomType: rm.typ,
		ParentID: req.ParentID,
		// Webex renders markdown into text; the emulator keeps it as is.
		Text:     cmp.Or(req.Text, req.Markdown),
		Markdown: req.Markdown,
		Files:    slices.Clone(req.Files),
	}, s.bot), nil
}

// listWebhooks answers GET /webhooks, paged by an opaque cursor.
func (s *Sim) listWebhooks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := maxListWebhooks
	if v := q.Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "max must be a positive integer.")
			return
		}
		limit = min(n, maxListWebhooks)
	}
	ownedBy := q.Get("ownedBy")
	if ownedBy != "" && ownedBy != "org" {
		writeError(w, http.StatusBadRequest, "ownedBy: the only allowed value is org.")
		return
	}
	var after int64
	if v := q.Get("cursor"); v != "" {
		n, err := decodeCursor(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "Invalid cursor.")
			return
		}
		after = n
	}

	s.mu.Lock()
	hooks := make([]*hook, 0, len(s.hooks))
	for _, h := range s.hooks {
		if h.seq > after && (ownedBy == "" || h.w.OwnedBy == ownedBy) {
			hooks = append(hooks, &hook{w: h.w, seq: h.seq})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(hooks, func(a, b *hook) int { return cmp.Compare(a.seq, b.seq) })

	page := make([]webex.Webhook, 0, min(limit, len(hooks)))
	for _, h := range hooks[:min(limit, len(hooks))] {
		page = append(page, h.w)
	}
	if len(hooks) > limit {
		link := fmt.Sprintf("%s%s?max=%d&cursor=%s", baseURL(r), r.URL.Path, limit, encodeCursor(hooks[limit-1].seq))
		if ownedBy != "" {
			link += "&ownedBy=" + url.QueryEscape(ownedBy)
		}
		w.Header().Set("Link", "<"+link+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, items[webex.Webhook]{Items: page})
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("webhooks:" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, err
	}
	n, ok := strings.CutPrefix(string(raw), "webhooks:")
	if !ok {
		return 0, errors.New("not a webhooks cursor")
	}
	return strconv.ParseInt(n, 10, 64)
}

// createWebhook answers POST /webhooks.
func (s *Sim) createWebhook(w http.ResponseWriter, r *http.Request) {
	var req webex.WebhookRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if err := validateWebhook(req); err != nil {
		writeErr(w, err)
		return
	}
	s.mu.Lock()
	wh := s.addWebhookLocked(webex.Webhook{
		Name:      req.Name,
		TargetURL: req.TargetURL,
		Resource:  req.Resource,
		Event:     req.Event,
		Filter:    req.Filter,
		Secret:    req.Secret,
		OwnedBy:   req.OwnedBy,
	})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, wh)
}

// validateWebhook reports what is wrong with a POST /webhooks body.
func validateWebhook(req webex.WebhookRequest) error {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"name", req.Name}, {"targetUrl", req.TargetURL}, {"resource", req.Resource}, {"event", req.Event},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return errorf(http.StatusBadRequest, "Missing required field(s): %s.", strings.Join(missing, ", "))
	}
	if err := validateTargetURL(req.TargetURL); err != nil {
		return err
	}
	if !slices.Contains(webhookResources, req.Resource) {
		return errorf(http.StatusBadRequest, "Unknown resource %q.", req.Resource)
	}
	if !slices.Contains(webhookEvents, req.Event) {
		return errorf(http.StatusBadRequest, "Unknown event %q.", req.Event)
	}
	if req.Resource == resourceMessages && !validFilter(req.Filter) {
		return errorf(http.StatusBadRequest, "Invalid filter %q: use key=value pairs joined with &, keys %s.", req.Filter, strings.Join(filterKeys, ", "))
	}
	if req.OwnedBy != "" && req.OwnedBy != "creator" && req.OwnedBy != "org" {
		return errorf(http.StatusBadRequest, "ownedBy must be creator or org.")
	}
	return nil
}

func validateTargetURL(target string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errorf(http.StatusBadRequest, "targetUrl %q is not an absolute http(s) URL.", target)
	}
	return nil
}

func (s *Sim) getWebhook(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h, ok := s.hooks[r.PathValue("id")]
	var wh webex.Webhook
	if ok {
		wh = h.w
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	writeJSON(w, http.StatusOK, wh)
}

// updateWebhook answers PUT /webhooks/{id}: name and targetUrl, and when
// given, secret and status change; nothing else does.
func (s *Sim) updateWebhook(w http.ResponseWriter, r *http.Request) {
	var req webex.WebhookUpdate
	if err := decodeJSON(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	var missing []string
	if req.Name == "" {
		missing = append(missing, "name")
	}
	if req.TargetURL == "" {
		missing = append(missing, "targetUrl")
	}
	if len(missing) > 0 {
		writeError(w, http.StatusBadRequest, "Missing required field(s): "+strings.Join(missing, ", ")+".")
		return
	}
	if err := validateTargetURL(req.TargetURL); err != nil {
		writeErr(w, err)
		return
	}
	if req.Status != "" && req.Status != webex.WebhookActive && req.Status != webex.WebhookInactive {
		writeError(w, http.StatusBadRequest, "status must be active or inactive.")
		return
	}

	s.mu.Lock()
	h, ok := s.hooks[r.PathValue("id")]
	var wh webex.Webhook
	if ok {
		h.w.Name = req.Name
		h.w.TargetURL = req.TargetURL
		if req.Secret != "" {
			h.w.Secret = req.Secret
		}
		if req.Status != "" {
			h.w.Status = req.Status
		}
		if h.w.Status == webex.WebhookActive {
			h.failures = 0
		}
		wh = h.w
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	writeJSON(w, http.StatusOK, wh)
}

func (s *Sim) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, ok := s.hooks[r.PathValue("id")]
	delete(s.hooks, r.PathValue("id"))
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
