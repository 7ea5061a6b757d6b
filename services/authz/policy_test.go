package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// directory is an in-memory People for the policy's table tests; it counts
// look-ups so the tests can tell when one was needed.
type directory struct {
	people  map[string]*webex.Person
	err     error
	lookups int
}

func (d *directory) Get(_ context.Context, id string) (*webex.Person, error) {
	d.lookups++
	if d.err != nil {
		return nil, d.err
	}
	p, ok := d.people[id]
	if !ok {
		return nil, ErrPersonNotFound
	}
	return p, nil
}

func TestPolicyDecide(t *testing.T) {
	t.Parallel()
	const bot = "BOT"
	people := map[string]*webex.Person{
		"alice":    {ID: "alice", Emails: []string{"Alice@Example.com"}, OrgID: "org-other", Type: "person"},
		"bob":      {ID: "bob", Emails: []string{"bob@partner.io"}, OrgID: "org-other", Type: "person"},
		"carol":    {ID: "carol", Emails: []string{"carol@elsewhere.net"}, OrgID: "org-ours", Type: "person"},
		"mallory":  {ID: "mallory", Emails: []string{"mallory@evil.test"}, OrgID: "org-evil", Type: "person"},
		"otherbot": {ID: "otherbot", Emails: []string{"helper@Example.com"}, OrgID: "org-ours", Type: "bot"},
	}
	base := Config{
		AllowedEmails:  " ALICE@example.COM ",
		AllowedDomains: "@Partner.IO",
		AllowedOrgIDs:  "org-ours",
	}
	msg := func(person, email, room string) webex.EventData {
		return webex.EventData{ID: "m", PersonID: person, PersonEmail: email, RoomID: room}
	}
	tests := []struct {
		name        string
		cfg         Config
		data        webex.EventData
		lookupErr   error
		want        Decision
		wantLookups int
		wantErr     bool
	}{
		{name: "email, any case", cfg: base, data: msg("alice", "alice@EXAMPLE.com", "r"), want: allowEmail, wantLookups: 1},
		{name: "domain, any case and leading @ in the list", cfg: base, data: msg("bob", "bob@partner.io", "r"), want: allowDomain, wantLookups: 1},
		{name: "sender's own org", cfg: base, data: msg("carol", "carol@elsewhere.net", "r"), want: allowOrg, wantLookups: 1},
		{name: "stranger", cfg: base, data: msg("mallory", "mallory@evil.test", "r"), want: denyNot, wantLookups: 1},
		{name: "stranger without an org rule needs no look-up",
			cfg: Config{AllowedEmails: "alice@example.com"}, data: msg("mallory", "mallory@evil.test", "r"), want: denyNot},
		{name: "sub-domain of an allowed domain is not the domain",
			cfg: Config{AllowedDomains: "partner.io"}, data: msg("x", "x@sub.partner.io", "r"), want: denyNot},
		{name: "payload email that the person record does not hold",
			cfg: Config{AllowedEmails: "alice@example.com"}, data: msg("mallory", "alice@example.com", "r"), want: denyNot, wantLookups: 1},
		{name: "unknown person", cfg: base, data: msg("ghost", "ghost@partner.io", "r"), want: denyNot, wantLookups: 1},
		{name: "the bot itself, no look-up", cfg: base, data: msg(bot, "echobot@webex.bot", "r"), want: ignoreSelf},
		{name: "another bot, even on the lists", cfg: base, data: msg("otherbot", "helper@example.com", "r"), want: ignoreBot, wantLookups: 1},
		{name: "room list narrows: other room", cfg: Config{AllowedEmails: "alice@example.com", AllowedRoomIDs: "r1,r2"},
			data: msg("alice", "alice@example.com", "r3"), want: denyRoom},
		{name: "room list narrows: listed room", cfg: Config{AllowedEmails: "alice@example.com", AllowedRoomIDs: "r1,r2"},
			data: msg("alice", "alice@example.com", "r2"), want: allowEmail, wantLookups: 1},
		{name: "allow all still drops bots", cfg: Config{AllowAll: true}, data: msg("otherbot", "helper@example.com", "r"), want: ignoreBot, wantLookups: 1},
		{name: "allow all", cfg: Config{AllowAll: true}, data: msg("mallory", "mallory@evil.test", "r"), want: allowAll, wantLookups: 1},
		{name: "no sender", cfg: base, data: msg("", "", "r"), want: denyNot},
		{name: "look-up failure decides nothing", cfg: base, data: msg("carol", "carol@elsewhere.net", "r"),
			lookupErr: errors.New("503"), wantErr: true, wantLookups: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewPolicy(&tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			dir := &directory{people: people, err: tc.lookupErr}
			got, err := p.Decide(context.Background(), dir, bot, tc.data)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("decision = %+v, want %+v", got, tc.want)
			}
			if err != nil && got.Decision == decisionAllow {
				t.Error("allowed on a failed look-up")
			}
			if dir.lookups != tc.wantLookups {
				t.Errorf("look-ups = %d, want %d", dir.lookups, tc.wantLookups)
			}
		})
	}
}

func TestEmptyPolicyRefused(t *testing.T) {
	t.Parallel()
	cfg := Config{AllowedEmails: " , ", Webex: webex.Config{Token: "t", APIURL: "https://webexapis.com/v1", Timeout: 1}}
	cfg.PersonCacheTTL, cfg.PersonCacheSize, cfg.Concurrency, cfg.MaxDeliver = 60e9, 1, 1, 1
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "AUTHZ_ALLOW_ALL") {
		t.Fatalf("empty policy: err = %v, want a refusal naming AUTHZ_ALLOW_ALL", err)
	}
	cfg.AllowAll = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("explicit allow-all refused: %v", err)
	}
}

func TestPolicySummaryHidesContents(t *testing.T) {
	t.Parallel()
	p, err := NewPolicy(&Config{AllowedEmails: "alice@example.com,bob@example.com", AllowedOrgIDs: "secret-org"})
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintln(p.Summary()...)
	if strings.Contains(s, "alice") || strings.Contains(s, "secret-org") {
		t.Fatalf("summary shows list contents: %s", s)
	}
	if !strings.Contains(s, "emails 2") || !strings.Contains(s, "org_ids 1") {
		t.Fatalf("summary lacks sizes: %s", s)
	}
}
