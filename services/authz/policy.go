package authz

import (
	"context"
	"errors"
	"strings"

	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
)

// Decisions, the values of the decision label.
const (
	decisionAllow  = "allow"
	decisionDeny   = "deny"
	decisionIgnore = "ignore"
)

// Reasons, the values of the reason label.
const (
	reasonEmail      = "email"
	reasonDomain     = "domain"
	reasonOrg        = "org"
	reasonAllowAll   = "allow_all"
	reasonNotAllowed = "not_allowed"
	reasonRoom       = "room"
	reasonSelf       = "self"
	reasonBot        = "bot"
	reasonNotMessage = "not_a_message"
)

// Decision is what authz decided about one message.
type Decision struct {
	Decision string // allow, deny or ignore
	Reason   string
	// Allow is the record's reason when Decision is allow.
	Allow sparkguardv1.AllowReason
}

var (
	allowEmail  = Decision{decisionAllow, reasonEmail, sparkguardv1.AllowReason_ALLOW_REASON_EMAIL}
	allowDomain = Decision{decisionAllow, reasonDomain, sparkguardv1.AllowReason_ALLOW_REASON_DOMAIN}
	allowOrg    = Decision{decisionAllow, reasonOrg, sparkguardv1.AllowReason_ALLOW_REASON_ORG}
	allowAll    = Decision{decisionAllow, reasonAllowAll, sparkguardv1.AllowReason_ALLOW_REASON_ALLOW_ALL}
	denyNot     = Decision{Decision: decisionDeny, Reason: reasonNotAllowed}
	denyRoom    = Decision{Decision: decisionDeny, Reason: reasonRoom}
	ignoreSelf  = Decision{Decision: decisionIgnore, Reason: reasonSelf}
	ignoreBot   = Decision{Decision: decisionIgnore, Reason: reasonBot}
	ignoreOther = Decision{Decision: decisionIgnore, Reason: reasonNotMessage}
)

// People finds a person by id; ErrPersonNotFound when Webex has none.
type People interface {
	Get(ctx context.Context, personID string) (*webex.Person, error)
}

// ErrPersonNotFound is a person Webex does not know (404).
var ErrPersonNotFound = errors.New("person not found")

// Policy decides who may reach the bot.
type Policy struct {
	emails, domains, orgs, rooms map[string]bool
	allowAll                     bool
}

// NewPolicy builds the policy of cfg. With every list empty it refuses,
// unless AUTHZ_ALLOW_ALL is set: an empty policy never means "everyone".
func NewPolicy(cfg *Config) (*Policy, error) {
	p := &Policy{
		emails:   set(cfg.AllowedEmails, strings.ToLower),
		domains:  set(cfg.AllowedDomains, func(s string) string { return strings.TrimPrefix(strings.ToLower(s), "@") }),
		orgs:     set(cfg.AllowedOrgIDs, nil),
		rooms:    set(cfg.AllowedRoomIDs, nil),
		allowAll: cfg.AllowAll,
	}
	if !p.allowAll && len(p.emails)+len(p.domains)+len(p.orgs) == 0 {
		return nil, errors.New("AUTHZ_ALLOWED_EMAILS, AUTHZ_ALLOWED_DOMAINS, AUTHZ_ALLOWED_ORG_IDS: all empty: " +
			"set at least one, or AUTHZ_ALLOW_ALL=true to let everyone through on purpose")
	}
	return p, nil
}

func set(list string, norm func(string) string) map[string]bool {
	m := map[string]bool{}
	for _, item := range config.List(list) {
		if norm != nil {
			item = norm(item)
		}
		m[item] = true
	}
	return m
}

// Summary describes the policy in force by the sizes of its lists, never
// their contents, for the start-up log line.
func (p *Policy) Summary() []any {
	return []any{"allow_all", p.allowAll, "emails", len(p.emails), "domains", len(p.domains),
		"org_ids", len(p.orgs), "room_ids", len(p.rooms)}
}

// Decide applies the policy to one created message, sent by personID with
// the (signed) payload email in room. The bot's own messages and other bots
// are ignored. A person is looked up only when the decision needs it: to
// tell a bot from a person before allowing anyone, and for the org rule.
// Any look-up error decides nothing and is returned.
func (p *Policy) Decide(ctx context.Context, people People, botID string, data webex.EventData) (Decision, error) {
	if data.PersonID == "" {
		return denyNot, nil
	}
	if data.PersonID == botID {
		return ignoreSelf, nil
	}
	if len(p.rooms) > 0 && !p.rooms[data.RoomID] {
		return denyRoom, nil
	}
	// Without a list that the payload's email could match, and without an
	// org rule, no look-up can allow the sender.
	if !p.allowAll && len(p.orgs) == 0 && !p.emailAllowed(data.PersonEmail) && p.domainAllowed(data.PersonEmail) == "" {
		return denyNot, nil
	}
	person, err := people.Get(ctx, data.PersonID)
	if errors.Is(err, ErrPersonNotFound) {
		return denyNot, nil
	}
	if err != nil {
		return Decision{}, err
	}
	if person.Type == webex.PersonTypeBot {
		return ignoreBot, nil
	}
	if p.allowAll {
		return allowAll, nil
	}
	// The person's own record is authoritative for the rules.
	for _, email := range person.Emails {
		if p.emailAllowed(email) {
			return allowEmail, nil
		}
	}
	for _, email := range person.Emails {
		if p.domainAllowed(email) != "" {
			return allowDomain, nil
		}
	}
	if person.OrgID != "" && p.orgs[person.OrgID] {
		return allowOrg, nil
	}
	return denyNot, nil
}

func (p *Policy) emailAllowed(email string) bool {
	return email != "" && p.emails[strings.ToLower(email)]
}

// domainAllowed returns the allowed domain of email, or "".
func (p *Policy) domainAllowed(email string) string {
	_, domain, ok := strings.Cut(strings.ToLower(email), "@")
	if !ok || domain == "" || !p.domains[domain] {
		return ""
	}
	return domain
}
