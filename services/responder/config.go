package responder

import (
	"errors"
	"fmt"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/webex"
)

// maxConcurrency bounds RESPONDER_CONCURRENCY: the shared consumer lets at
// most 1000 messages be unacknowledged at once across every replica.
const maxConcurrency = 1000

// Config is the responder's own configuration.
type Config struct {
	// Webex is the REST API the responder calls as the bot
	// (WEBEX_API_URL, WEBEX_ACCESS_TOKEN, WEBEX_API_TIMEOUT).
	Webex webex.Config
	// Concurrency is how many messages one replica handles at once, so that
	// a slow Webex API does not make a replica answer one message at a time.
	Concurrency int `env:"RESPONDER_CONCURRENCY" envDefault:"16"`
	// MaxDeliver is how many deliveries a failing message gets before it is
	// dead-lettered.
	MaxDeliver int `env:"RESPONDER_MAX_DELIVER" envDefault:"10"`
	// Worker tunes the consumer beyond the variables above (AckWait,
	// HandleTimeout, backoff); it is not read from the environment, and its
	// zero value gives the platform's defaults. Its Stage, Stream,
	// Concurrency and MaxDeliver are set by the responder.
	Worker bus.WorkerConfig
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	errs := []error{c.Webex.Validate()}
	if c.Concurrency < 1 || c.Concurrency > maxConcurrency {
		errs = append(errs, fmt.Errorf("RESPONDER_CONCURRENCY: must be between 1 and %d, got %d", maxConcurrency, c.Concurrency))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("RESPONDER_MAX_DELIVER: must be at least 1, got %d", c.MaxDeliver))
	}
	return errors.Join(errs...)
}

// workerConfig is the consumer configuration the responder runs with.
func (c *Config) workerConfig() bus.WorkerConfig {
	w := c.Worker
	w.Stage = bus.ConsumerResponder
	w.Stream = bus.StreamAuthorized
	w.Concurrency = c.Concurrency
	w.MaxDeliver = c.MaxDeliver
	return w
}
