package webhooks

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// filterKeys are the webhook filter keys sync accepts for messages/created.
var filterKeys = []string{"roomId", "roomType", "mentionedPeople", "personId", "personEmail"}

// ValidateTargetURL reports why raw cannot be a webhook's target URL: it
// must be an absolute https URL with a host and no user information or
// fragment. Plain http is accepted only for localhost and loopback
// addresses, for development: Webex would send the deliveries, signed but
// readable, across the internet.
func ValidateTargetURL(raw string) error {
	if raw == "" {
		return errors.New("target URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("target URL %q does not parse: %w", raw, err)
	}
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return fmt.Errorf("target URL %q is not an absolute URL such as https://bot.example.com/webhooks/webex", raw)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("target URL %q: scheme %q is not https", raw, u.Scheme)
	case u.User != nil:
		// Webex would keep and show the credentials; the signature is
		// what proves a delivery, so they buy nothing.
		return fmt.Errorf("target URL %s://…@%s: user information is not allowed in a target URL", u.Scheme, u.Host)
	case u.Hostname() == "":
		return fmt.Errorf("target URL %q has no host", raw)
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fmt.Errorf("target URL %q has a fragment, which is never sent to the server", raw)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("target URL %q: http is allowed only for localhost and loopback addresses; use https", raw)
	}
	return nil
}

// isLoopback reports whether host names this machine: "localhost" or a
// loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateFilter reports what is wrong with a messages/created filter:
// key=value pairs joined with "&", each key known and given once, roomType
// direct or group, mentionedPeople me. Empty means every message the bot
// may see.
func validateFilter(filter string) error {
	if filter == "" {
		return nil
	}
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(filter, "&") {
		key, value, ok := strings.Cut(pair, "=")
		switch {
		case !ok || key == "" || value == "":
			return fmt.Errorf("filter %q: %q is not key=value", filter, pair)
		case !slices.Contains(filterKeys, key):
			return fmt.Errorf("filter %q: unknown key %q (known: %s)", filter, key, strings.Join(filterKeys, ", "))
		case seen[key]:
			return fmt.Errorf("filter %q: key %q is given twice", filter, key)
		case strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '=' }):
			return fmt.Errorf("filter %q: value of %q holds spaces, control characters or '='", filter, key)
		case key == "roomType" && value != "direct" && value != "group":
			return fmt.Errorf("filter %q: roomType must be direct or group, not %q", filter, value)
		case key == "mentionedPeople" && value != "me":
			return fmt.Errorf("filter %q: mentionedPeople must be me, not %q", filter, value)
		}
		seen[key] = true
	}
	return nil
}

// sameFilter reports whether two valid filters select the same messages:
// the same pairs in any order.
func sameFilter(a, b string) bool {
	pairs := func(f string) []string {
		if f == "" {
			return nil
		}
		p := strings.Split(f, "&")
		slices.Sort(p)
		return p
	}
	return slices.Equal(pairs(a), pairs(b))
}
