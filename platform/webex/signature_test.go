package webex_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// signatureVector is one known-good X-Spark-Signature from
// testdata/signature-vectors.json, with its body resolved.
type signatureVector struct {
	name      string
	secret    []byte
	body      []byte
	signature string
}

// loadSignatureVectors reads the vectors; an entry with body_file signs that
// file's exact bytes, one with body signs the literal string.
func loadSignatureVectors(t *testing.T) []signatureVector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "signature-vectors.json"))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var entries []struct {
		Secret    string  `json:"secret"`
		Body      *string `json:"body"`
		BodyFile  string  `json:"body_file"`
		Signature string  `json:"x_spark_signature"`
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if len(entries) == 0 {
		t.Fatal("no vectors")
	}
	vectors := make([]signatureVector, 0, len(entries))
	for i, e := range entries {
		v := signatureVector{secret: []byte(e.Secret), signature: e.Signature}
		switch {
		case e.BodyFile != "":
			v.body, err = os.ReadFile(filepath.Join("testdata", e.BodyFile))
			if err != nil {
				t.Fatalf("vector %d: read body file: %v", i, err)
			}
			v.name = fmt.Sprintf("%d file %s secret %q", i, e.BodyFile, e.Secret)
		case e.Body != nil:
			v.body = []byte(*e.Body)
			v.name = fmt.Sprintf("%d literal of %d bytes secret %q", i, len(v.body), e.Secret)
		default:
			t.Fatalf("vector %d has neither body nor body_file", i)
		}
		vectors = append(vectors, v)
	}
	return vectors
}

func TestSignMatchesWebexVectors(t *testing.T) {
	t.Parallel()
	for _, v := range loadSignatureVectors(t) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			if got := webex.Sign(v.secret, v.body); got != v.signature {
				t.Errorf("Sign = %s, want %s", got, v.signature)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	otherA, otherB := []byte("old-secret-before-rotation"), []byte("next-secret")
	for _, v := range loadSignatureVectors(t) {
		flippedBody := append([]byte(nil), v.body...)
		if len(flippedBody) == 0 {
			flippedBody = []byte{0}
		} else {
			flippedBody[len(flippedBody)/2] ^= 0x01
		}
		flippedSig := []byte(v.signature)
		if flippedSig[0] == '0' {
			flippedSig[0] = '1'
		} else {
			flippedSig[0] = '0'
		}
		cases := []struct {
			name      string
			body      []byte
			signature string
			secrets   [][]byte
			want      bool
		}{
			{"right secret alone", v.body, v.signature, [][]byte{v.secret}, true},
			{"right secret first of several", v.body, v.signature, [][]byte{v.secret, otherA, otherB}, true},
			{"right secret among several", v.body, v.signature, [][]byte{otherA, v.secret, otherB}, true},
			{"right secret last of several", v.body, v.signature, [][]byte{otherA, otherB, v.secret}, true},
			{"uppercase hex", v.body, strings.ToUpper(v.signature), [][]byte{otherA, v.secret}, true},
			{"wrong secrets", v.body, v.signature, [][]byte{otherA, otherB}, false},
			{"secret with a changed case", v.body, v.signature, [][]byte{[]byte(strings.ToUpper(string(v.secret)))}, false},
			{"flipped body byte", flippedBody, v.signature, [][]byte{otherA, v.secret}, false},
			{"flipped signature digit", v.body, string(flippedSig), [][]byte{v.secret}, false},
			{"non-hex signature", v.body, "g" + v.signature[1:], [][]byte{v.secret}, false},
			{"short signature", v.body, v.signature[:len(v.signature)-2], [][]byte{v.secret}, false},
			{"odd-length signature", v.body, v.signature[:len(v.signature)-1], [][]byte{v.secret}, false},
			{"long signature", v.body, v.signature + "00", [][]byte{v.secret}, false},
			{"signature with spaces", v.body, " " + v.signature, [][]byte{v.secret}, false},
			{"sha1= prefix", v.body, "sha1=" + v.signature, [][]byte{v.secret}, false},
			{"empty signature", v.body, "", [][]byte{v.secret}, false},
			{"nil secrets", v.body, v.signature, nil, false},
			{"empty secret list", v.body, v.signature, [][]byte{}, false},
		}
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					if got := webex.VerifySignature(tc.body, tc.signature, tc.secrets); got != tc.want {
						t.Errorf("VerifySignature = %v, want %v", got, tc.want)
					}
				})
			}
		})
	}
}

// FuzzSignVerify checks that whatever the body and secret, a signature made
// by Sign verifies under that secret and not under another one.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte("key"), []byte("The quick brown fox jumps over the lazy dog"))
	f.Add([]byte(""), []byte(""))
	f.Add([]byte("ünïcödé-secret"), []byte(`{"id":"x","data":{"id":"y"}}`))
	f.Fuzz(func(t *testing.T, secret, body []byte) {
		sig := webex.Sign(secret, body)
		if len(sig) != 40 || strings.ToLower(sig) != sig {
			t.Fatalf("Sign = %q, want 40 lowercase hex digits", sig)
		}
		if !webex.VerifySignature(body, sig, [][]byte{secret}) {
			t.Fatal("own signature rejected")
		}
		other := append([]byte("x"), secret...)
		if webex.VerifySignature(body, sig, [][]byte{other}) {
			t.Fatal("signature accepted under another secret")
		}
	})
}
