package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// DefaultName is the webhook name that marks this deployment's webhook
// when Spec.Name is empty.
const DefaultName = "sparkguard"

// The only resource and event sparkguard handles.
const (
	resourceMessages = "messages"
	eventCreated     = "created"
)

// The actions Sync reports in Result.Action.
const (
	ActionCreated     = "created"     // there was no webhook of this deployment
	ActionUnchanged   = "unchanged"   // the kept webhook already matched; no write for it
	ActionUpdated     = "updated"     // target URL or secret changed in place (and reactivated if it was inactive)
	ActionReplaced    = "replaced"    // filter, resource or event differed: a new one was created, the old deleted
	ActionReactivated = "reactivated" // only its status changed, from inactive to active
)

const (
	// maxRateLimitRetries bounds how often one call is retried after a
	// 429 (or 423) before Sync gives up.
	maxRateLimitRetries = 5
	// minRateLimitWait is the wait after a 429 that named no Retry-After.
	minRateLimitWait = time.Second
	// maxRateLimitWait is the longest Retry-After waited out; beyond it a
	// command line tool should report rather than hang.
	maxRateLimitWait = 5 * time.Minute
)

// Spec is the webhook this deployment needs Webex to hold.
type Spec struct {
	// Name recognises the deployment's webhooks among the token's others;
	// default DefaultName. Webhooks with other names are never touched.
	Name string
	// TargetURL is where Webex delivers: see ValidateTargetURL.
	TargetURL string
	// Filter narrows the deliveries: roomId=…, roomType=direct|group,
	// mentionedPeople=me, personId=…, personEmail=…, joined with "&";
	// empty for every message the bot may see.
	Filter string
	// Secret signs the deliveries; it must be one the ingress accepts
	// (the first of WEBEX_WEBHOOK_SECRETS).
	Secret string
}

// Result is what Sync did.
type Result struct {
	// Action is one of ActionCreated, ActionUnchanged, ActionUpdated,
	// ActionReplaced and ActionReactivated.
	Action string
	// Webhook is the webhook Webex now holds for this deployment, with its
	// Secret blanked so that printing a Result cannot leak it.
	Webhook webex.Webhook
	// Removed counts the extra webhooks of this deployment deleted
	// (duplicates), not the one a replacement supersedes.
	Removed int
}

// Sync makes Webex hold exactly one webhook named spec.Name: for
// messages/created, at spec.TargetURL, with spec.Filter and spec.Secret,
// active. It is idempotent: when Webex already holds that, it makes no
// write call. A different target URL or secret is changed in place and an
// inactive webhook reactivated; a different filter (which Webex cannot
// change) is replaced by creating the new webhook before deleting the old,
// so deliveries never stop. Extra webhooks of this name are deleted;
// webhooks with other names are never touched. The spec is checked before
// any call. A 429 is waited out (Retry-After, at least a second) and the
// call retried a few times; any other error stops Sync, and running it
// again continues from where it stopped. log may be nil; it never receives
// the secret.
func Sync(ctx context.Context, client *webex.Client, spec Spec, log *slog.Logger) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if spec.Name == "" {
		spec.Name = DefaultName
	}
	if err := checkSpec(spec); err != nil {
		return Result{}, fmt.Errorf("check spec: %w", err)
	}

	all, err := withRetry(ctx, log, "list webhooks", func(ctx context.Context) ([]webex.Webhook, error) {
		return client.Webhooks(ctx)
	})
	if err != nil {
		return Result{}, fmt.Errorf("list webhooks: %w", err)
	}
	var ours []webex.Webhook
	for _, w := range all {
		if w.Name == spec.Name {
			ours = append(ours, w)
		}
	}

	keep, ok := pickKeeper(ours, spec)
	if !ok {
		return replace(ctx, client, spec, ours, log)
	}

	res := Result{Action: ActionUnchanged, Webhook: keep}
	changed := keep.TargetURL != spec.TargetURL || (keep.Secret != "" && keep.Secret != spec.Secret)
	inactive := keep.Status != "" && keep.Status != webex.WebhookActive
	if changed || inactive {
		res.Action = ActionReactivated
		if changed {
			res.Action = ActionUpdated
		}
		updated, err := withRetry(ctx, log, "update webhook", func(ctx context.Context) (*webex.Webhook, error) {
			return client.UpdateWebhook(ctx, keep.ID, webex.WebhookUpdate{
				Name: spec.Name, TargetURL: spec.TargetURL, Secret: spec.Secret, Status: webex.WebhookActive,
			})
		})
		if err != nil {
			return Result{}, fmt.Errorf("update webhook %s: %w", keep.ID, err)
		}
		res.Webhook = *updated
		log.Info("webhook updated", "action", res.Action, "id", updated.ID, "name", spec.Name, "target_url", updated.TargetURL,
			"target_url_changed", keep.TargetURL != spec.TargetURL, "reactivated", inactive)
	}
	res.Webhook.Secret = ""

	for _, w := range ours {
		if w.ID == keep.ID {
			continue
		}
		if err := deleteWebhook(ctx, client, w, log, "duplicate"); err != nil {
			return res, fmt.Errorf("delete duplicate webhook %s: %w", w.ID, err)
		}
		res.Removed++
	}
	return res, nil
}

// checkSpec reports what is wrong with spec, before any call.
func checkSpec(spec Spec) error {
	var errs []error
	if strings.TrimSpace(spec.Name) != spec.Name {
		errs = append(errs, fmt.Errorf("name %q has leading or trailing spaces", spec.Name))
	}
	if err := ValidateTargetURL(spec.TargetURL); err != nil {
		errs = append(errs, err)
	}
	if err := validateFilter(spec.Filter); err != nil {
		errs = append(errs, err)
	}
	if spec.Secret == "" {
		errs = append(errs, errors.New("secret is empty: the ingress accepts only signed deliveries"))
	}
	return errors.Join(errs...)
}

// pickKeeper chooses, among the deployment's webhooks, the one to keep and
// fix in place: one whose resource, event and filter (which Webex cannot
// change) already match, preferring one that is active and needs the
// fewest changes, then the oldest. It reports false when none can be kept.
func pickKeeper(ours []webex.Webhook, spec Spec) (webex.Webhook, bool) {
	var best webex.Webhook
	bestScore := -1
	for _, w := range ours {
		if w.Resource != resourceMessages || w.Event != eventCreated || !sameFilter(w.Filter, spec.Filter) {
			continue
		}
		score := 0
		if w.Status == "" || w.Status == webex.WebhookActive {
			score += 4
		}
		if w.TargetURL == spec.TargetURL {
			score += 2
		}
		if w.Secret == "" || w.Secret == spec.Secret {
			score++
		}
		// Strictly greater: on a tie the first listed (oldest) stays.
		if score > bestScore {
			best, bestScore = w, score
		}
	}
	return best, bestScore >= 0
}

// replace creates the webhook spec describes and only then deletes the
// deployment's old ones, so that deliveries never stop.
func replace(ctx context.Context, client *webex.Client, spec Spec, old []webex.Webhook, log *slog.Logger) (Result, error) {
	created, err := withRetry(ctx, log, "create webhook", func(ctx context.Context) (*webex.Webhook, error) {
		return client.CreateWebhook(ctx, webex.WebhookRequest{
			Name: spec.Name, TargetURL: spec.TargetURL, Resource: resourceMessages, Event: eventCreated,
			Filter: spec.Filter, Secret: spec.Secret,
		})
	})
	if err != nil {
		return Result{}, fmt.Errorf("create webhook: %w", err)
	}
	res := Result{Action: ActionCreated, Webhook: *created}
	res.Webhook.Secret = ""
	if len(old) > 0 {
		res.Action = ActionReplaced
	}
	log.Info("webhook created", "id", created.ID, "name", spec.Name, "target_url", created.TargetURL,
		"filter", created.Filter, "replacing", len(old))

	for i, w := range old {
		reason := "replaced"
		if i > 0 {
			reason = "duplicate"
		}
		if err := deleteWebhook(ctx, client, w, log, reason); err != nil {
			return res, fmt.Errorf("delete %s webhook %s: %w", reason, w.ID, err)
		}
		if i > 0 {
			res.Removed++
		}
	}
	return res, nil
}

// deleteWebhook deletes w; one already gone (another sync got there
// first) counts as deleted.
func deleteWebhook(ctx context.Context, client *webex.Client, w webex.Webhook, log *slog.Logger, reason string) error {
	_, err := withRetry(ctx, log, "delete webhook", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, client.DeleteWebhook(ctx, w.ID)
	})
	if err != nil && !webex.IsNotFound(err) {
		return err
	}
	log.Info("webhook deleted", "id", w.ID, "name", w.Name, "target_url", w.TargetURL, "reason", reason)
	return nil
}

// withRetry runs call, and again after each 429 (or 423) answer once its
// Retry-After has passed, at most maxRateLimitRetries times. Any other
// error, or the end of ctx, ends it.
func withRetry[T any](ctx context.Context, log *slog.Logger, step string, call func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		v, err := call(ctx)
		var apiErr *webex.APIError
		if err == nil || !errors.As(err, &apiErr) ||
			(apiErr.Status != http.StatusTooManyRequests && apiErr.Status != http.StatusLocked) {
			return v, err
		}
		if attempt == maxRateLimitRetries {
			return v, fmt.Errorf("still rate limited after %d retries: %w", attempt, err)
		}
		wait := max(apiErr.RetryAfter(), minRateLimitWait)
		if wait > maxRateLimitWait {
			return v, fmt.Errorf("rate limited for %v, longer than %v: %w", wait, maxRateLimitWait, err)
		}
		log.Warn("Webex rate limit: waiting before retrying", "step", step, "wait", wait, "retry", attempt+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, fmt.Errorf("wait out rate limit: %w (after %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
