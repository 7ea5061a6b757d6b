package responder

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
)

// The values of a record in the replies bucket.
const (
	// replyPending is a replica's claim: it is posting the reply now. The
	// key then carries a TTL (the claim TTL), so a dead replica's claim
	// ends by itself.
	replyPending = "pending"
	// replySent records that Webex accepted the reply; it lives for the
	// bucket's TTL.
	replySent = "sent"
)

// kvTimeout bounds the bucket operations that follow a post: they must run
// even when the handling's own time is up, since the post cannot be undone.
const kvTimeout = 5 * time.Second

// inFlightError says that another replica holds the claim on a reply. The
// delivery is retried once that replica must have finished (it is bounded
// by the ack wait), to find "sent" or no claim; if the claim is still there
// then, its replica died, and the retry after that waits for it to expire.
type inFlightError struct{ wait time.Duration }

func (e *inFlightError) Error() string {
	return "another replica is posting the reply to this message now"
}

// RetryAfter is when the claim's owner has finished, or its claim expired;
// the worker waits at least this long before the next delivery.
func (e *inFlightError) RetryAfter() time.Duration { return e.wait }

// inFlight is the error for a claim created at claimed.
func (r *Responder) inFlight(claimed time.Time) error {
	age := time.Since(claimed)
	wait := r.ackWait - age
	if wait <= 0 {
		wait = r.claimTTL - age
	}
	return &inFlightError{wait: min(max(wait, 0), r.claimTTL)}
}

// replyKey is the replies bucket's key for a message: the hex SHA-256 of its
// id, since raw Webex ids may hold '+', '/' and '=' that keys do not allow.
func replyKey(messageID string) string {
	sum := sha256.Sum256([]byte(messageID))
	return hex.EncodeToString(sum[:])
}

// handle answers one AuthorizedMessage. Its error tells the worker what to
// do: permanent (an undecodable record, most Webex 4xx) is dead-lettered,
// anything else is retried after a backoff, and after Retry-After for a 429.
func (r *Responder) handle(ctx context.Context, msg jetstream.Msg) error {
	var rec sparkguardv1.AuthorizedMessage
	if err := proto.Unmarshal(msg.Data(), &rec); err != nil {
		return bus.Permanent(fmt.Errorf("decode authorized message: %w", err))
	}
	if rec.GetMessageId() == "" {
		return bus.Permanent(errors.New("decode authorized message: no message id"))
	}
	log := r.log.With("request_id", cmp.Or(msg.Headers().Get(bus.HeaderRequestID), rec.GetRequestId()),
		"message_id", rec.GetMessageId())
	return r.reply(ctx, log, &rec)
}

// reply posts the echo of rec's message unless it was posted already:
//
//  1. a "sent" record means it was: nothing to do;
//  2. a "pending" record, created atomically with a TTL, claims the post
//     for this replica; another replica's claim means retry later;
//  3. the post; when it fails the claim is dropped, so that the retry can
//     claim again;
//  4. the "sent" record.
//
// A crash between Webex accepting the post and step 4 leaves the claim,
// which expires after the claim TTL; a redelivery then posts again. Webex
// has no idempotency key on POST /messages that could close this window.
func (r *Responder) reply(ctx context.Context, log *slog.Logger, rec *sparkguardv1.AuthorizedMessage) error {
	b := r.bot.Load()
	if b == nil {
		// Run learns the bot before it consumes; this is a guard only.
		return errors.New("reply: bot not known yet")
	}
	key := replyKey(rec.GetMessageId())

	state, claimed, err := r.replyState(ctx, key)
	if err != nil {
		return fmt.Errorf("check replies bucket: %w", err)
	}
	switch state {
	case replySent:
		return r.duplicate(log)
	case replyPending:
		return fmt.Errorf("claim reply: %w", r.inFlight(claimed))
	}

	orig, err := r.webex.Message(ctx, rec.GetMessageId())
	if err != nil {
		return fmt.Errorf("fetch message: %w", err)
	}
	req := webex.MessageRequest{
		RoomID:   cmp.Or(orig.RoomID, rec.GetRoomId()),
		ParentID: orig.ParentID,
		// Plain text only: markdown would let a sender make the bot post
		// mentions and formatting it did not intend.
		Text: b.echoText(orig),
	}

	rev, err := r.kv.Create(ctx, key, []byte(replyPending), jetstream.KeyTTL(r.claimTTL))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("claim reply: %w", err)
		}
		// Another replica got there first: it has posted, is posting, or
		// has just given up (then no claim is left and a retry may claim).
		state, claimed, serr := r.replyState(ctx, key)
		switch {
		case serr != nil:
			return fmt.Errorf("claim reply: %w", errors.Join(err, serr))
		case state == replySent:
			return r.duplicate(log)
		case state == replyPending:
			return fmt.Errorf("claim reply: %w", r.inFlight(claimed))
		}
		return fmt.Errorf("claim reply: %w", err)
	}

	posted, err := r.webex.CreateMessage(ctx, req)
	if err != nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), kvTimeout)
		defer cancel()
		// Only our own claim goes; should it be gone already, the next try
		// claims anew anyway.
		if derr := r.kv.Delete(kctx, key, jetstream.LastRevision(rev)); derr != nil {
			log.Warn("release reply claim", "error", derr, "claim_ttl", r.claimTTL)
		}
		return fmt.Errorf("post reply: %w", err)
	}
	r.metrics.replies.WithLabelValues(outcomeSent).Inc()
	var latency time.Duration
	if rec.GetReceivedAt() != nil {
		latency = time.Since(rec.GetReceivedAt().AsTime())
		r.metrics.latency.Observe(max(latency, 0).Seconds())
	}

	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), kvTimeout)
	defer cancel()
	if _, err := r.kv.Put(kctx, key, []byte(replySent)); err != nil {
		// The reply is out: asking for a retry could only post it again.
		// The claim still guards the message until it expires.
		log.Error("reply posted but not recorded; a redelivery after the claim expires would post it again",
			"error", err, "reply_id", posted.ID, "claim_ttl", r.claimTTL)
		return nil
	}
	log.Info("reply sent", "reply_id", posted.ID, "room_type", orig.RoomType,
		"in_thread", req.ParentID != "", "pipeline_latency", latency)
	return nil
}

// duplicate settles a message that was answered already.
func (r *Responder) duplicate(log *slog.Logger) error {
	r.metrics.replies.WithLabelValues(outcomeDuplicate).Inc()
	log.Info("message answered already, not posting again")
	return nil
}

// replyState returns the record of key in the replies bucket (replySent,
// replyPending, or "" when there is none) and when it was written.
func (r *Responder) replyState(ctx context.Context, key string) (string, time.Time, error) {
	entry, err := r.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", time.Time{}, nil
	case err != nil:
		return "", time.Time{}, err
	}
	return string(entry.Value()), entry.Created(), nil
}
