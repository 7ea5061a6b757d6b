package webex

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
)

// SignatureHeader is the header in which Webex sends a webhook's signature.
const SignatureHeader = "X-Spark-Signature"

// Sign returns the X-Spark-Signature Webex sends for body under secret: the
// lowercase hex HMAC-SHA1 of the raw body bytes.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha1.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether signature is the HMAC-SHA1 of body under
// any of secrets (several during a rotation). The comparison is constant-time
// and every secret is tried, so the timing tells nothing about which matched
// or how much of the signature was right. Hex in either case is accepted.
func VerifySignature(body []byte, signature string, secrets [][]byte) bool {
	got, err := hex.DecodeString(signature)
	if err != nil || len(got) != sha1.Size {
		return false
	}
	ok := false
	for _, secret := range secrets {
		mac := hmac.New(sha1.New, secret)
		mac.Write(body)
		if hmac.Equal(mac.Sum(nil), got) {
			ok = true
		}
	}
	return ok
}
