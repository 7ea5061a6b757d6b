package authz

import (
	"errors"
	"fmt"
	"time"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/webex"
)

// Config is authz's own configuration.
type Config struct {
	Webex webex.Config

	// The policy: a sender is allowed when its email is on AllowedEmails,
	// or its email domain on AllowedDomains, or its own org on
	// AllowedOrgIDs; AllowedRoomIDs, when set, also requires the room.
	AllowedEmails  string `env:"AUTHZ_ALLOWED_EMAILS"`
	AllowedDomains string `env:"AUTHZ_ALLOWED_DOMAINS"`
	AllowedOrgIDs  string `env:"AUTHZ_ALLOWED_ORG_IDS"`
	AllowedRoomIDs string `env:"AUTHZ_ALLOWED_ROOM_IDS"`
	// AllowAll lets every sender through; it must be set explicitly, so an
	// empty policy cannot open the bot to everyone by mistake.
	AllowAll bool `env:"AUTHZ_ALLOW_ALL" envDefault:"false"`

	// PersonCacheTTL is how long a looked-up person is trusted.
	PersonCacheTTL time.Duration `env:"AUTHZ_PERSON_CACHE_TTL" envDefault:"15m"`
	// PersonCacheSize bounds the in-process cache, in people.
	PersonCacheSize int `env:"AUTHZ_PERSON_CACHE_SIZE" envDefault:"10000"`
	// Concurrency is how many events one replica decides at once.
	Concurrency int `env:"AUTHZ_CONCURRENCY" envDefault:"16"`
	// MaxDeliver is how many deliveries an event gets before it is
	// dead-lettered.
	MaxDeliver int `env:"AUTHZ_MAX_DELIVER" envDefault:"10"`

	// Worker tunes the consumer beyond the variables above (tests shorten
	// its waits); zero values take the worker's defaults.
	Worker bus.WorkerConfig
}

// Validate reports every problem at once, including an empty policy
// without AUTHZ_ALLOW_ALL.
func (c *Config) Validate() error {
	errs := []error{c.Webex.Validate()}
	if _, err := NewPolicy(c); err != nil {
		errs = append(errs, err)
	}
	if c.PersonCacheTTL < time.Second {
		errs = append(errs, fmt.Errorf("AUTHZ_PERSON_CACHE_TTL: must be at least 1s, got %s", c.PersonCacheTTL))
	}
	if c.PersonCacheSize <= 0 {
		errs = append(errs, errors.New("AUTHZ_PERSON_CACHE_SIZE: must be positive"))
	}
	if c.Concurrency <= 0 {
		errs = append(errs, errors.New("AUTHZ_CONCURRENCY: must be positive"))
	}
	if c.MaxDeliver <= 0 {
		errs = append(errs, errors.New("AUTHZ_MAX_DELIVER: must be positive"))
	}
	return errors.Join(errs...)
}

// workerConfig is the consumer's configuration.
func (c *Config) workerConfig() bus.WorkerConfig {
	w := c.Worker
	w.Stage = bus.ConsumerAuthz
	w.Stream = bus.StreamWebhooks
	w.Concurrency = c.Concurrency
	w.MaxDeliver = c.MaxDeliver
	return w
}
