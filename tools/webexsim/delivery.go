package webexsim

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// Webhook resources and events that match a message being created.
const (
	resourceMessages = "messages"
	eventCreated     = "created"
	firehose         = "all"
)

// filterKeys are the webhook filter keys the emulator understands for the
// messages resource.
var filterKeys = []string{"roomId", "roomType", "personId", "personEmail", "mentionedPeople", "hasFiles"}

// dispatchLocked starts one delivery of m's "created" event to every
// webhook that should get it.
func (s *Sim) dispatchLocked(m webex.Message) {
	// In group rooms Webex tells a bot only of messages that mention it
	// (and of its own).
	if m.RoomType == RoomGroup && m.PersonID != s.bot.ID && !slices.Contains(m.MentionedPeople, s.bot.ID) {
		return
	}
	for _, w := range s.webhooksLocked() {
		if w.Status != webex.WebhookActive ||
			(w.Resource != resourceMessages && w.Resource != firehose) ||
			(w.Event != eventCreated && w.Event != firehose) ||
			!s.matchFilter(w.Filter, m) {
			continue
		}
		if s.closed {
			s.log.Debug("webexsim: closed, delivery skipped", "webhook", w.ID, "message", m.ID)
			continue
		}
		body, err := marshal(webex.Event{
			ID:        w.ID,
			Name:      w.Name,
			TargetURL: w.TargetURL,
			Resource:  resourceMessages,
			Event:     eventCreated,
			Filter:    w.Filter,
			OrgID:     w.OrgID,
			CreatedBy: w.CreatedBy,
			AppID:     w.AppID,
			OwnedBy:   w.OwnedBy,
			Status:    w.Status,
			Created:   w.Created,
			ActorID:   m.PersonID,
			Data: webex.EventData{
				ID:              m.ID,
				RoomID:          m.RoomID,
				RoomType:        m.RoomType,
				PersonID:        m.PersonID,
				PersonEmail:     m.PersonEmail,
				MentionedPeople: slices.Clone(m.MentionedPeople),
				Created:         m.Created,
			},
		})
		if err != nil { // cannot happen: an event holds only strings and times
			s.log.Error("webexsim: delivery skipped", "webhook", w.ID, "err", err)
			continue
		}
		s.deliveries++
		s.wg.Go(func() { s.deliver(w, body) })
	}
}

// deliver POSTs one event to w's target and records whether it worked.
func (s *Sim) deliver(w webex.Webhook, body []byte) {
	err := s.post(w, body)

	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[w.ID]
	if !ok {
		return // deleted meanwhile
	}
	if err == nil {
		h.failures = 0
		s.log.Debug("webexsim: delivered", "webhook", w.ID, "target", w.TargetURL)
		return
	}
	h.failures++
	s.log.Warn("webexsim: delivery failed", "webhook", w.ID, "target", w.TargetURL, "failures", h.failures, "err", err)
	if h.failures >= s.failLimit && h.w.Status == webex.WebhookActive {
		h.w.Status = webex.WebhookInactive
		s.log.Warn("webexsim: webhook deactivated", "webhook", w.ID, "failures", h.failures)
	}
}

// post sends one delivery; any answer but 2xx is an error.
func (s *Sim) post(w webex.Webhook, body []byte) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, w.TargetURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "webexsim")
	req.Header.Set("TrackingID", newTrackingID("WEBHOOK"))
	if w.Secret != "" {
		req.Header.Set(webex.SignatureHeader, webex.Sign([]byte(w.Secret), body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &simError{status: resp.StatusCode, msg: "target answered " + resp.Status}
	}
	return nil
}

// matchFilter reports whether m passes a webhook filter: "key=value"
// pairs joined with "&", all of which must match. An unknown key never
// matches.
func (s *Sim) matchFilter(filter string, m webex.Message) bool {
	if filter == "" {
		return true
	}
	for pair := range strings.SplitSeq(filter, "&") {
		key, value, _ := strings.Cut(pair, "=")
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		var ok bool
		switch key {
		case "roomId":
			ok = value == m.RoomID
		case "roomType":
			ok = value == m.RoomType
		case "personId":
			ok = value == m.PersonID
		case "personEmail":
			ok = strings.EqualFold(value, m.PersonEmail)
		case "mentionedPeople":
			for id := range strings.SplitSeq(value, ",") {
				if id == "me" {
					id = s.bot.ID
				}
				ok = ok || slices.Contains(m.MentionedPeople, id)
			}
		case "hasFiles":
			ok = (value == "true") == (len(m.Files) > 0)
		}
		if !ok {
			return false
		}
	}
	return true
}

// validFilter reports whether filter is well formed for the messages
// resource: known keys, each with a value.
func validFilter(filter string) bool {
	if filter == "" {
		return true
	}
	for pair := range strings.SplitSeq(filter, "&") {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || value == "" || !slices.Contains(filterKeys, key) {
			return false
		}
		if key == "roomType" && value != RoomDirect && value != RoomGroup {
			return false
		}
		if key == "hasFiles" && value != "true" && value != "false" {
			return false
		}
	}
	return true
}
